"""The recorder: a sink that writes every event to a JSON Lines recording (format v2; v1 on
request, for tests of the readers).

A recording is one JSON object per line: a ``header`` line first, then every event in the
order the relay published them, as ``recording.encoder`` writes it: in v2 (``format_v2``) one
line per frame, with the message it completes on the same line, and v1's dict form
(``recording.format.to_dict``) for every other event. Reading recordings back is
``recording.reader``'s job.

Writing is split in two so the relay's hot path stays cheap: :meth:`Recorder.publish` only
appends the event to a list, and :meth:`Recorder.run` (a Trio task) turns the batch into JSON,
writes it and flushes it at least every ``interval`` seconds (100 ms), in a worker thread so a
big batch or a slow disk does not stall the relay. After ``kill -9`` at most the last interval is
missing and the last line may be torn; the reader skips a torn line with a warning.
A disk slower than the traffic holds the relay back instead of letting the backlog grow
(``_MAX_BACKLOG``): the recording stays complete and the loss bound holds, at the disk's speed.
Big payloads are never copied into the text of their line: their base64 (or escaped text) goes
to the file as it is (a copy of a fresh megabyte costs about a millisecond). The base64 of a big
binary frame is made by the writer thread itself, just before it is written
(``encoder.Base64Of``): the C encoder releases the GIL, so it runs beside the relay.
"""

from __future__ import annotations

import os
import sys
import threading
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, BinaryIO

import trio

from wsinspect import __version__
from wsinspect.events import (
    ConnectionOpened,
    Event,
    FrameSeen,
    HandshakeRejected,
    MessageSeen,
    Notice,
)
from wsinspect.recording.encoder import Line, Piece, encode_lines, encode_lines_v2, piece_bytes
from wsinspect.recording.format import (
    FORMAT_NAME,
    FORMAT_VERSION,
    dumps,
    redact_headers,
    to_dict,
)
from wsinspect.recording.format_v2 import FORMAT_VERSION_2, line_dict
from wsinspect.settings import ConfigError

if TYPE_CHECKING:
    from wsinspect.hub import Hub
    from wsinspect.settings import Settings

__all__ = [
    "Recorder",
    "cancel_on_sigterm",
    "open_recorder",
    "start_recorder",
]

_CHUNK = 200  # events serialised between two checkpoints of the recorder task (or fewer, once
# ``encoder.CHUNK_BYTES`` of big payload is serialised)
_TICK = 0.01  # how often pending events are serialised (written every ``interval``)
#: Serialised bytes that are written at once rather than at the end of the interval.
_WRITE_SOON = 1 << 20
#: Serialised bytes waiting beyond which the relay waits for the disk (see ``_write_ready``).
_MAX_BACKLOG = 64 << 20

_IOV_MAX = 1024  # buffers per writev(2) (Linux's IOV_MAX)
_WRITE_BATCH = 4 << 20  # bytes per writev(2), about: a deferred base64 is made just before


def _write_all(file: BinaryIO, chunks: list[Piece]) -> None:
    """Write every byte of ``chunks`` to an unbuffered file, many chunks per system call
    (``writev``: at a few KiB per chunk, one ``write`` each cost about as much as the copying);
    a write may be partial, and the rest follows.

    A big payload's base64 (``encoder.Base64Of``) is made here, just before its write: in the
    writer thread the C encoder runs without the GIL, beside the relay.
    """
    fd = file.fileno()
    pos = 0
    end = len(chunks)
    while pos < end:
        batch: list[bytes] = []
        total = 0
        while pos < end and len(batch) < _IOV_MAX and total < _WRITE_BATCH:
            chunk = chunks[pos]
            pos += 1
            if chunk.__class__ is not bytes:
                chunk = piece_bytes(chunk)
            batch.append(chunk)
            total += len(chunk)
        n = os.writev(fd, batch)
        if n == total:
            continue
        # Partial: finish the first chunk not fully written, then the rest of the batch.
        for i, chunk in enumerate(batch):
            if n < len(chunk):
                view = memoryview(chunk)[n:]
                while view:
                    view = view[os.write(fd, view) :]
                for rest in batch[i + 1 :]:
                    view = memoryview(rest)
                    while view:
                        view = view[os.write(fd, view) :]
                break
            n -= len(chunk)


