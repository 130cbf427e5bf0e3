"""Recording to JSON Lines (format v1) and reading recordings back.

A recording is one JSON object per line: a ``header`` line first, then the ``to_dict`` form of
every event in the order the relay published them (``wsinspect.events`` defines the fields).

Reading recordings back is ``wsinspect.sinks.reader``'s job.

Writing is split in two so the relay's hot path stays cheap: :meth:`Recorder.publish` only
appends the event to a list, and :meth:`Recorder.run` (a Trio task) turns the batch into JSON,
writes it and flushes it at least every ``interval`` seconds (100 ms), in a worker thread so a
big batch or a slow disk does not stall the relay. After ``kill -9`` at most the last interval is
missing and the last line may be torn; the reader skips a torn line with a warning.
A disk slower than the traffic holds the relay back instead of letting the backlog grow
(``_MAX_BACKLOG``): the recording stays complete and the loss bound holds, at the disk's speed.
Big payloads are never copied into the text of their line: their base64 (or escaped text) goes
to the file as it is (a copy of a fresh megabyte costs about a millisecond).
"""

from __future__ import annotations

import contextlib
import json
import os
import sys
import threading
import time
from binascii import b2a_base64
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import fields
from datetime import UTC, datetime
from json.encoder import encode_basestring as _json_str
from typing import TYPE_CHECKING, Any, BinaryIO

import trio

from wsinspect import __version__
from wsinspect.events import (
    FORMAT_NAME,
    FORMAT_VERSION,
    ConnectionOpened,
    Event,
    FrameSeen,
    HandshakeRejected,
    MessageSeen,
    Notice,
)
from wsinspect.settings import ConfigError
from wsinspect.wire.frames import Frame
from wsinspect.wire.messages import Message

if TYPE_CHECKING:
    from wsinspect.hub import Hub
    from wsinspect.settings import Settings

__all__ = [
    "REDACTED",
    "REDACTED_HEADERS",
    "Recorder",
    "cancel_on_sigterm",
    "json_line",
    "open_recorder",
    "redact_headers",
    "start_recorder",
]

#: Headers whose values carry credentials; their values are replaced unless ``--no-redact``.
REDACTED_HEADERS = frozenset({"cookie", "set-cookie", "authorization", "proxy-authorization"})
#: What a redacted value reads in the recording (``replay`` leaves such headers out).
REDACTED = "[redacted]"

def redact_headers(headers: list[list[str]]) -> list[list[str]]:
    """Return ``headers`` (the dict form, ``[[name, value], ...]``) with credential values
    replaced by :data:`REDACTED`; names and order are kept so the handshake stays readable."""
    return [
        [name, REDACTED] if name.lower() in REDACTED_HEADERS else [name, value]
        for name, value in headers
    ]


# One encoder for the process: ``json.dumps`` with options builds a new one per call, which
# doubles the cost of a small line. ensure_ascii=False keeps text payloads readable and smaller.
# (orjson was measured too: no faster here, so no extra dependency.)
_dumps = json.JSONEncoder(ensure_ascii=False, separators=(",", ":")).encode


_B = ("false", "true")
_CHUNK = 200  # events serialised between two checkpoints of the recorder task...
_CHUNK_BYTES = 1 << 20  # ...or fewer, once this much big payload is serialised
_TICK = 0.01  # how often pending events are serialised (written every ``interval``)
#: Payloads from this size on are serialised to bytes pieces that go to the file as they are.
_BIG = 1 << 14
#: Serialised bytes that are written at once rather than at the end of the interval.
_WRITE_SOON = 1 << 20
#: Serialised bytes waiting beyond which the relay waits for the disk (see ``_write_ready``).
_MAX_BACKLOG = 64 << 20

#: A serialised line: its text, or for a big payload its pieces ``[text, bytes..., text]`` (the
#: payload's JSON in the middle, never copied into the text around it).
Line = str | list[str | bytes]
#: A payload value in JSON: a string literal, or the bytes pieces of a big one.
_Value = str | list[str | bytes]

# "fin":...,"rsv1":...,"rsv2":...,"rsv3":...,"opcode":... for each first header byte (§5.2).
_FLAGS = [
    f'"fin":{_B[b >> 7]},"rsv1":{_B[b >> 6 & 1]},"rsv2":{_B[b >> 5 & 1]},'
    f'"rsv3":{_B[b >> 4 & 1]},"opcode":{b & 15}'
    for b in range(256)
]
_UNMASKED = ',"masked":false,"mask":null,"len":'


def _base64(data: bytes) -> bytes:
    """Base64 of a big payload (``b2a_base64`` without the newline)."""
    return b2a_base64(data, newline=False)


