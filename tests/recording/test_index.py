"""The recording's index: built on first open, reused, extended after an append, rebuilt when
stale or damaged, torn last lines left for later; and the searches over it. Recordings are
written by the real recorder."""

from __future__ import annotations

import os
import shutil
from collections.abc import Sequence
from pathlib import Path

import pytest
from recording_samples import every_kind

import wsinspect.recording.index as index_module
from wsinspect.events import Event, FrameSeen, MessageAction, MessageSeen
from wsinspect.recording.format import to_dict
from wsinspect.recording.index import (
    INDEX_SUFFIX,
    RecordingIndex,
    RowQuery,
    open_index,
)
from wsinspect.recording.index_db import HAS_FTS5
from wsinspect.recording.reader import events_at, read_events, scan
from wsinspect.recording.writer import Recorder
from wsinspect.wire.frames import encode_frame
from wsinspect.wire.inspector import Inspector

T0 = 1_700_000_000.0


def echoes(n: int, *, word: bytes = b"echo", conn: int = 1) -> list[Event]:
    """``n`` text echoes (a frame and its message each way), numbered in the payload."""
    inspectors = {"c2s": Inspector("c2s"), "s2c": Inspector("s2c")}
    out: list[Event] = []
    seq = 0
    for i in range(n):
        for d in ("c2s", "s2c"):
            data = encode_frame(1, b"%s %06d" % (word, i), mask_key=b"abcd" if d == "c2s" else None)
            for f in inspectors[d].feed(data):
                seq += 1
                out.append(FrameSeen(conn, seq, d, T0 + i * 0.001, f))
                assert f.message is not None
                out.append(MessageSeen(conn, d, T0 + i * 0.001, f.message, f.message_no))
    return out


def record(path: Path, events: list[Event]) -> Path:
    rec = Recorder.create(str(path))
    for e in events:
        rec.publish(e)
    rec.close()
    return path


def open_fresh(path: Path, *, location: str | None = None,
               fts: bool = False) -> tuple[RecordingIndex, list[str]]:
    seen: list[str] = []
    index = open_index(str(path), warn=seen.append, location=location, fts=fts)
    index.update()
    return index, seen


def frame_line(path: Path, n: int) -> int:
    """Offset of the line of the ``n``-th frame (from 0), whatever the format version."""
    frames = (off for off, e in scan(str(path)) if type(e) is FrameSeen)
    for _ in range(n):
        next(frames)
    return next(frames)


def dicts(events: Sequence[Event]) -> list[dict[str, object]]:
    """Events compared by their dict form (frames compare by identity)."""
    return [to_dict(e) for e in events]


def rows_of(index: RecordingIndex, path: Path) -> list[FrameSeen | MessageAction]:
    """Every row's event, read back through the index's offsets."""
    out: list[FrameSeen | MessageAction] = []
    with open(path, "rb") as f:
        for _id, off, kind, conn, seq in index.row_refs(0, index.rows):
            for e in events_at(f, off):
                if kind == 1 and type(e) is MessageAction:
                    out.append(e)
                    break
                if kind == 0 and type(e) is FrameSeen and (e.conn, e.seq) == (conn, seq):
                    out.append(e)
                    break
    return out


def test_the_index_is_built_on_first_open_beside_the_recording(tmp_path: Path) -> None:
    path = record(tmp_path / "rec.jsonl", every_kind())
    index, seen = open_fresh(path)
    assert index.location == str(path) + INDEX_SUFFIX and os.path.exists(index.location)
    expected = [e for e in read_events(str(path)) if type(e) in (FrameSeen, MessageAction)]
    assert index.rows == len(expected)
    assert index.frames == sum(1 for e in expected if type(e) is FrameSeen)
    assert dicts(rows_of(index, path)) == dicts(expected)
    conns = {c.conn: c for c in index.connections()}
    assert conns[1].client == "127.0.0.1:51234" and conns[1].state == "closed"
    assert conns[3].state == "rejected"
    frames1 = [e for e in expected if type(e) is FrameSeen and e.conn == 1]
    assert conns[1].frames_c2s + conns[1].frames_s2c == len(frames1)
    assert seen == []


def test_a_second_open_reuses_the_index_without_reading_the_recording(tmp_path: Path) -> None:
    path = record(tmp_path / "rec.jsonl", echoes(50))
    first, _ = open_fresh(path)
    rows = first.rows
    first.close()
    again = open_index(str(path), warn=pytest.fail)
    assert again.rows == rows == 100
    assert again.update() == 0
    assert again.scanned_lines == 0
    assert again.rebuilt is None


def test_the_index_is_extended_after_an_append(tmp_path: Path) -> None:
    full = record(tmp_path / "full.jsonl", echoes(300))
    data = full.read_bytes()
    cut = frame_line(full, 100)
    path = tmp_path / "rec.jsonl"
    path.write_bytes(data[:cut])  # the header and 50 echoes
    index, _ = open_fresh(path)
    assert index.rows == 100
    with open(path, "ab") as f:
        f.write(data[cut:])
    assert index.stale()
    index.scanned_lines = 0
    assert index.update() == 500
    appended = data[cut:].count(b"\n")
    assert index.scanned_lines == appended  # only the appended lines were read
    assert index.rows == 600
    reference, _ = open_fresh(full, location=str(tmp_path / "ref.wsidx"))
    assert index.row_refs(0, 600) == reference.row_refs(0, 600)
    assert dicts(rows_of(index, path)[-1:]) == dicts(rows_of(reference, full)[-1:])


