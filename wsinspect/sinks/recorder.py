"""Recording to JSON Lines (format v1) and reading recordings back.

A recording is one JSON object per line: a ``header`` line first, then the ``to_dict`` form of
every event in the order the relay published them (``wsinspect.events`` defines the fields).

Writing is split in two so the relay's hot path stays cheap: :meth:`Recorder.publish` only
appends the event to a list, and :meth:`Recorder.run` (a Trio task) turns the batch into JSON,
writes it and flushes it at least every ``interval`` seconds (100 ms), in a worker thread so a
big batch or a slow disk never stalls the relay. After ``kill -9`` at most the last interval is
missing and the last line may be torn; :func:`read_recording` skips a torn line with a warning.

Reading also accepts a HAR file saved from Chrome DevTools (detected by content, see
``wsinspect.export.har``), so a browser session can be inspected with ``cat`` and ``stats``.
"""

from __future__ import annotations

import json
import os
import sys
import time
from binascii import b2a_base64
from collections.abc import AsyncIterator, Callable, Iterable, Iterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, fields
from datetime import UTC, datetime
from json.encoder import encode_basestring as _json_str
from typing import IO, TYPE_CHECKING, Any, BinaryIO

import trio

from wsinspect import __version__
from wsinspect.config import ConfigError
from wsinspect.events import (
    FORMAT_NAME,
    FORMAT_VERSION,
    ConnectionOpened,
    Event,
    FrameSeen,
    HandshakeRejected,
    MessageSeen,
    Notice,
    event_from_dict,
)
from wsinspect.wire.frames import Frame
from wsinspect.wire.messages import Message

if TYPE_CHECKING:
    from wsinspect.config import Settings
    from wsinspect.hub import Hub

__all__ = [
    "REDACTED",
    "REDACTED_HEADERS",
    "Recorder",
    "Recording",
    "RecordingError",
    "cancel_on_sigterm",
    "iter_with_progress",
    "open_recorder",
    "read_events",
    "read_recording",
    "redact_headers",
    "start_recorder",
]

#: Headers whose values carry credentials; their values are replaced unless ``--no-redact``.
REDACTED_HEADERS = frozenset({"cookie", "set-cookie", "authorization", "proxy-authorization"})
#: What a redacted value reads in the recording (``replay`` leaves such headers out).
REDACTED = "[redacted]"

Warn = Callable[[str], None]


class RecordingError(Exception):
    """A file is not a recording this version can read; ``str(err)`` is one line for the user."""


def _warn_stderr(text: str) -> None:
    print(f"wsinspect: warning: {text}", file=sys.stderr)


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
_CHUNK = 200  # events serialised between two checkpoints of the recorder task
_TICK = 0.01  # how often pending events are serialised (written every ``interval``)


def _payload_json(payload: bytes, text: bool) -> tuple[str, str]:
    """``events.encode_payload``, already as JSON string literals."""
    if text:
        try:
            return _json_str(payload.decode("utf-8")), '"text"'
        except UnicodeDecodeError:
            pass
    return '"' + b2a_base64(payload, newline=False).decode("ascii") + '"', '"base64"'


# The last payload serialised and its JSON form: a one-frame message carries the very same bytes
# object as its frame, so its message line reuses the frame's (base64 of 1 MiB costs ~1 ms).
_last_payload: list[Any] = [None, "", ""]
# The last timestamp and its text: float repr costs ~0.5 µs, and the relay gives every frame of
# one received chunk (and its message events) the same timestamp.
_last_ts: list[Any] = [None, "null"]


_DIRS = {"c2s": '"c2s"', "s2c": '"s2c"'}


def _dir_json(direction: str) -> str:
    return _DIRS.get(direction) or _json_str(direction)


def _ts_json(ts: float) -> str:
    last = _last_ts
    if ts == last[0]:
        text: str = last[1]
        return text
    text = repr(ts)  # what the json module writes for a float
    last[0], last[1] = ts, text
    return text


