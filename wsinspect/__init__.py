"""wsinspect: a WebSocket (RFC 6455) debugging proxy and traffic inspector.

``wsinspect.wire`` is the protocol core and does no I/O; ``wsinspect.relay`` is the Trio
man-in-the-middle; ``wsinspect.sinks`` turn events into log lines and recordings;
``wsinspect.tui`` is the Textual interface.
"""

from __future__ import annotations

__version__ = "0.1.0"
__all__ = ["__version__"]