class Recorder:
    """A sink that writes every event it gets to a JSON Lines file.

    Create it with :meth:`create` (or :func:`open_recorder`), which opens the file and writes the
    header at once, so an unwritable path fails before the proxy listens. Then run :meth:`run`
    in a nursery; cancelling it writes what is left and closes the file.

    A write error (disk full, file system gone) does not stop the relay: the batch is lost, the
    error is printed on stderr and published to the hub as an error ``Notice``, once until writes
    succeed again (then a second notice says how many events were lost).

    The writing itself happens in one writer thread of its own, started by the first batch:
    disk I/O releases the GIL, so the disk works while the relay and the serialising go on.
    """

    __slots__ = (
        "_batch",
        "_batch_pos",
        "_cond",
        "_file",
        "_hub",
        "_lost",
        "_message",
        "_pending",
        "_queue",
        "_queued",
        "_queued_bytes",
        "_ready",
        "_ready_count",
        "_ready_size",
        "_redact",
        "_stop",
        "_thread",
        "_version",
        "failed",
        "interval",
        "path",
        "written",
    )

    def __init__(self, file: BinaryIO, path: str, *, redact: bool = True,
                 hub: Hub | None = None, interval: float = 0.1,
                 version: int = FORMAT_VERSION_2) -> None:
        self._file = file
        self._version = version
        self.path = path
        self._redact = redact
        self._hub = hub
        self.interval = interval
        # Events, and lines that came serialised (``publish_lines``), in order.
        self._pending: list[Event | tuple[bytes, int]] = []
        self._batch: list[Event | tuple[bytes, int]] = []  # being serialised by ``_drain``...
        self._batch_pos = 0  # ...up to here
        self._ready: list[Piece] = []  # serialised and encoded, not handed to the writer yet
        self._ready_count = 0
        self._ready_size = 0  # bytes in ``_ready``
        # The writer thread's work: (chunks, events, bytes) batches, in order. ``_cond`` guards
        # the queue, its counts, ``_stop`` and ``_message``.
        self._cond = threading.Condition()
        self._queue: list[tuple[list[Piece], int, int]] = []
        self._queued = 0  # events handed to the writer and not written yet
        self._queued_bytes = 0
        self._stop = False
        self._thread: threading.Thread | None = None
        self.written = 0  # events written so far
        self._lost = 0  # events lost to write errors since the last failure report
        self.failed = False
        # A failure/recovery report made in the writer thread, published from the Trio thread.
        self._message: tuple[str, str] | None = None

    @classmethod
    def create(cls, path: str, *, redact: bool = True, hub: Hub | None = None,
               interval: float = 0.1, options: dict[str, Any] | None = None,
               version: int = FORMAT_VERSION_2) -> Recorder:
        """Open ``path`` for writing (truncating it) and write the header line.

        ``version=1`` writes format v1, for tests of the readers: only through ``publish``
        (the lines ``publish_lines`` takes are v2's).

        Raises ``ConfigError`` with a one-line reason when the file cannot be written.
        """
        try:
            # Unbuffered: every write is one system call that releases the GIL, and once it
            # returns the lines are in the kernel and survive the process being killed.
            file = open(path, "wb", buffering=0)  # noqa: SIM115
        except OSError as exc:
            raise ConfigError(f"--record {path}: cannot write: {exc.strerror or exc}") from None
        header: dict[str, Any] = {
            "type": "header",
            "format": FORMAT_NAME,
            "version": version,
            "wsinspect": __version__,
            "started": datetime.now(UTC).isoformat(timespec="milliseconds"),
            "redacted": redact,
            **(options or {}),
        }
        try:
            _write_all(file, [(dumps(header) + "\n").encode("utf-8")])
        except OSError as exc:
            file.close()
            raise ConfigError(f"--record {path}: cannot write: {exc.strerror or exc}") from None
        return cls(file, path, redact=redact, hub=hub, interval=interval, version=version)

    # -- the sink side: O(1) on the relay's hot path

    def publish(self, event: Event) -> None:
        self._pending.append(event)

    def publish_lines(self, lines: bytes, count: int) -> None:
        """``count`` frame and message lines serialised already (``relay.observers.LinesObserver``), in their
        place among the events."""
        self._pending.append((lines, count))

    @property
    def pending(self) -> int:
        """Events published and not written yet (a block of ``publish_lines`` counts once
        until it is serialised)."""
        return (
            len(self._pending) + len(self._batch) - self._batch_pos + self._ready_count
            + self._queued
        )

    # -- the background side

    async def run(self) -> None:
        """Write the pending events every ``interval`` seconds until cancelled, then write the
        rest and close the file (so SIGINT/SIGTERM, which cancel the relay, end it cleanly).

        Events are turned into text every 10 ms and the text is written every ``interval``
        (sooner once ``_WRITE_SOON`` bytes are ready).
        Serialising often keeps the event objects short-lived: held for a whole interval, tens
        of thousands of them would survive into the garbage collector's older generations and
        make its full collections (which walk every live object) frequent and slow. Strings are
        not tracked by the collector.
        """
        try:
            tick = min(_TICK, self.interval)
            now = trio.current_time()
            next_tick, write_at = now, now + self.interval
            while True:
                # Deadline-based, so the time serialising and writing take does not stretch
                # the interval.
                next_tick = max(next_tick + tick, trio.current_time())
                await trio.sleep_until(min(next_tick, write_at))
                await self._serialise_pending()
                # Written every interval, or as soon as a few MiB are ready: handed over
                # while still in the CPU's cache, the text costs half as much to write.
                if trio.current_time() >= write_at or self._ready_size >= _WRITE_SOON:
                    write_at = max(write_at + self.interval, trio.current_time())
                    await self._write_ready()
        finally:
            self.close()

    async def _serialise_pending(self) -> None:
        """Serialise the pending events here, in chunks with a checkpoint between them so the
        relay keeps running.

        Serialising in the Trio thread rather than in the writer thread matters: a CPU-bound
        thread holding the GIL makes every socket call of the relay wait for it (the convoy
        effect), which costs far more than the serialising itself.
        """
        if not self._pending:
            return
        self._batch, self._pending = self._pending, []
        self._batch_pos = 0
        batch = self._batch
        while self._batch_pos < len(batch):
            start = self._batch_pos
            chunks, self._batch_pos, count = self._encode(batch, start,
                                                          min(len(batch), start + _CHUNK))
            self._ready.extend(chunks)
            self._ready_count += count
            self._ready_size += sum(map(len, chunks))
            await trio.lowlevel.checkpoint()
        self._batch, self._batch_pos = [], 0

    async def _write_ready(self) -> None:
        """Hand the serialised text to the writer thread.

        Backpressure: when more than ``_MAX_BACKLOG`` bytes wait for the writer, the disk is not
        keeping up with the traffic. This (the relay's) thread then blocks until the writer is
        back under the bound, which holds the relay back: otherwise the backlog (and memory)
        would grow without bound, and a crash would lose far more than the last interval. The
        relay then runs at the speed of the disk.
        """
        if self._ready:
            chunks, count, size = self._ready, self._ready_count, self._ready_size
            self._ready, self._ready_count, self._ready_size = [], 0, 0
            cond = self._cond
            with cond:
                if self._thread is None:
                    self._thread = threading.Thread(
                        target=self._writer, name="wsinspect-recorder", daemon=True
                    )
                    self._thread.start()
                self._queue.append((chunks, count, size))
                self._queued += count
                self._queued_bytes += size
                cond.notify_all()
                while self._queued_bytes > _MAX_BACKLOG:
                    cond.wait()
        self._report()

    def _writer(self) -> None:
        """The writer thread: write the queued batches in order until stopped and drained."""
        cond = self._cond
        while True:
            with cond:
                while not self._queue and not self._stop:
                    cond.wait()
                if not self._queue:
                    return
                jobs, self._queue = self._queue, []
            for chunks, count, size in jobs:
                self._write_chunks(chunks, count)
                with cond:
                    self._queued -= count
                    self._queued_bytes -= size
                    cond.notify_all()

    def close(self) -> None:
        """Write whatever is pending and close the file (idempotent)."""
        if self._file.closed:
            return
        rest = self._batch[self._batch_pos :] + self._pending
        self._batch, self._batch_pos, self._pending = [], 0, []
        pos = 0
        while pos < len(rest):
            chunks, pos, count = self._encode(rest, pos, len(rest))
            self._ready.extend(chunks)
            self._ready_count += count
        thread = self._thread
        if thread is not None:
            # The writer writes what it was given first; the rest follows from here, in order.
            with self._cond:
                self._stop = True
                self._cond.notify_all()
            thread.join()
            self._thread = None
        if self._ready:
            self._write_chunks(self._ready, self._ready_count)
            self._ready, self._ready_count, self._ready_size = [], 0, 0
        self._report()
        try:
            self._file.close()
        except OSError as exc:
            self._fail(exc, 0)
            self._report()

    def _encode(self, events: list[Event | tuple[bytes, int]], pos: int,
                stop: int) -> tuple[list[Piece], int, int]:
        if self._version == FORMAT_VERSION:
            return encode_lines(self._serialise, events, pos, stop)
        return encode_lines_v2(self._serialise_v2, events, pos, stop)

    def _serialise_v2(self, event: Event, message: MessageSeen | None) -> Line:
        """The general path of format v2: a frame's line (with the message it completes), or
        any other event's v1 line."""
        if event.__class__ is FrameSeen or isinstance(event, FrameSeen):
            return dumps(line_dict(event, message))
        return self._serialise(event)

    def _serialise(self, event: Event) -> Line:
        """The general path: ``to_dict`` (redacted) as JSON. ``encode_lines`` tries the fast
        lines of frame and message events first."""
        d = to_dict(event)
        if self._redact and isinstance(event, ConnectionOpened | HandshakeRejected):
            d["request_headers"] = redact_headers(d["request_headers"])
            if "response_headers" in d:
                d["response_headers"] = redact_headers(d["response_headers"])
        return dumps(d)

    def _write_chunks(self, chunks: list[Piece], count: int) -> None:
        """Write ``count`` serialised events; runs in the writer thread (or at close).

        No joining here: the worker would hold the GIL while it copies megabytes, and the
        relay's every socket call would wait for it.
        """
        try:
            _write_all(self._file, chunks)
        except OSError as exc:
            self._fail(exc, count)
            return
        self.written += count
        if self.failed:
            self.failed = False
            with self._cond:
                self._message = (
                    "info",
                    f"recording to {self.path} resumed; {self._lost} events were lost",
                )
            self._lost = 0

    def _fail(self, exc: OSError, lost: int) -> None:
        self._lost += lost
        if not self.failed:
            self.failed = True
            with self._cond:
                self._message = (
                    "error",
                    f"recording to {self.path} failed: {exc.strerror or exc}; "
                    "events are being lost (the relay keeps running)",
                )

    def _report(self) -> None:
        # Runs in the Trio thread: the hub is not thread-safe.
        with self._cond:
            message, self._message = self._message, None
        if message is None:
            return
        level, text = message
        print(f"wsinspect: {level}: {text}", file=sys.stderr)
        if self._hub is not None:
            self._hub.publish(Notice(time.time(), level, text))


