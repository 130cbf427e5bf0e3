"""Synchronous fan-out of events to sinks.

``publish`` runs on the relay's hot path, so sinks must do O(1) work in it (append to a buffer)
and leave formatting, JSON, disk and drawing to their own batched background task.
"""

from __future__ import annotations

from typing import Protocol

from wsinspect.events import Event

__all__ = ["Hub", "Sink"]


class Sink(Protocol):
    def publish(self, event: Event) -> None:
        """Take one event; must not block or raise."""


class Hub:
    """Holds the sinks of one process and passes every event to each, in subscription order.

    ``wants_frames`` is false when no sink asked for per-frame events, so the relay can skip
    building them (it still counts frames, checks them and builds message events for sinks).
    ``wants_traffic`` is false when no sink asked for frame or message events at all (none
    subscribed, or only with ``frames=False, messages=False`` for connection-level events):
    new connections then use the relay's light inspection tier (``wire.walker``), which walks
    frame headers without parsing payloads. Subscribe sinks before the relay starts.
    """

    __slots__ = ("_sinks", "wants_frames", "wants_traffic")

    def __init__(self) -> None:
        self._sinks: list[Sink] = []
        self.wants_frames = False
        self.wants_traffic = False

    def subscribe(self, sink: Sink, *, frames: bool = True, messages: bool = True) -> None:
        self._sinks.append(sink)
        self.wants_frames = self.wants_frames or frames
        self.wants_traffic = self.wants_traffic or frames or messages

    def unsubscribe(self, sink: Sink) -> None:
        self._sinks.remove(sink)

    def publish(self, event: Event) -> None:
        for sink in self._sinks:
            sink.publish(event)
