"""Synchronous fan-out of events to sinks.

``publish`` runs on the relay's hot path, so sinks must do O(1) work in it (append to a buffer)
and leave formatting, JSON, disk and drawing to their own batched background task.
"""

from __future__ import annotations

from typing import Protocol, runtime_checkable

from wsinspect.events import Event

__all__ = ["Hub", "LineSink", "Sink"]


class Sink(Protocol):
    def publish(self, event: Event) -> None:
        """Take one event; must not block or raise."""


@runtime_checkable
class LineSink(Sink, Protocol):
    def publish_lines(self, lines: bytes, count: int) -> None:
        """Take ``count`` frame and message events already serialised as recording lines
        (format v2: one line per frame, its message on it; each ending in a newline), in their
        place among the events; O(1)."""


class Hub:
    """Holds the sinks of one process and passes every event to each, in subscription order.

    ``wants_frames`` is false when no sink asked for per-frame events, so the relay can skip
    building them (it still counts frames, checks them and builds message events for sinks).
    ``wants_traffic`` is false when no sink asked for frame or message events at all (none
    subscribed, or only with ``frames=False, messages=False`` for connection-level events):
    new connections then use the relay's light inspection tier (``wire.walker``), which walks
    frame headers without parsing payloads. Subscribe sinks before the relay starts.
    """

    __slots__ = ("_sinks", "_traffic", "line_sink", "wants_frames", "wants_traffic")

    def __init__(self) -> None:
        self._sinks: list[Sink] = []
        # The sinks that take frame or message events, each with whether it takes both.
        self._traffic: list[tuple[Sink, bool]] = []
        self.wants_frames = False
        self.wants_traffic = False
        #: The one sink that takes traffic, when it also takes recording lines built elsewhere
        #: (``LineSink``: the recorder): frames it alone watches may skip the event objects.
        self.line_sink: LineSink | None = None

    def subscribe(self, sink: Sink, *, frames: bool = True, messages: bool = True) -> None:
        self._sinks.append(sink)
        self.wants_frames = self.wants_frames or frames
        self.wants_traffic = self.wants_traffic or frames or messages
        if frames or messages:
            self._traffic.append((sink, frames and messages))
        only, everything = self._traffic[0] if len(self._traffic) == 1 else (None, False)
        self.line_sink = only if everything and isinstance(only, LineSink) else None

    def unsubscribe(self, sink: Sink) -> None:
        self._sinks.remove(sink)

    def publish(self, event: Event) -> None:
        for sink in self._sinks:
            sink.publish(event)