def test_a_torn_last_line_is_indexed_only_once_complete(tmp_path: Path) -> None:
    full = record(tmp_path / "full.jsonl", echoes(10))
    data = full.read_bytes()
    path = tmp_path / "rec.jsonl"
    prev = frame_line(full, 19)  # cut inside the last frame's line
    path.write_bytes(data[: prev + 20])
    index, seen = open_fresh(path)
    assert index.rows == 19
    assert index.indexed_to == prev
    assert seen == []
    with open(path, "ab") as f:
        f.write(data[prev + 20 :])
    assert index.update() == 1
    assert index.rows == 20
    assert dicts(rows_of(index, path)[-1:]) == dicts([e for e in echoes(10) if type(e) is FrameSeen][-1:])


def _same_size_recordings(tmp_path: Path) -> tuple[Path, Path]:
    a = record(tmp_path / "a.jsonl", echoes(40, word=b"alfa"))
    b = record(tmp_path / "b.jsonl", echoes(40, word=b"brav"))
    assert a.stat().st_size == b.stat().st_size
    return a, b


def test_the_index_is_rebuilt_when_the_recording_is_replaced_by_one_of_the_same_size(
    tmp_path: Path,
) -> None:
    a, b = _same_size_recordings(tmp_path)
    index, _ = open_fresh(a)
    assert index.search(RowQuery(text="alfa 000039")).rows(0, 100) == [78, 79]
    index.close()
    with open(a, "r+b") as f:  # rewritten in place: same inode, same size
        f.write(b.read_bytes())
    again, _ = open_fresh(a)
    assert again.rebuilt == "the recording was replaced"
    assert again.rows == 80
    assert again.search(RowQuery(text="alfa")).rows(0, 100) == []
    assert again.search(RowQuery(text="brav 000039")).rows(0, 100) == [78, 79]


def test_the_index_is_rebuilt_when_the_recording_was_truncated(tmp_path: Path) -> None:
    full = record(tmp_path / "full.jsonl", echoes(30))
    path = tmp_path / "rec.jsonl"
    shutil.copy(full, path)
    index, _ = open_fresh(path)
    index.close()
    path.write_bytes(full.read_bytes()[: frame_line(full, 10)])
    again, _ = open_fresh(path)
    assert again.rebuilt is not None
    assert again.rows == 10


def test_a_damaged_index_is_deleted_and_rebuilt_with_one_warning(tmp_path: Path) -> None:
    path = record(tmp_path / "rec.jsonl", echoes(20))
    index, _ = open_fresh(path)
    index.close()
    for suffix in ("-wal", "-shm"):
        Path(index.location + suffix).unlink(missing_ok=True)
    Path(index.location).write_bytes(os.urandom(8192))
    again, seen = open_fresh(path)
    assert len(seen) == 1 and "damaged" in seen[0]
    assert again.rows == 40
    assert dicts(rows_of(again, path)) == dicts([e for e in echoes(20) if type(e) is FrameSeen])


def test_an_index_that_cannot_go_beside_the_recording_goes_to_the_cache(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = record(tmp_path / "rec.jsonl", echoes(5))
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    beside = str(path) + INDEX_SUFFIX
    real = index_module._writable
    monkeypatch.setattr(index_module, "_writable", lambda loc: loc != beside and real(loc))
    index, seen = open_fresh(path)
    assert index.location.startswith(str(tmp_path / "cache"))
    assert len(seen) == 1 and "cannot write an index beside" in seen[0]
    assert index.rows == 10
    monkeypatch.setattr(index_module, "_writable", lambda loc: loc == ":memory:")
    memory, seen = open_fresh(path)
    assert memory.location == ":memory:" and "memory" in seen[0]
    assert memory.rows == 10


@pytest.mark.parametrize("fts", [False, True] if HAS_FTS5 else [False])
def test_searches_find_rows_by_text_regex_direction_connection_and_violations(
    tmp_path: Path, fts: bool
) -> None:
    events = every_kind()
    path = record(tmp_path / "rec.jsonl", events)
    index, _ = open_fresh(path, fts=fts)
    rows = rows_of(index, path)

    def found(query: RowQuery) -> list[FrameSeen | MessageAction]:
        search = index.search(query)
        try:
            return [rows[i] for i in search.rows(0, index.rows)]
        finally:
            search.close()

    # Text matches a frame through its message, case-insensitively; actions by their payload.
    held = found(RowQuery(text="MASKED BY"))
    assert {type(e) for e in held} == {FrameSeen, MessageAction}
    assert all(e.conn == 2 for e in held)
    assert found(RowQuery(text="masked by", kind=1)) == [e for e in held if type(e) is MessageAction]
    assert found(RowQuery(regex=r"^fix(ed)?$", kind=0)) == [
        e for e in rows if type(e) is FrameSeen and e.frame.payload == b"fixed"
    ]
    assert found(RowQuery(direction="c2s", conn=1)) == [
        e for e in rows if e.conn == 1 and e.direction == "c2s"
    ]
    bad = found(RowQuery(bad=True))
    assert bad and all(
        type(e) is FrameSeen and (e.frame.violations or not e.delivered) for e in bad
    )
    assert found(RowQuery(opcodes=frozenset({9}))) == [
        e for e in rows if (e.frame.opcode if isinstance(e, FrameSeen) else e.opcode) == 9
    ]
    assert found(RowQuery(text="no such text anywhere")) == []
    assert found(RowQuery(nothing=True)) == []


def test_rows_are_read_back_in_pieces_by_id_range(tmp_path: Path) -> None:
    path = record(tmp_path / "rec.jsonl", echoes(100))
    index, _ = open_fresh(path)
    search = index.search(RowQuery(direction="s2c"))
    pieces = [search.rows(a, a + 33) for a in range(0, 200, 33)]
    assert [i for p in pieces for i in p] == list(range(1, 200, 2))
