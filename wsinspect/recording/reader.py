"""Reading recordings back: JSON Lines (format v1), and HAR files saved by Chrome DevTools.

A torn last line (what ``kill -9`` leaves) or a damaged line is skipped with a warning, never
an exception; a file that is not a recording this version can read raises ``RecordingError``
with one line for the user. A HAR is detected by content (see ``wsinspect.export.har``), so a
browser session can be inspected with ``cat``, ``stats`` and ``view``.
"""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from typing import IO, Any

from wsinspect import __version__
from wsinspect.events import Event
from wsinspect.recording.format import (
    FORMAT_NAME,
    FORMAT_VERSION,
    UnknownRecordType,
    event_from_dict,
)

__all__ = ["Recording", "RecordingError", "iter_with_progress", "read_events", "read_recording"]

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
                         "short); skipped")
                else:
                    warn(f"{path}:{lineno}: unreadable line skipped")
                continue
            kind = d.get("type")
            if kind == "header":
                continue  # a second header (concatenated recordings): nothing to show
            try:
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


def iter_with_progress(recording: Recording, update: Callable[[int], None]) -> Iterable[Event]:
    """Yield ``recording.events`` and call ``update(bytes_read)`` every 1,000 events."""
    for n, event in enumerate(recording.events):
        if n % 1000 == 0:
            update(recording.position)
        yield event
    update(recording.size)
