"""Shared fixtures for the TUI tests: deterministic events built with the real wire code.

Times are fixed and the time zone is UTC, so the screens (and their snapshots) are the same on
every machine.
"""

from __future__ import annotations

import os
import time

import pytest
from tui_sample import sample_events

from wsinspect.events import Event

os.environ["TZ"] = "UTC"
time.tzset()


@pytest.fixture
def events() -> list[Event]:
    return sample_events()
