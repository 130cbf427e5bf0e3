"""Random access into recordings (``reader.scan``, ``events_at``, ``recording_version``), v1
and v2, and v1 files written by the proxy before v2 read back as the same events in v2."""

from __future__ import annotations

import itertools
from pathlib import Path

import pytest
from recording_samples import every_kind, session

from wsinspect.events import Event, FrameSeen, MessageSeen
from wsinspect.recording.format import to_dict
from wsinspect.recording.reader import (
    RecordingError,
    events_at,
    read_events,
    recording_version,
    scan,
)
from wsinspect.recording.writer import Recorder

#: A real session recorded by ``wsinspect proxy -q -w`` before format v2 (text, binary,
#: fragments, a ping, permessage-deflate messages, closes).
PROXY_V1 = Path(__file__).with_name("proxy_v1.jsonl")


def record(path: Path, events: list[Event], version: int) -> None:
    rec = Recorder.create(str(path), version=version, redact=False)
    for event in events:
        rec.publish(event)
    rec.close()


@pytest.mark.parametrize("version", [1, 2])
def test_scan_gives_every_event_with_the_offset_of_its_line(tmp_path: Path, version: int) -> None:
    path = tmp_path / "rec.jsonl"
    record(path, every_kind(), version)
    assert recording_version(str(path)) == version
    scanned = list(scan(str(path), warn=pytest.fail))
    assert [to_dict(e) for _, e in scanned] == [to_dict(e) for e in read_events(str(path))]
    raw = path.read_bytes()
    offsets = sorted({off for off, _ in scanned})
    assert all(raw[off - 1 : off] == b"\n" for off in offsets)  # line starts
    with path.open("rb") as f:
        again = [(off, e) for off in offsets for e in events_at(f, off)]
    assert [(o, to_dict(e)) for o, e in again] == [(o, to_dict(e)) for o, e in scanned]
    # From the middle: the same events as the tail of a whole scan.
    middle = offsets[len(offsets) // 2]
    tail = [(o, to_dict(e)) for o, e in scan(str(path), middle)]
    assert tail == [(o, to_dict(e)) for o, e in scanned if o >= middle]
    if version == 2:  # a frame and the message it completes share a line
        pairs = [(o, e) for o, e in scanned if isinstance(e, MessageSeen)]
        assert pairs and any(isinstance(e, FrameSeen) and o == pairs[0][0] for o, e in scanned)


def test_a_torn_last_line_is_left_for_a_later_scan(tmp_path: Path) -> None:
    path = tmp_path / "rec.jsonl"
    record(path, session(), 2)
    whole = path.read_bytes()
    body = whole.split(b"\n", 1)[1]
    last_line = body.splitlines(keepends=True)[-1]
    path.write_bytes(whole[: -len(last_line) // 2])  # the last line half written
    warnings: list[str] = []
    first = list(scan(str(path), warn=warnings.append))
    assert warnings == []  # still being written: no warning, nothing consumed
    resume = len(whole) - len(last_line)
    assert all(off < resume for off, _ in first)
    assert events_at(str(path), resume) == []
    path.write_bytes(whole)  # the writer finished the line
    rest = list(scan(str(path), resume))
    assert rest and {off for off, _ in rest} == {resume}
    every = [to_dict(e) for _, e in first] + [to_dict(e) for _, e in rest]
    assert every == [to_dict(e) for e in read_events(str(path))]


def test_recording_version_refuses_what_is_not_a_recording(tmp_path: Path) -> None:
    path = tmp_path / "x.jsonl"
    path.write_text('{"type":"header","format":"wsinspect-recording","version":3}\n')
    with pytest.raises(RecordingError, match="version 3 is not supported"):
        recording_version(str(path))
    with pytest.raises(RecordingError, match="version 3 is not supported"):
        list(scan(str(path)))


def test_a_v1_proxy_recording_reads_back_the_same_when_rewritten_as_v2(tmp_path: Path) -> None:
    assert recording_version(str(PROXY_V1)) == 1
    events = list(read_events(str(PROXY_V1), warn=pytest.fail))
    assert any(isinstance(e, MessageSeen) and e.message.compressed for e in events)
    # Link each last frame to its message, as the relay does, so the v2 writer merges them.
    for frame, message in itertools.pairwise(events):
        if (isinstance(frame, FrameSeen) and isinstance(message, MessageSeen)
                and frame.conn == message.conn and frame.direction == message.direction
                and frame.frame.message_no == message.message_no):
            frame.frame.message = message.message
    path = tmp_path / "v2.jsonl"
    record(path, events, 2)
    back = list(read_events(str(path), warn=pytest.fail))
    assert [to_dict(e) for e in back] == [to_dict(e) for e in events]
    assert path.stat().st_size < 0.6 * PROXY_V1.stat().st_size
    assert '"type":"message"' not in path.read_text("utf-8")  # every message on its frame
