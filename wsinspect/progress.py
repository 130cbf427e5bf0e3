"""A one-line progress bar on stderr, shown only on a terminal and only for long jobs."""

from __future__ import annotations

import sys
import time
from typing import TextIO

from wsinspect.render import format_bytes

__all__ = ["Progress"]


class Progress:
    """``update(done)`` redraws at most 10 times a second, and only once ``delay`` seconds have
    passed (short jobs print nothing); ``close()`` clears the line. Does nothing unless ``stream``
    is a TTY, so pipes and tests see clean output."""

    __slots__ = ("_drawn", "_last", "_start", "delay", "label", "stream", "total", "unit_bytes")

    def __init__(self, total: int, label: str, *, stream: TextIO | None = None,
                 delay: float = 0.5, unit_bytes: bool = True) -> None:
        self.stream = stream if stream is not None else sys.stderr
        self.total = max(total, 1)
        self.label = label
        self.delay = delay
        self.unit_bytes = unit_bytes
        self._start = time.monotonic()
        self._last = 0.0
        self._drawn = False

    @property
    def enabled(self) -> bool:
        isatty = getattr(self.stream, "isatty", None)
        return bool(isatty and isatty())

    def update(self, done: int) -> None:
        now = time.monotonic()
        if now - self._start < self.delay or now - self._last < 0.1 or not self.enabled:
            return
        self._last = now
        frac = min(1.0, done / self.total)
        width = 30
        bar = "#" * int(frac * width)
        if self.unit_bytes:
            amount = f"{format_bytes(done)}/{format_bytes(self.total)}"
        else:
            amount = f"{done}/{self.total}"
        self.stream.write(f"\r{self.label} [{bar:<{width}}] {frac * 100:5.1f}% {amount}\x1b[K")
        self.stream.flush()
        self._drawn = True

    def close(self) -> None:
        if self._drawn:
            self.stream.write("\r\x1b[K")
            self.stream.flush()
            self._drawn = False
