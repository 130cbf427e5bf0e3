"""Reading recordings back: JSON Lines (format v1), and HAR files saved by Chrome DevTools.

A torn last line (what ``kill -9`` leaves) or a damaged line is skipped with a warning, never
an exception; a file that is not a recording this version can read raises ``RecordingError``
with one line for the user. A HAR is detected by content (see ``wsinspect.export.har``), so a
browser session can be inspected with ``cat``, ``stats`` and ``view``.
"""

from __future__ import annotations

import binascii
import json
import os
import re
import sys
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from typing import IO, Any, Literal, overload

from wsinspect import __version__
from wsinspect.events import Event, FrameSeen
from wsinspect.recording.format import (
    FORMAT_NAME,
    FORMAT_VERSION,
    UnknownRecordType,
    event_from_dict,
)
from wsinspect.recording.format_v2 import FORMAT_VERSION_2, events_from_dict, header_fields
from wsinspect.wire.frames import Frame
from wsinspect.wire.sides import Direction

#: The major versions this reader reads.
READS = (FORMAT_VERSION, FORMAT_VERSION_2)

__all__ = [
    "QuickFrame",
    "Recording",
    "RecordingError",
    "events_at",
    "iter_quick",
    "iter_with_progress",
    "quick_frame",
    "quick_match",
    "read_events",
    "read_recording",
    "recording_version",
    "scan",
]

Warn = Callable[[str], None]


class RecordingError(Exception):
    """A file is not a recording this version can read; ``str(err)`` is one line for the user."""


def _warn_stderr(text: str) -> None:
    print(f"wsinspect: warning: {text}", file=sys.stderr)



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
        if major not in READS:
            f.close()
            raise RecordingError(_unsupported(path, version))
        pos = [f.tell()]
        return Recording(path, header, _iter_lines(f, path, pos, warn, major), size, "jsonl",
                         pos)
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


def _iter_lines(f: IO[bytes], path: str, pos: list[int], warn: Warn,
                major: int) -> Iterator[Event]:
    lineno = 1
    unknown: set[str] = set()
    v2 = major >= FORMAT_VERSION_2
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
                         "short); skipped")
                else:
                    warn(f"{path}:{lineno}: unreadable line skipped")
                continue
            kind = d.get("type")
            if kind == "header":
                continue  # a second header (concatenated recordings): nothing to show
            try:
                if v2:
                    yield from events_from_dict(d)
                    continue
                event = event_from_dict(d)
            except UnknownRecordType:
                if kind not in unknown:
                    unknown.add(str(kind))
                    warn(f"{path}:{lineno}: unknown record type {kind!r} skipped")
                continue
            except (KeyError, TypeError, AttributeError, ValueError) as exc:
                warn(f"{path}:{lineno}: malformed {kind} record skipped ({exc!r})")
                continue
            yield event


def _read_header(f: IO[bytes], path: str) -> tuple[dict[str, Any], int, int]:
    """The header of a JSONL recording open at its start: ``(header, offset after it, major
    version)``.
    ``RecordingError`` when it is not a wsinspect recording of a version this one reads."""
    first = f.readline()
    while first and not first.strip():
        first = f.readline()
    if not first:
        raise RecordingError(f"{path}: empty file, not a wsinspect recording")
    try:
        header = json.loads(first)
    except ValueError:
        header = None
    if not isinstance(header, dict) or header.get("type") != "header":
        raise RecordingError(f"{path}: not a wsinspect recording")
    if header.get("format") != FORMAT_NAME:
        raise RecordingError(f"{path}: not a wsinspect recording (format {header.get('format')!r})")
    version = header.get("version")
    major = int(str(version).split(".")[0]) if str(version).split(".")[0].isdigit() else None
    if major not in READS:
        raise RecordingError(_unsupported(path, version))
    return header, f.tell(), major


def _unsupported(path: str, version: object) -> str:
    return (f"{path}: recording format version {version} is not supported "
            f"(this wsinspect {__version__} reads versions {', '.join(map(str, READS))})")


def recording_version(path: str) -> int:
    """The major format version of the recording at ``path`` (``RecordingError`` when it is
    not a recording this version reads)."""
    try:
        with open(path, "rb") as f:
            _, _, major = _read_header(f, path)
    except OSError as exc:
        raise RecordingError(f"{path}: cannot read: {exc.strerror or exc}") from None
    return major


def _line_events(raw: bytes, major: int) -> list[Event]:
    """The events of one complete line of a version ``major`` recording;
    ``ValueError``/``UnknownRecordType`` (and the converters' ``KeyError``/``TypeError``) when
    it is damaged or of an unknown type."""
    d = json.loads(raw)
    if not isinstance(d, dict):
        raise ValueError("not an object")
    if d.get("type") == "header":
        return []
    if major >= FORMAT_VERSION_2:
        return events_from_dict(d)
    return [event_from_dict(d)]