# Where built, the C version: binascii encodes bit by bit, 4x slower on a MiB, and base64 of
# big binary payloads is most of a recording's CPU time.
with contextlib.suppress(ImportError):
    from wsinspect._speedups import b64encode as _base64  # type: ignore[assignment]


def _payload_json(payload: bytes, text: bool) -> tuple[_Value, str]:
    """``events.encode_payload``, already as JSON: ``(value, encoding)``.

    A big payload's value is a list of bytes pieces (quotes and base64, or the escaped UTF-8
    text), so that the megabyte is not copied again into a line, a batch and its encoding: each
    copy of a fresh megabyte costs about a millisecond in page faults.
    """
    if text:
        try:
            s = payload.decode("utf-8")
        except UnicodeDecodeError:
            pass
        else:
            if len(payload) < _BIG:
                return _json_str(s), '"text"'
            return [_json_str(s).encode("utf-8")], '"text"'
    if len(payload) < _BIG:
        return '"' + b2a_base64(payload, newline=False).decode("ascii") + '"', '"base64"'
    return [b'"', _base64(payload), b'"'], '"base64"'


def _line_text(line: Line) -> str:
    """A line's whole text (for tests and the self-check)."""
    if isinstance(line, str):
        return line
    return "".join(p if isinstance(p, str) else p.decode("utf-8") for p in line)


# The last payload serialised and its JSON form: a one-frame message carries the very same bytes
# object as its frame, so its message line reuses the frame's (base64 of 1 MiB costs ~1 ms).
_last_payload: list[Any] = [None, "", ""]
# The last timestamp and its text: float repr costs ~0.5 µs, and the relay gives every frame of
# one received chunk (and its message events) the same timestamp.
_last_ts: list[Any] = [None, "null"]


_DIRS = {"c2s": '"c2s"', "s2c": '"s2c"'}


def _ts_json(ts: float) -> str:
    """``ts`` as the json module writes a float; the frames of one chunk share a timestamp,
    so the last one is remembered."""
    lts = _last_ts
    if ts != lts[0]:
        lts[1] = repr(ts)
        lts[0] = ts
    text: str = lts[1]
    return text


def _frame_line(e: FrameSeen) -> Line | None:
    """The JSON line of a common frame event, built directly: the same text as encoding
    ``e.to_dict()`` (a test holds them equal) at a fraction of the cost, since this runs once per
    frame. ``None`` for the uncommon cases (close frames, violations, truncated, undelivered,
    no header bytes), which take the general path.

    Written for speed (every attribute read and call counts at ~1 µs a line): small payloads
    are encoded inline and the line is one f-string.
    """
    f = e.frame
    header = f.header
    if f.violations or f.opcode == 8 or f.sha256 is not None or not e.delivered or not header:
        return None
    key = f.mask_key
    if key is None:
        mask = ',"masked":true,"mask":null,"len":' if f.masked else _UNMASKED
    else:
        mask = f',"masked":{_B[f.masked]},"mask":"{key.hex()}","len":'
    data = f.payload
    text = f.text and f.opcode < 8  # control payloads: base64 (see FrameSeen.to_dict)
    payload: _Value | None = None
    if len(data) < _BIG:
        if text:
            try:
                payload = _json_str(data.decode("utf-8"))
            except UnicodeDecodeError:
                payload = None  # not UTF-8 after all (a character cut between fragments)
        if payload is None:
            payload = '"' + b2a_base64(data, newline=False).decode("ascii") + '"'
            encoding = '"base64"'
        else:
            encoding = '"text"'
    else:
        payload, encoding = _payload_json(data, text)
    message = f.message
    if message is not None and text == (message.opcode == 1):
        last = _last_payload
        last[0] = data
        last[1] = payload
        last[2] = encoding
    ts_text = _ts_json(e.ts)
    d = e.direction
    # The flags come from the header byte they were parsed from: one lookup, not five.
    head = (
        f'{{"type":"frame","conn":{e.conn!r},"seq":{e.seq!r},"dir":{_DIRS.get(d) or _json_str(d)},'
        f'"ts":{ts_text},{_FLAGS[header[0]]}{mask}{f.length!r},"header":"{header.hex()}",'
        '"payload":'
    )
    tail = (
        f',"encoding":{encoding},"truncated":{_B[len(data) < f.length]},'
        f'"message":{f.message_no!r},"fragment":{f.fragment_index!r},"violations":[]}}'
    )
    if payload.__class__ is str:
        return f"{head}{payload}{tail}"
    return [head, *payload, tail]


