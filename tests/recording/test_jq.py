"""The ``jq`` one-liners of docs/recording-format-v2.md answer on a real v2 recording."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import pytest
from recording_samples import every_kind

from wsinspect.events import ConnectionClosed, MessageSeen
from wsinspect.recording.reader import read_events
from wsinspect.recording.writer import Recorder

DOC = Path(__file__).parents[2] / "docs" / "recording-format-v2.md"
pytestmark = pytest.mark.skipif(shutil.which("jq") is None, reason="jq is not installed")


def one_liner(start: str) -> list[str]:
    """The jq arguments of the doc's one-liner that starts with ``start``."""
    line = next(x for x in DOC.read_text("utf-8").splitlines() if x.startswith(start))
    args = line.split(" ", 2)[1:]
    flags, rest = args[0], args[1]
    program = rest[1 : rest.rindex("'")]
    return [flags, program]


@pytest.fixture
def recording(tmp_path: Path) -> Path:
    path = tmp_path / "rec.jsonl"
    rec = Recorder.create(str(path), redact=False)
    for event in every_kind():
        rec.publish(event)
    rec.close()
    return path


def test_the_messages_of_one_connection(recording: Path) -> None:
    events = list(read_events(str(recording)))
    conn = next(e.conn for e in events if isinstance(e, MessageSeen))
    flags, program = one_liner("jq -c 'select(.conn == 3 and .end)")
    program = program.replace(".conn == 3", f".conn == {conn}")
    out = subprocess.run(["jq", flags, program, str(recording)], capture_output=True, text=True,
                         check=True).stdout.splitlines()
    expected = [e for e in events if isinstance(e, MessageSeen) and e.conn == conn]
    assert len(out) == len(expected) > 0
    for row, m in zip(out, expected, strict=True):
        direction, text = json.loads(row)
        assert direction == m.direction
        if m.message.opcode == 1 and not m.message.compressed:
            assert text == m.message.payload.decode()


def test_close_codes(recording: Path) -> None:
    flags, program = one_liner("jq -c 'select(.type == \"close\")")
    out = subprocess.run(["jq", flags, program, str(recording)], capture_output=True, text=True,
                         check=True).stdout.splitlines()
    closes = [e for e in read_events(str(recording)) if isinstance(e, ConnectionClosed)]
    assert [json.loads(r) for r in out] == [[c.conn, c.code, c.reason, c.initiator] for c in closes]
    assert closes