def scan(path: str, start: int = 0, *, warn: Warn | None = None) -> Iterator[tuple[int, Event]]:
    """``(offset of the line the event came from, event)`` for every event from byte ``start``
    (a line start; 0 = the beginning, header skipped). One line may give several events (same
    offset). A torn last line is not consumed (no warning either): a later scan from its offset
    re-reads it once it is complete, so a file still being written can be followed. Damaged
    lines are skipped with a warning (``warn``, default: stderr).
    """
    warn = warn or _warn_stderr
    try:
        f = open(path, "rb")  # noqa: SIM115
    except OSError as exc:
        raise RecordingError(f"{path}: cannot read: {exc.strerror or exc}") from None
    with f:
        _, body, major = _read_header(f, path)
        offset = max(start, body)
        f.seek(offset)
        unknown: set[str] = set()
        for raw in f:
            here = offset
            offset += len(raw)
            if not raw.endswith(b"\n"):
                return  # torn (or still being written): left for a later scan
            if not raw.strip():
                continue
            try:
                events = _line_events(raw, major)
            except UnknownRecordType as exc:
                if str(exc) not in unknown:
                    unknown.add(str(exc))
                    warn(f"{path}: offset {here}: {exc}; skipped")
                continue
            except (KeyError, TypeError, AttributeError, ValueError) as exc:
                warn(f"{path}: offset {here}: unreadable line skipped ({exc!r})")
                continue
            for event in events:
                yield here, event


def events_at(path_or_file: str | IO[bytes], offset: int) -> list[Event]:
    """The events of the one line starting at ``offset`` (``[]`` for the header, a blank or an
    incomplete line). ``path_or_file``: a path, or a binary file open for reading (its
    position moves). Raises ``ValueError`` when the line is damaged."""
    if isinstance(path_or_file, str):
        with open(path_or_file, "rb") as opened:
            return events_at(opened, offset)
    f = path_or_file
    f.seek(0)
    _, _, major = _read_header(f, str(getattr(f, "name", "recording")))
    f.seek(offset)
    raw = f.readline()
    if not raw.endswith(b"\n") or not raw.strip():
        return []
    return _line_events(raw, major)


#: A common v2 frame line (``recording.encoder.frame_line_v2``'s): no rare field, and at most
#: the one-frame message it is. The payload's JSON string body is group 7: the greedy ``.*``
#: ends at the last ``","msg":``, which cannot occur inside a JSON string (its quote would be
#: escaped).
_QUICK = re.compile(
    rb'\{"type":"frame","conn":(\d+),"seq":(\d+),"dir":"(c2s|s2c)","ts":([-+.0-9eE]+),'
    rb'"hdr":"([0-9a-f]*)","(text|b64)":"(.*)","msg":(\d+)(,"end":\{\})?\}\n\Z',
    re.DOTALL,
)


@dataclass(slots=True)
class QuickFrame:
    """A common v2 frame line, parsed only as far as it is cheap (:func:`iter_quick`): no
    violations, delivered, fields as its header bytes say, and at most the one-frame message
    it is (``ends``). ``payload()`` decodes the payload; ``events()`` gives the events the
    line stands for, as the full reader would."""

    conn: int
    direction: Direction
    ts: float
    header: bytes
    message_no: int
    ends: bool
    _raw: bytes
    _span: tuple[int, int, bool]  # where the payload's JSON string body is, and if text

    def payload(self) -> bytes:
        start, end, text = self._span
        body = self._raw[start:end]
        if not text:
            return binascii.a2b_base64(body)
        if b"\\" not in body:
            return body  # JSON text without escapes is its UTF-8 bytes
        value: str = json.loads(self._raw[start - 1 : end + 1])
        return value.encode("utf-8")

    def stored_payload(self) -> tuple[bytes, bool]:
        """The payload as the line stores it, undecoded (the JSON string's body: escaped text
        or base64), and whether as text. The same for two lines means the same payload, a
        cheap key; the converse may not hold (a hand-written line may escape differently)."""
        start, end, text = self._span
        return self._raw[start:end], text

    def frame_event(self) -> FrameSeen:
        """The line's ``FrameSeen``, as the full reader gives it."""
        fin, rsv1, rsv2, rsv3, opcode, masked, key, length = header_fields(self.header)  # type: ignore[misc]
        seq = int(_QUICK.match(self._raw).group(2))  # type: ignore[union-attr]
        frame = Frame(fin, rsv1, rsv2, rsv3, opcode, masked, key, length, self.header,
                      self.payload(), message_no=self.message_no,
                      text=self._span[2] and opcode in (0, 1) and not rsv1)
        return FrameSeen(self.conn, seq, self.direction, self.ts, frame)

    def events(self) -> list[Event]:
        """The events the line stands for, as the full reader gives them."""
        return events_from_dict(json.loads(self._raw))