def _message_line(e: MessageSeen) -> Line | None:
    """The JSON line of a message event, built directly (same text as ``e.to_dict()``);
    ``None`` for a message with a ``note`` (general path)."""
    m = e.message
    if m.note:
        return None
    last = _last_payload
    payload: _Value
    if m.payload is last[0]:
        payload, encoding = last[1], last[2]
    else:
        payload, encoding = _payload_json(m.payload, m.opcode == 1)
    last[0] = None
    ts_text = _ts_json(e.ts)
    d = e.direction
    wire = f',"wire_len":{m.wire_len!r}' if m.compressed else ""
    head = (
        f'{{"type":"message","conn":{e.conn!r},"dir":{_DIRS.get(d) or _json_str(d)},'
        f'"ts":{ts_text},"message":{e.message_no!r},"opcode":{m.opcode!r},"len":{m.length!r},'
        '"payload":'
    )
    tail = f',"encoding":{encoding},"frames":{m.frames!r},"truncated":{_B[m.truncated]}{wire}}}'
    if payload.__class__ is str:
        return f"{head}{payload}{tail}"
    return [head, *payload, tail]


# The fields the fast lines know. If the event types change (a field added to ``to_dict``),
# the fast path turns itself off rather than write lines that miss it; a test says so loudly.
_KNOWN_FIELDS = {
    FrameSeen: ("conn", "seq", "direction", "ts", "frame", "delivered"),
    MessageSeen: ("conn", "direction", "ts", "message", "message_no"),
    Frame: ("fin", "rsv1", "rsv2", "rsv3", "opcode", "masked", "mask_key", "length", "header",
            "payload", "start", "sha256", "violations", "message_no", "fragment_index", "message",
            "text"),
    Message: ("opcode", "payload", "length", "wire_len", "frames", "truncated", "compressed",
              "note"),
}  # fmt: skip