def _frame_line(e: FrameSeen) -> str | None:
    """The JSON line of a common frame event, built directly: the same text as encoding
    ``e.to_dict()`` (a test holds them equal) at a fraction of the cost, since this runs once per
    frame. ``None`` for the uncommon cases (close frames, violations, truncated, undelivered),
    which take the general path."""
    f = e.frame
    if f.violations or f.opcode == 8 or f.sha256 is not None or not e.delivered:
        return None
    key = f.mask_key
    mask = "null" if key is None else '"' + key.hex() + '"'
    text = f.opcode == 1 or (f.opcode == 0 and f.message_no > 0)
    payload, encoding = _payload_json(f.payload, text)
    if f.message is not None and text == (f.message.opcode == 1):
        _last_payload[:] = (f.payload, payload, encoding)
    return (
        f'{{"type":"frame","conn":{e.conn!r},"seq":{e.seq!r},"dir":{_dir_json(e.direction)},'
        f'"ts":{_ts_json(e.ts)},"fin":{_B[f.fin]},"rsv1":{_B[f.rsv1]},"rsv2":{_B[f.rsv2]},'
        f'"rsv3":{_B[f.rsv3]},"opcode":{f.opcode!r},"masked":{_B[f.masked]},'
        f'"mask":{mask},"len":{f.length!r},'
        f'"header":"{f.header.hex()}","payload":{payload},"encoding":{encoding},'
        f'"truncated":{_B[len(f.payload) < f.length]},"message":{f.message_no!r},'
        f'"fragment":{f.fragment_index!r},"violations":[]}}'
    )


def _message_line(e: MessageSeen) -> str | None:
    """The JSON line of a message event, built directly (same text as ``e.to_dict()``);
    ``None`` for a message with a ``note`` (general path)."""
    m = e.message
    if m.note:
        return None
    last = _last_payload
    if m.payload is last[0]:
        payload, encoding = last[1], last[2]
    else:
        payload, encoding = _payload_json(m.payload, m.opcode == 1)
    last[0] = None
    wire = f',"wire_len":{m.wire_len!r}' if m.compressed else ""
    return (
        f'{{"type":"message","conn":{e.conn!r},"dir":{_dir_json(e.direction)},"ts":{_ts_json(e.ts)},'
        f'"message":{e.message_no!r},"opcode":{m.opcode!r},"len":{m.length!r},'
        f'"payload":{payload},"encoding":{encoding},"frames":{m.frames!r},'
        f'"truncated":{_B[m.truncated]}{wire}}}'
    )


# The fields the fast lines know. If the event types change (a field added to ``to_dict``),
# the fast path turns itself off rather than write lines that miss it; a test says so loudly.
_KNOWN_FIELDS = {
    FrameSeen: ("conn", "seq", "direction", "ts", "frame", "delivered"),
    MessageSeen: ("conn", "direction", "ts", "message", "message_no"),
    Frame: ("fin", "rsv1", "rsv2", "rsv3", "opcode", "masked", "mask_key", "length", "header",
            "payload", "start", "sha256", "violations", "message_no", "fragment_index", "message"),
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
                  message_no=1)  # fmt: skip
    frame.message = Message(1, b"hi", 2, 2, 1)
    samples: list[Event] = [
        FrameSeen(1, 2, "c2s", 1.5, frame),
        MessageSeen(1, "c2s", 1.5, frame.message, 1),
        MessageSeen(1, "s2c", 2.5, Message(2, b"\xff", 1, 3, 1, compressed=True), 2),
    ]
    for event in samples:
        fast = _frame_line(event) if isinstance(event, FrameSeen) else _message_line(event)  # type: ignore[arg-type]
        if fast != _dumps(event.to_dict()):
            return False
    return True


_FAST = _fast_path_agrees()


def _write_all(file: BinaryIO, chunks: list[bytes]) -> None:
    """Write every byte of ``chunks`` to an unbuffered file (a raw write may be partial)."""
    write = file.write
    for chunk in chunks:
        view = memoryview(chunk)
        while view:
            n = write(view)
            if n is None:  # non-blocking file with nothing written: not expected for files
                raise BlockingIOError("recording file is not accepting writes")
            view = view[n:]


