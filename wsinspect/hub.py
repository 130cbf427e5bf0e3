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
    """

    __slots__ = ("_sinks", "wants_frames")

    def __init__(self) -> None:
        self._sinks: list[Sink] = []
        self.wants_frames = False

    def subscribe(self, sink: Sink, *, frames: bool = True) -> None:
        self._sinks.append(sink)
        self.wants_frames = self.wants_frames or frames

    def unsubscribe(self, sink: Sink) -> None:
        self._sinks.remove(sink)

    def publish(self, event: Event) -> None:
        for sink in self._sinks:
            sink.publish(event)