def _fast_path_agrees() -> bool:
    """True when the fast lines match ``to_dict`` for sample events and the event types have
    exactly the fields the fast lines were written for."""
    for cls, names in _KNOWN_FIELDS.items():
        if tuple(f.name for f in fields(cls)) != names:
            return False
    frame = Frame(True, False, False, False, 1, True, b"abcd", 2, b"\x81\x82abcd", b"hi",
                  message_no=1, text=True)  # fmt: skip
    frame.message = Message(1, b"hi", 2, 2, 1)
    big = bytes(range(256)) * (_BIG // 256)
    samples: list[Event] = [
        FrameSeen(1, 2, "c2s", 1.5, frame),
        MessageSeen(1, "c2s", 1.5, frame.message, 1),
        MessageSeen(1, "s2c", 2.5, Message(2, b"\xff", 1, 3, 1, compressed=True), 2),
        FrameSeen(1, 3, "s2c", 2.5, Frame(True, True, False, False, 2, False, None, len(big),
                                          b"\xc2\x7e" + len(big).to_bytes(2, "big"), big)),
        MessageSeen(1, "s2c", 2.5, Message(1, b"\xc3\xa9" * _BIG, 2 * _BIG, 9, 1), 3),
    ]  # fmt: skip
    for event in samples:
        fast = _frame_line(event) if isinstance(event, FrameSeen) else _message_line(event)  # type: ignore[arg-type]
        if fast is None or _line_text(fast) != _dumps(event.to_dict()):
            return False
    return True


_FAST = _fast_path_agrees()
# Event type → its fast line builder (none when the self-check failed).
_FAST_LINES: dict[type, Callable[[Any], Line | None]] = (
    {FrameSeen: _frame_line, MessageSeen: _message_line} if _FAST else {}
)


def json_line(event: Event) -> str:
    """``event``'s dict form as one compact JSON line (no newline), unredacted: the recording's
    text for it, as ``--log-format json`` prints it. Frame and message events take the fast
    lines (several times cheaper than ``to_dict`` and ``json``)."""
    fast = _FAST_LINES.get(event.__class__)
    line = fast(event) if fast is not None else None
    if line is None:
        return _dumps(event.to_dict())
    return _line_text(line)


def _encode_lines(serialise: Callable[[Event], Line], events: list[Event | tuple[bytes, int]], pos: int,
                  stop: int) -> tuple[list[bytes], int, int]:  # fmt: skip
    """Serialise ``events[pos:stop]`` to the bytes to write, newline after each line; stop early
    once ``_CHUNK_BYTES`` of big payloads are done. Returns the bytes, where it stopped and how
    many lines they hold. Frame and message events take the fast lines; the rest (and the fast
    lines' uncommon cases) go through ``serialise``; lines that came serialised
    (``publish_lines``) go out as they are.

    Small lines are joined and encoded once; a big payload's pieces go out as they are.
    """
    out: list[bytes] = []
    lines: list[str] = []
    big = 0
    count = stop - pos
    fast_line = _FAST_LINES.get
    while pos < stop:
        event = events[pos]
        pos += 1
        if isinstance(event, tuple):  # (lines serialised already, how many)
            if lines:  # the text so far, each line with its newline
                lines.append("")
                out.append("\n".join(lines).encode("utf-8"))
                lines = []
            out.append(event[0])
            count += event[1] - 1
            continue
        # Exact types: a subclass may add fields the fast lines do not know.
        fast = fast_line(event.__class__)
        line = fast(event) if fast is not None else None
        if line is None:
            line = serialise(event)
        if line.__class__ is str:
            lines.append(line)
            continue
        # [head, payload pieces..., tail]: the head ends the text so far, the tail starts anew.
        lines.append(line[0])  # type: ignore[arg-type]
        out.append("\n".join(lines).encode("utf-8"))
        for piece in line[1:-1]:
            out.append(piece)  # type: ignore[arg-type]
            big += len(piece)
        lines = [line[-1]]  # type: ignore[list-item]
        if big >= _CHUNK_BYTES:
            break
    if lines:
        lines.append("")
        out.append("\n".join(lines).encode("utf-8"))
    return out, pos, count - (stop - pos)


_IOV_MAX = 1024  # buffers per writev(2) (Linux's IOV_MAX)


def _write_all(file: BinaryIO, chunks: list[bytes]) -> None:
    """Write every byte of ``chunks`` to an unbuffered file, many chunks per system call
    (``writev``: at a few KiB per chunk, one ``write`` each cost about as much as the copying);
    a write may be partial, and the rest follows."""
    fd = file.fileno()
    pos = 0
    while pos < len(chunks):
        batch = chunks[pos : pos + _IOV_MAX]
        n = os.writev(fd, batch)
        pos += len(batch)
        total = sum(map(len, batch))
        if n == total:
            continue
        # Partial: find the first chunk not fully written and finish it on its own.
        for i, chunk in enumerate(batch):
            if n < len(chunk):
                view = memoryview(chunk)[n:]
                while view:
                    view = view[os.write(fd, view) :]
                pos -= len(batch) - i - 1
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
        "failed",
        "interval",
        "path",
        "written",
    )

    def __init__(self, file: BinaryIO, path: str, *, redact: bool = True,
                 hub: Hub | None = None, interval: float = 0.1) -> None:  # fmt: skip
        self._file = file
        self.path = path
        self._redact = redact
        self._hub = hub
        self.interval = interval
        # Events, and lines that came serialised (``publish_lines``), in order.
        self._pending: list[Event | tuple[bytes, int]] = []
        self._batch: list[Event | tuple[bytes, int]] = []  # being serialised by ``_drain``...
        self._batch_pos = 0  # ...up to here
        self._ready: list[bytes] = []  # serialised and encoded, not handed to the writer yet
        self._ready_count = 0
        self._ready_size = 0  # bytes in ``_ready``
        # The writer thread's work: (chunks, events, bytes) batches, in order. ``_cond`` guards
        # the queue, its counts, ``_stop`` and ``_message``.
        self._cond = threading.Condition()
        self._queue: list[tuple[list[bytes], int, int]] = []
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
               interval: float = 0.1, options: dict[str, Any] | None = None) -> Recorder:  # fmt: skip
        """Open ``path`` for writing (truncating it) and write the header line.

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
            "version": FORMAT_VERSION,
            "wsinspect": __version__,
            "started": datetime.now(UTC).isoformat(timespec="milliseconds"),
            "redacted": redact,
            **(options or {}),
        }
        try:
            _write_all(file, [(_dumps(header) + "\n").encode("utf-8")])
        except OSError as exc:
            file.close()
            raise ConfigError(f"--record {path}: cannot write: {exc.strerror or exc}") from None
        return cls(file, path, redact=redact, hub=hub, interval=interval)

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
        )  # fmt: skip

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
        serialise = self._serialise
        batch = self._batch
        while self._batch_pos < len(batch):
            start = self._batch_pos
            chunks, self._batch_pos, count = _encode_lines(
                serialise, batch, start, min(len(batch), start + _CHUNK)
            )
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
            chunks, pos, count = _encode_lines(self._serialise, rest, pos, len(rest))
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

    def _serialise(self, event: Event) -> Line:
        """The general path: ``to_dict`` (redacted) as JSON. ``_encode_lines`` tries the fast
        lines of frame and message events first."""
        d = event.to_dict()
        if self._redact and isinstance(event, ConnectionOpened | HandshakeRejected):
            d["request_headers"] = redact_headers(d["request_headers"])
            if "response_headers" in d:
                d["response_headers"] = redact_headers(d["response_headers"])
        return _dumps(d)

    def _write_chunks(self, chunks: list[bytes], count: int) -> None:
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
                   options: dict[str, Any] | None = None) -> Recorder | None:  # fmt: skip
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
                        options: dict[str, Any] | None = None) -> AsyncIterator[Recorder | None]:  # fmt: skip
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
