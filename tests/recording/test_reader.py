"""Reading recordings back: torn and damaged lines are skipped with a warning, files that are
not recordings get a one-line error."""

from __future__ import annotations

from pathlib import Path

import pytest
from recording_samples import session

from wsinspect.events import Event
from wsinspect.recording.reader import RecordingError, read_events, read_recording
from wsinspect.recording.writer import Recorder

pytestmark = pytest.mark.trio


@pytest.fixture(params=[1, 2], ids=["v1", "v2"])
def version(request: pytest.FixtureRequest) -> int:
    """The format version the test's recording is written in: every reader reads both."""
    return int(request.param)


def record(path: Path, events: list[Event], version: int = 2) -> None:
    rec = Recorder.create(str(path), version=version)
    for event in events:
        rec.publish(event)
    rec.close()


async def test_torn_last_line_is_skipped_with_a_warning(tmp_path: Path, version: int) -> None:
    path = tmp_path / "rec.jsonl"
    record(path, session(), version)
    whole = len(list(read_events(str(path))))
    with path.open("a", encoding="utf-8") as f:
        f.write('{"type":"frame","conn":1,"seq":9,"dir":"c2s","ts":1.0,"fin":tr')
    warnings: list[str] = []
    back = list(read_events(str(path), warn=warnings.append))
    assert len(back) == whole
    assert len(warnings) == 1 and "incomplete" in warnings[0]


async def test_damaged_middle_line_is_skipped_and_reading_goes_on(tmp_path: Path,
                                                                   version: int) -> None:
    path = tmp_path / "rec.jsonl"
    record(path, session(), version)
    whole = len(list(read_events(str(path))))
    rows = path.read_text("utf-8").splitlines()
    rows.insert(3, "{not json")
    path.write_text("\n".join(rows) + "\n", "utf-8")
    warnings: list[str] = []
    back = list(read_events(str(path), warn=warnings.append))
    assert len(back) == whole
    assert warnings == [f"{path}:4: unreadable line skipped"]


async def test_lines_with_values_the_format_does_not_allow_are_skipped(tmp_path: Path,
                                                                       version: int) -> None:
    path = tmp_path / "rec.jsonl"
    record(path, session(), version)
    whole = len(list(read_events(str(path))))
    rows = path.read_text("utf-8").splitlines()
    rows.insert(2, rows[2].replace('"dir":"c2s"', '"dir":"sideways"').replace('"dir":"s2c"', '"dir":"sideways"'))
    rows.append('{"type":"close","conn":1,"ts":2.0,"initiator":"nobody","how":"fin"}')
    rows.append('{"type":"tachyon","conn":1,"ts":2.0}')
    path.write_text("\n".join(rows) + "\n", "utf-8")
    warnings: list[str] = []
    back = list(read_events(str(path), warn=warnings.append))
    assert len(back) == whole  # the three bad lines skipped
    assert "sideways" in warnings[0] and "is not one of c2s, s2c" in warnings[0]
    assert "malformed close record" in warnings[1] and "nobody" in warnings[1]
    assert "unknown record type 'tachyon'" in warnings[2]
    assert len(warnings) == 3


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ("", "empty file"),
        ("\n\n", "empty file"),
        ("hello world\n", "not a wsinspect recording or HAR"),
        ('{"a": 1}\n', "not a wsinspect recording or HAR"),
        ('{"type":"header","format":"wsinspect-recording","version":3}\n', "version 3 is not supported"),
        ('{"type":"header","format":"other","version":1}\n', "not a wsinspect recording"),
    ],
)
async def test_non_recordings_get_a_one_line_error(tmp_path: Path, content: str, message: str) -> None:
    path = tmp_path / "file"
    path.write_text(content, "utf-8")
    with pytest.raises(RecordingError, match=message) as info:
        read_recording(str(path))
    assert "\n" not in str(info.value)