#: The hex length of a whole frame header, by the hex of its first two bytes (RFC 6455 §5.2);
#: filled as they are met.
_HEADER_HEX: dict[bytes, int] = {}


def _header_hex_length(start: bytes) -> int:
    """The hex length of a whole frame header that starts with the hex ``start`` (4 hex
    digits; -1 when they are not)."""
    try:
        second = int(start[2:4], 16) if len(start) == 4 else -1
    except ValueError:
        second = -1
    if second < 0:
        return -1
    n = second & 127
    length = 2 * (2 + (2 if n == 126 else 8 if n == 127 else 0) + (second >> 7) * 4)
    _HEADER_HEX[start] = length
    return length


def quick_match(raw: bytes, match: Callable[[bytes], re.Match[bytes] | None] = _QUICK.match
                ) -> re.Match[bytes] | None:
    """The match of a common v2 frame line (its groups: ``conn``, ``seq``, ``dir``, ``ts``,
    ``hdr``, ``text``/``b64``, the payload's JSON string body, ``msg``, ``,"end":{}`` or
    ``None``), when its header bytes are one whole header; ``None`` for any other line."""
    m = match(raw)
    if m is None:
        return None
    hdr = m.group(5)
    start = hdr[:4]
    if len(hdr) != (_HEADER_HEX.get(start) or _header_hex_length(start)):
        return None  # not one whole header: the full reader says what is wrong
    return m


def quick_frame(m: re.Match[bytes]) -> QuickFrame:
    """The :class:`QuickFrame` of a :func:`quick_match`."""
    conn, _, direction, ts, hdr, kind, _, message_no, ends = m.groups()
    return QuickFrame(int(conn), "c2s" if direction == b"c2s" else "s2c", float(ts),
                      bytes.fromhex(hdr.decode("ascii")), int(message_no), ends is not None,
                      m.string, (m.start(7), m.end(7), kind == b"text"))


@overload
def iter_quick(recording: Recording, update: Callable[[int], None] | None = None, *,
               warn: Warn | None = None, matches: Literal[False] = False
               ) -> Iterator[Event | QuickFrame]: ...


@overload
def iter_quick(recording: Recording, update: Callable[[int], None] | None = None, *,
               warn: Warn | None = None, matches: Literal[True]
               ) -> Iterator[Event | re.Match[bytes]]: ...


def iter_quick(recording: Recording, update: Callable[[int], None] | None = None,
               *, warn: Warn | None = None, matches: bool = False
               ) -> Iterator[Event | QuickFrame | re.Match[bytes]]:
    """The events of ``recording``, with the common frame lines of a v2 recording as
    :class:`QuickFrame` (parsed without ``json``, no objects built): for readers that need
    only some fields of most frames (``stats``, ``cat``). Other lines, v1 recordings and HARs
    give their events as :attr:`Recording.events` would. ``update(bytes_read)`` is called
    every 1,000 lines, for a progress bar. ``matches``: the common frame lines come as their
    :func:`quick_match` instead, for a reader that wants fewer fields still (``cat``;
    :func:`quick_frame` makes the ``QuickFrame``)."""
    if recording.kind != "jsonl" or recording.header.get("version") != FORMAT_VERSION_2:
        yield from (iter_with_progress(recording, update) if update else recording.events)
        return
    warn = warn or _warn_stderr
    path = recording.path
    start = recording.position
    recording.events = iter(())  # this reads the file instead
    with open(path, "rb") as f:
        f.seek(start)
        pos = start
        lineno = 1
        for raw in f:
            lineno += 1
            pos += len(raw)
            if update is not None and lineno % 1000 == 0:
                update(pos)
            m = quick_match(raw)
            if m is not None:
                yield m if matches else quick_frame(m)
                continue
            if not raw.strip():
                continue
            try:
                d = json.loads(raw)
                if not isinstance(d, dict):
                    raise ValueError("not an object")
            except ValueError:
                if raw.endswith(b"\n"):
                    warn(f"{path}:{lineno}: unreadable line skipped")
                else:
                    warn(f"{path}:{lineno}: last line is incomplete (the recording was cut "
                         "short); skipped")
                continue
            if d.get("type") == "header":
                continue
            try:
                yield from events_from_dict(d)
            except UnknownRecordType:
                warn(f"{path}:{lineno}: unknown record type {d.get('type')!r} skipped")
            except (KeyError, TypeError, AttributeError, ValueError) as exc:
                warn(f"{path}:{lineno}: malformed {d.get('type')} record skipped ({exc!r})")
    if update is not None:
        update(recording.size)


def iter_with_progress(recording: Recording, update: Callable[[int], None]) -> Iterable[Event]:
    """Yield ``recording.events`` and call ``update(bytes_read)`` every 1,000 events."""
    for n, event in enumerate(recording.events):
        if n % 1000 == 0:
            update(recording.position)
        yield event
    update(recording.size)
