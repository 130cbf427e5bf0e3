"""``python -m wsinspect`` runs the command line."""

from __future__ import annotations

import sys

from wsinspect.cli import main

sys.exit(main())