def start_recorder(settings: Settings, hub: Hub, *,
                   options: dict[str, Any] | None = None) -> Recorder | None:
    """Create the recorder ``settings.record`` asks for (``None`` when not recording), write its
    header and subscribe it to ``hub``; the caller runs ``recorder.run()`` in its nursery.

    Synchronous, so a command can refuse an unwritable path (``ConfigError``) before it listens.
    """
    if not settings.record:
        return None
    opts: dict[str, Any] = {
        "listen": f"{settings.listen_host}:{settings.listen_port}",
        "upstream": settings.upstream.url if settings.upstream else None,
        "capture_limit": settings.capture_limit,
    }
    opts.update(options or {})
    recorder = Recorder.create(settings.record, redact=settings.redact, hub=hub, options=opts)
    hub.subscribe(recorder)
    return recorder


@asynccontextmanager
async def open_recorder(settings: Settings, hub: Hub, *,
                        options: dict[str, Any] | None = None) -> AsyncIterator[Recorder | None]:
    """``start_recorder`` and its ``run`` task in one block; yields the ``Recorder`` (or
    ``None`` when not recording). The file is complete and closed when the block exits::

        async with open_recorder(settings, hub):
            await serve(settings, hub)

    Raises ``ConfigError`` at once when the path cannot be written.
    """
    recorder = start_recorder(settings, hub, options=options)
    if recorder is None:
        yield None
        return
    try:
        async with trio.open_nursery() as nursery:
            nursery.start_soon(recorder.run)
            try:
                yield recorder
            finally:
                nursery.cancel_scope.cancel()
    finally:
        hub.unsubscribe(recorder)
        recorder.close()


async def cancel_on_sigterm(scope: trio.CancelScope) -> None:
    """Cancel ``scope`` on SIGTERM, as Ctrl-C would, so sinks write their last batch and the
    recording ends cleanly instead of being cut by the default action (process death)."""
    import signal

    with trio.open_signal_receiver(signal.SIGTERM) as signals:
        async for _ in signals:
            scope.cancel()
            return
