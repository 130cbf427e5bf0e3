"""``wsinspect cat`` and ``wsinspect stats`` on recordings and Chrome HAR files."""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from types import ModuleType

import pytest
from recording_samples import every_kind

from wsinspect.commands import cat, stats
from wsinspect.events import Event
from wsinspect.recording.reader import read_events
from wsinspect.recording.writer import Recorder
from wsinspect.render import render_event


def run(module: ModuleType, argv: list[str]) -> int:
    parser = argparse.ArgumentParser()
    module.configure(parser)
    code: int = module.run(parser.parse_args(argv))
    return code


@pytest.fixture
def rec(tmp_path: Path) -> Path:
    path = tmp_path / "rec.jsonl"
    r = Recorder.create(str(path))
    for event in every_kind():
        r.publish(event)
    r.close()
    return path


def recorded(path: Path) -> list[Event]:
    return list(read_events(str(path)))


def test_cat_prints_the_live_log_lines(rec: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert run(cat, [str(rec)]) == 0
    out = capsys.readouterr().out.splitlines()
    events = recorded(rec)
    assert out[0] == render_event(events[0])
    frames = [render_event(e) for e in events if e.type == "frame"]
    assert all(line in out for line in frames)
    # a fragmented message gets its message line; a one-frame message is its frame line
    assert any("message text len=10 frames=2" in line for line in out)
    assert not any('message text len=6 frames=1 "héllo"' in line for line in out)


def test_cat_filters_by_connection_direction_and_opcode(rec: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert run(cat, [str(rec), "--conn", "1", "--dir", "s2c", "--opcode", "close"]) == 0
    out = capsys.readouterr().out.splitlines()
    assert len(out) == 1
    assert "#1 ← close FIN len=2 1000 (normal closure)" in out[0]


def test_cat_grep_matches_the_full_payload(rec: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert run(cat, [str(rec), "--grep", "mented$"]) == 0
    out = capsys.readouterr().out.splitlines()
    assert len(out) == 2  # the continuation frame and the reassembled message
    assert all("mented" in line for line in out)


def test_cat_messages_prints_one_line_per_message(rec: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert run(cat, [str(rec), "--messages", "--conn", "1", "--dir", "c2s"]) == 0
    out = capsys.readouterr().out.splitlines()
    assert [line.split(" message ")[1].split(" ")[0] for line in out] == ["text", "text", "binary"]


def test_cat_json_prints_the_recorded_objects(rec: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert run(cat, [str(rec), "--log-format", "json", "--opcode", "ping"]) == 0
    rows = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    # Control payloads are recorded base64 (format v1: only text data is stored as text).
    assert [(r["type"], r["opcode"], r["payload"], r["encoding"], r.get("written"))
            for r in rows] == [
        ("frame", 9, "cA==", "base64", None),
        ("frame", 9, "aGk=", "base64", "injected"),  # a ping the proxy wrote
    ]


@pytest.mark.parametrize("module", [cat, stats])
def test_not_a_recording_is_one_line_and_exit_2(
    module: ModuleType, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "notes.txt"
    path.write_text("hello\n", "utf-8")
    assert run(module, [str(path)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "not a wsinspect recording or HAR file" in err


def test_stats_counts_per_connection_and_total(rec: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert run(stats, [str(rec), "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    first = report["connections"][0]
    assert first["c2s"]["frames"] == 6 and first["s2c"]["frames"] == 4
    assert first["c2s"]["messages"] == 3 and first["s2c"]["messages"] == 2
    assert first["c2s"]["opcodes"] == {"text": 2, "cont": 1, "binary": 1, "ping": 1, "close": 1}
    assert first["c2s"]["largest_message"] == 512
    assert first["close"] == {"initiator": "client", "how": "close-handshake", "code": 1000,
                              "reason": "bye"}
    assert first["duration"] == 1.5
    second = report["connections"][1]
    assert second["violations"] == {"masked-server-frame": 1}
    assert second["faults"] == {"idle-timeout": 1}
    assert second["s2c"]["undelivered"] == 1
    # wire bytes: headers + full lengths, the frame the proxy wrote in place of one included
    assert second["s2c"]["bytes"] == (4 + 5000) + (6 + 16) + (2 + 5)
    assert (second["s2c"]["written"], second["c2s"]["written"]) == (1, 1)
    total = report["total"]
    assert (total["connections"], total["rejected"], total["http"]) == (2, 1, 1)
    assert total["c2s"]["frames"] == 7 and total["s2c"]["frames"] == 7
    assert total["closes"] == {"1000 by client": 1, "- by proxy": 1}


def test_stats_text_report_reads_well(rec: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert run(stats, [str(rec)]) == 0
    out = capsys.readouterr().out
    assert "#1 127.0.0.1:51234 /chat?x=1" not in out
    assert "#1 127.0.0.1:51234 /chat?room=1  duration 1.500s" in out
    assert "closed by client (close-handshake): 1000 (normal closure) 'bye'" in out
    assert "#3 127.0.0.1:51236 /nope: rejected 403 by proxy: Origin not allowed" in out
    assert "violations: masked-server-frame (1)" in out
    assert "undelivered frames: 1" in out
    assert "total: 2 connections, 1 rejected, 1 plain HTTP" in out


def test_stats_reads_a_chrome_har(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    import sys

    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "export"))
    from test_har import CHROME_HAR

    path = tmp_path / "chrome.har"
    path.write_text(json.dumps(CHROME_HAR), "utf-8")
    assert run(stats, [str(path), "--json"]) == 0
    total = json.loads(capsys.readouterr().out)["total"]
    assert (total["c2s"]["messages"], total["s2c"]["messages"]) == (1, 2)


def repeating_recording(path: Path) -> None:
    """Many frames that repeat a few payloads (as a busy connection does), masked with one key
    and with fresh keys, text and binary, a few times a millisecond, among every other kind."""
    from recording_samples import frames_for

    from wsinspect.wire.frames import encode_frame

    payloads = [b"ping 1", "héllo \"wörld\"\n".encode(), b"x" * 200, b"\xff\xfe\x00", b""]
    keys = [b"\x01\x02\x03\x04"] * 3 + [bytes([i, 7, 9, 200 - i]) for i in range(40)]
    c2s = b"".join(encode_frame(1 + i % 2 * (i % 4 == 3), payloads[i % len(payloads)],
                                mask_key=keys[i % len(keys)]) for i in range(120))
    s2c = b"".join(encode_frame(1 + (i % 5 == 3), payloads[i % len(payloads)])
                   for i in range(120))
    r = Recorder.create(str(path))
    for event in every_kind():
        r.publish(event)
    for conn in (3, 4):
        for event in frames_for("c2s", c2s, conn=conn, ts=1_700_000_000.0004, step=0.0003):
            r.publish(event)
        for event in frames_for("s2c", s2c, conn=conn, ts=1_700_000_001.9991, step=0.0003):
            r.publish(event)
    r.close()


def cat_by_rendering(path: Path, grep: str | None, width: int = 80) -> list[str]:
    """What ``cat`` prints, said as its help says it: every event's ``render_event`` line
    (a one-frame message: its frame says it), only those whose line or full payload match."""
    import re

    from wsinspect.events import FrameSeen, MessageSeen

    pattern = re.compile(grep) if grep is not None else None
    out = []
    for e in read_events(str(path)):
        if isinstance(e, MessageSeen) and e.message.frames <= 1 and not e.message.compressed:
            continue
        line = render_event(e, width=width)
        if pattern is not None and not pattern.search(line):
            payload = (e.frame.payload if isinstance(e, FrameSeen)
                       else e.message.payload if isinstance(e, MessageSeen) else None)
            if payload is None or not pattern.search(payload.decode("utf-8", "replace")):
                continue
        out.append(line)
    return out


@pytest.mark.parametrize("grep", [
    None, "nothing-matches-this", "ping", "wörld", r"\\n", r"^\d\d:\d\d:\d\d\.00[0-4] ",
    "mask=01020304", r"mask=(?!0102)", "#4 ← text", "0xfffe00", r'"x{10}…x+"', "len=0 ",
    "\ufffd", r"^(?!.*mask).*len=6",
])
def test_cat_prints_what_rendering_every_event_prints(
        tmp_path: Path, capsys: pytest.CaptureFixture[str], grep: str | None) -> None:
    """``cat`` renders each distinct common frame once and reuses it (the time and the mask key
    go in per frame): the very lines, and the very matches, of rendering every event."""
    path = tmp_path / "many.jsonl"
    repeating_recording(path)
    assert run(cat, [str(path), "--width", "20"] + (["--grep", grep] if grep else [])) == 0
    out = capsys.readouterr().out.splitlines()
    assert out == cat_by_rendering(path, grep, width=20)
    if grep is None:
        assert len(out) > 480


def test_cat_filters_common_frames_as_every_other_event(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "many.jsonl"
    repeating_recording(path)
    assert run(cat, [str(path), "--conn", "4", "--dir", "c2s", "--opcode", "binary"]) == 0
    out = capsys.readouterr().out.splitlines()
    expected = [line for line in cat_by_rendering(path, None)
                if " #4 → binary " in line]
    assert out == expected and expected
