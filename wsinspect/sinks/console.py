"""The console sink: one line per event on stdout, written in batches.

``publish`` only appends the event to a list (O(1), never blocks the relay); ``run`` wakes every
``interval`` seconds, renders what came (``render.render_event`` for text, ``to_dict`` + JSON
for ``--log-format json``; in text mode a message gets a line only when it took several frames
or was compressed; JSON lines are the recording's compact lines, unredacted) and writes it in
one call, in a worker thread so a slow terminal or a full pipe never stalls the relay. If the output cannot keep up, at most ``max_pending`` events wait;
older ones are dropped and a line says how many.

With a ``decoding`` (``--decode``, or a subprotocol a decoder knows), messages of decoded
connections are decoded as they are rendered: JSON message lines carry ``"decoded": {...}``
(``Decoded.to_dict()``, spliced before the line's closing brace), and in text mode such a
message gets one more line, ``TIME #CONN → ↳ SUMMARY``.
"""

from __future__ import annotations

import json
import sys
from typing import TextIO

import trio

from wsinspect.events import Event, MessageSeen
from wsinspect.recording.encoder import json_line
from wsinspect.render import ARROWS, format_time, render_event
from wsinspect.sinks.decoded import EventDecoder, decoded_json
from wsinspect.wire.decoders import Decoding

__all__ = ["ConsoleSink"]


class ConsoleSink:
    """Prints events to ``out`` (default stdout) as text or JSON lines (``fmt``)."""

    def __init__(
        self,
        out: TextIO | None = None,
        *,
        fmt: str = "text",
        interval: float = 0.05,
        max_pending: int = 100_000,
        decoding: Decoding | None = None,
    ) -> None:
        if fmt not in ("text", "json"):
            raise ValueError(f"unknown log format {fmt!r}")
        self.out = out if out is not None else sys.stdout
        self.fmt = fmt
        self.interval = interval
        self.max_pending = max_pending
        self._pending: list[Event] = []
        self._dropped = 0
        self.decoder = EventDecoder(decoding) if decoding is not None else None

    def publish(self, event: Event) -> None:
        pending = self._pending
        if len(pending) >= self.max_pending:
            self._dropped += 1
            return
        pending.append(event)

    def render(self, events: list[Event]) -> str:
        """The text for a batch of events, one line each (JSON or human)."""
        if self.decoder is not None:
            return self._render_decoded(events, self.decoder)
        if self.fmt == "json":
            lines = [json_line(e) for e in events]
        else:
            # A one-frame, uncompressed message says nothing its frame line did not: only
            # reassembled or inflated messages get a line of their own.
            lines = [
                render_event(e)
                for e in events
                if not (
                    isinstance(e, MessageSeen)
                    and e.message.frames == 1
                    and not e.message.compressed
                )
            ]
        return "\n".join(lines) + "\n" if lines else ""

    def _render_decoded(self, events: list[Event], decoder: EventDecoder) -> str:
        """``render`` when decoding: each event goes through ``decoder`` in order."""
        lines: list[str] = []
        feed = decoder.feed
        json_mode = self.fmt == "json"
        for e in events:
            decoded = feed(e)
            if json_mode:
                line = json_line(e)
                if decoded is not None and line.endswith("}"):
                    line = f'{line[:-1]},"decoded":{decoded_json(decoded)}}}'
                lines.append(line)
                continue
            if not (isinstance(e, MessageSeen) and e.message.frames == 1 and not e.message.compressed):
                lines.append(render_event(e))
            if decoded is not None and not decoded.continued:
                assert isinstance(e, MessageSeen)
                arrow = ARROWS.get(e.direction, "?")
                lines.append(f"{format_time(e.ts)} #{e.conn} {arrow} ↳ {decoded.summary}")
        return "\n".join(lines) + "\n" if lines else ""

    def take(self) -> str:
        """Render and clear what is pending (with a line about dropped events, if any)."""
        events, self._pending = self._pending, []
        text = self.render(events)
        dropped, self._dropped = self._dropped, 0
        if dropped:
            note = f"[wsinspect: output too slow, {dropped} events not printed]"
            if self.fmt == "json":
                note = json.dumps({"type": "dropped", "count": dropped})
            text += note + "\n"
        return text

    def _write(self, text: str) -> None:
        try:
            self.out.write(text)
            self.out.flush()
        except (BrokenPipeError, ValueError):  # stdout closed (e.g. piped into `head`)
            pass

    def flush(self) -> None:
        """Write what is pending now, in this thread (at exit)."""
        text = self.take()
        if text:
            self._write(text)

    async def run(self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        """Write batches every ``interval`` seconds until cancelled; flush what is left."""
        task_status.started()
        try:
            while True:
                await trio.sleep(self.interval)
                if self._pending or self._dropped:
                    # Rendered here, written in a worker thread: rendering in the worker too
                    # made it fight the relay for the GIL (text log 78k → 56k msgs/s, measured).
                    text = self.take()
                    await trio.to_thread.run_sync(self._write, text)
        finally:
            self.flush()
