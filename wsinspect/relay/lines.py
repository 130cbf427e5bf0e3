"""The recording tier: when a recording is the only thing that watches a connection's frames, the
common frames of each chunk go from the wire to recording lines in one C pass.

The full tier turns every frame into a ``Frame``, a ``FrameSeen`` and a ``MessageSeen`` and the
recorder turns those into two JSON lines: several microseconds of Python per frame, far more
than relaying it costs. ``wsinspect._speedups.scan_lines`` does the inspector's fast path and
the recorder's line builder for a run of complete, simple data frames at once (the same lines,
byte for byte); the first frame it does not take (a control frame, a fragment, a violation, a
frame not complete in the chunk, ...) and everything after it go through the ``Inspector`` as
usual, and the next chunk tries the C pass again once the inspector is back at rest.

Without the C module (no compiler at install time) ``LineTier.available`` is false and sessions
use the full tier: the same recording, slower.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from wsinspect.wire.frames import Frame
from wsinspect.wire.inspector import Inspector

if TYPE_CHECKING:
    from wsinspect.hub import LineSink

try:
    from wsinspect import _speedups
except ImportError:  # pragma: no cover - built wherever a C compiler was found
    _speedups = None  # type: ignore[assignment]

__all__ = ["LineTier"]


class LineTier:
    """One connection's line scanner, writing to ``sink`` (the recorder).

    ``limit`` is the longest payload the C pass takes: the capture limit (longer payloads are
    recorded truncated, with their SHA-256), or less under ``--max-message-size``.
    """

    __slots__ = ("_conn", "_limit", "_sink")

    available = _speedups is not None

    def __init__(self, conn: int, sink: LineSink, limit: int) -> None:
        self._conn = conn
        self._sink = sink
        self._limit = limit

    def feed(
        self, direction: str, inspector: Inspector, data: bytes, ts: float, seq: int
    ) -> tuple[list[Frame], int]:
        """Inspect one chunk of ``direction``: the frames left to the Python path (in order,
        after the ones written as lines) and the last sequence number the lines used."""
        if not self.available or not inspector.at_rest:
            return inspector.feed(data), seq
        messages = inspector.messages
        pos, last_seq, last_message, lines = _speedups.scan_lines(
            data, 0, direction == "c2s", self._limit, self._conn, direction, ts, seq, messages
        )
        if lines is not None:
            self._sink.publish_lines(lines, 2 * (last_seq - seq))  # a frame and its message
            inspector.skip(pos, last_message - messages)
        if pos == len(data):
            return [], last_seq
        return inspector.feed(data[pos:] if pos else data), last_seq