class Recorder:
    """A sink that writes every event it gets to a JSON Lines file.

    Create it with :meth:`create` (or :func:`open_recorder`), which opens the file and writes the
    header at once, so an unwritable path fails before the proxy listens. Then run :meth:`run`
    in a nursery; cancelling it writes what is left and closes the file.

    A write error (disk full, file system gone) does not stop the relay: the batch is lost, the
    error is printed on stderr and published to the hub as an error ``Notice``, once until writes
    succeed again (then a second notice says how many events were lost).
    """

    __slots__ = (
        "_batch",
        "_batch_pos",
        "_file",
        "_hub",
        "_lost",
        "_message",
        "_pending",
        "_ready",
        "_ready_count",
        "_redact",
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
        self._pending: list[Event] = []
        self._batch: list[Event] = []  # being serialised by ``_drain``...
        self._batch_pos = 0  # ...up to here
        self._ready: list[bytes] = []  # serialised and encoded, not written yet
        self._ready_count = 0
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

    @property
    def pending(self) -> int:
        """Events published and not written yet."""
        return len(self._pending) + len(self._batch) - self._batch_pos + self._ready_count

    # -- the background side

    async def run(self) -> None:
        """Write the pending events every ``interval`` seconds until cancelled, then write the
        rest and close the file (so SIGINT/SIGTERM, which cancel the relay, end it cleanly).

        Events are turned into text every 10 ms and the text is written every ``interval``.
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
                if trio.current_time() >= write_at:
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
        while self._batch_pos < len(self._batch):
            chunk = self._batch[self._batch_pos : self._batch_pos + _CHUNK]
            self._ready.append(("\n".join(map(serialise, chunk)) + "\n").encode("utf-8"))
            self._batch_pos += len(chunk)
            self._ready_count += len(chunk)
            await trio.lowlevel.checkpoint()
        self._batch, self._batch_pos = [], 0

    async def _write_ready(self) -> None:
        """Write and flush the serialised text in a worker thread (disk I/O releases the GIL)."""
        if not self._ready:
            return
        chunks = self._ready
        count = self._ready_count
        self._ready, self._ready_count = [], 0
        # Not cancellable: the chunks are written whole or reported lost, never written twice.
        await trio.to_thread.run_sync(self._write_chunks, chunks, count)
        self._report()

    def close(self) -> None:
        """Write whatever is pending and close the file (idempotent)."""
        if self._file.closed:
            return
        rest = self._batch[self._batch_pos :] + self._pending
        self._batch, self._batch_pos, self._pending = [], 0, []
        if rest:
            self._ready.append(("\n".join(map(self._serialise, rest)) + "\n").encode("utf-8"))
            self._ready_count += len(rest)
        if self._ready:
            self._write_chunks(self._ready, self._ready_count)
            self._ready, self._ready_count = [], 0
            self._report()
        try:
            self._file.close()
        except OSError as exc:
            self._fail(exc, 0)
            self._report()

    def _serialise(self, event: Event) -> str:
        # Exact types: a subclass may add fields the fast lines do not know.
        if _FAST:
            line = None
            if type(event) is FrameSeen:
                line = _frame_line(event)
            elif type(event) is MessageSeen:
                line = _message_line(event)
            if line is not None:
                return line
        d = event.to_dict()
        if self._redact and isinstance(event, ConnectionOpened | HandshakeRejected):
            d["request_headers"] = redact_headers(d["request_headers"])
            if "response_headers" in d:
                d["response_headers"] = redact_headers(d["response_headers"])
        return _dumps(d)

    def _write_chunks(self, chunks: list[bytes], count: int) -> None:
        """Write ``count`` serialised events; runs in a worker thread (or at close).

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
            self._message = (
                "info",
                f"recording to {self.path} resumed; {self._lost} events were lost",
            )
            self._lost = 0

    def _fail(self, exc: OSError, lost: int) -> None:
        self._lost += lost
        if not self.failed:
            self.failed = True
            self._message = (
                "error",
                f"recording to {self.path} failed: {exc.strerror or exc}; "
                "events are being lost (the relay keeps running)",
            )

    def _report(self) -> None:
        # Runs in the Trio thread: the hub is not thread-safe.
        message = self._message
        if message is None:
            return
        self._message = None
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


# -- reading


@dataclass(slots=True)
class Recording:
    """An opened recording: ``header`` (the first line, or a synthetic one for a HAR) and
    ``events`` (an iterator, read lazily). ``size`` is the file size and ``position`` how far
    reading has got, for progress bars."""

    path: str
    header: dict[str, Any]
    events: Iterator[Event]
    size: int
    kind: str  # "jsonl" or "har"
    _pos: list[int]

    @property
    def position(self) -> int:
        return self._pos[0]


def read_events(path: str, *, warn: Warn | None = None) -> Iterator[Event]:
    """Yield the events of a recording (or a Chrome DevTools HAR); see :func:`read_recording`."""
    return read_recording(path, warn=warn).events


def read_recording(path: str, *, warn: Warn | None = None) -> Recording:
    """Open a recording for reading.

    Raises ``RecordingError`` (one line, for the user) when the file cannot be opened, is empty,
    is neither a wsinspect recording nor a HAR, or has an unknown major version. While reading,
    damaged lines are skipped with a warning (``warn``, default: stderr), never an exception: a
    torn last line is what ``kill -9`` leaves behind.
    """
    warn = warn or _warn_stderr
    try:
        f = open(path, "rb")  # noqa: SIM115
        size = os.fstat(f.fileno()).st_size
    except OSError as exc:
        raise RecordingError(f"{path}: cannot read: {exc.strerror or exc}") from None
    first = f.readline()
    while first and not first.strip():
        first = f.readline()
    if not first:
        f.close()
        raise RecordingError(f"{path}: empty file, not a wsinspect recording")
    header: Any = None
    try:
        header = json.loads(first)
    except ValueError:
        header = None
    if isinstance(header, dict) and header.get("type") == "header":
        if header.get("format") != FORMAT_NAME:
            f.close()
            raise RecordingError(f"{path}: not a wsinspect recording (format {header.get('format')!r})")
        version = header.get("version")
        major = int(str(version).split(".")[0]) if str(version).split(".")[0].isdigit() else None
        if major != FORMAT_VERSION:
            f.close()
            raise RecordingError(
                f"{path}: recording format version {version} is not supported "
                f"(this wsinspect {__version__} reads version {FORMAT_VERSION})"
            )
        pos = [f.tell()]
        return Recording(path, header, _iter_lines(f, path, pos, warn), size, "jsonl", pos)
    # Not a JSONL recording: maybe a HAR (one JSON document, usually pretty-printed).
    from wsinspect.export.har import har_events, looks_like_har

    f.seek(0)
    if first.lstrip()[:1] != b"{" or size > 1 << 31:
        f.close()
        raise RecordingError(f"{path}: not a wsinspect recording or HAR file")
    try:
        doc = json.loads(f.read())
    except ValueError:
        doc = None
    finally:
        f.close()
    if not looks_like_har(doc):
        raise RecordingError(f"{path}: not a wsinspect recording or HAR file")
    events = har_events(doc, warn=warn)
    creator = doc["log"].get("creator", {})
    header = {
        "type": "header",
        "format": "har",
        "version": doc["log"].get("version"),
        "creator": f"{creator.get('name', '?')} {creator.get('version', '')}".strip(),
    }
    return Recording(path, header, iter(events), size, "har", [size])


def _iter_lines(f: IO[bytes], path: str, pos: list[int], warn: Warn) -> Iterator[Event]:
    lineno = 1
    unknown: set[str] = set()
    with f:
        for raw in f:
            lineno += 1
            pos[0] += len(raw)
            if not raw.strip():
                continue
            torn = not raw.endswith(b"\n")
            try:
                d = json.loads(raw)
                if not isinstance(d, dict):
                    raise ValueError("not an object")
            except ValueError:
                if torn:
                    warn(f"{path}:{lineno}: last line is incomplete (the recording was cut "
                         "short); skipped")  # fmt: skip
                else:
                    warn(f"{path}:{lineno}: unreadable line skipped")
                continue
            kind = d.get("type")
            if kind == "header":
                continue  # a second header (concatenated recordings): nothing to show
            try:
                event = event_from_dict(d)
            except ValueError:
                if kind not in unknown:
                    unknown.add(str(kind))
                    warn(f"{path}:{lineno}: unknown record type {kind!r} skipped")
                continue
            except (KeyError, TypeError, AttributeError) as exc:
                warn(f"{path}:{lineno}: malformed {kind} record skipped ({exc!r})")
                continue
            yield event


def iter_with_progress(recording: Recording, update: Callable[[int], None]) -> Iterable[Event]:
    """Yield ``recording.events`` and call ``update(bytes_read)`` every 1,000 events."""
    for n, event in enumerate(recording.events):
        if n % 1000 == 0:
            update(recording.position)
        yield event
    update(recording.size)
