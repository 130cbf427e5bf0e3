"""The console sink with decoders: ``"decoded"`` on JSON message lines, a summary line in text
mode, nothing changed for connections without a decoder."""

from __future__ import annotations

import io
import json

import pytest
from decoding_helpers import Traffic, tally_traffic, use_tally

from wsinspect.events import FrameSeen, MessageSeen
from wsinspect.recording.encoder import json_line
from wsinspect.sinks.console import ConsoleSink
from wsinspect.sinks.decoded import new_decoding
from wsinspect.wire.frames import encode_frame


@pytest.fixture(autouse=True)
def _tally() -> None:
    use_tally()


def _run(fmt: str, *, rules: tuple[str, ...] = (), auto: bool = True) -> str:
    out = io.StringIO()
    sink = ConsoleSink(out, fmt=fmt, decoding=new_decoding(rules, auto))
    for e in tally_traffic():
        sink.publish(e)
    sink.flush()
    return out.getvalue()


def test_json_message_lines_carry_the_decoded_view() -> None:
    lines = [json.loads(line) for line in _run("json").splitlines()]
    messages = [d for d in lines if d["type"] == "message"]
    decoded = [(d["conn"], d.get("decoded", {}).get("summary")) for d in messages]
    assert decoded[:3] == [(1, 'tally event "chat" n=1'), (1, "tally ack 1 (chat)"), (2, None)]
    bad = next(d for d in messages if d["payload"] == "garbage")
    assert bad["decoded"]["error"] == "unknown word 'garbage'"
    assert bad["decoded"]["kind"] == "error"
    assert messages[-1]["decoded"]["fields"] == {"event": "chat", "n": 3}


def test_json_lines_are_the_plain_lines_plus_decoded() -> None:
    events = tally_traffic()
    lines = _run("json").splitlines()
    assert len(lines) == len(events)
    for event, line in zip(events, lines, strict=True):
        d = json.loads(line)
        d.pop("decoded", None)
        assert d == json.loads(json_line(event))


def test_text_mode_adds_one_summary_line_per_decoded_message() -> None:
    text = _run("text")
    summaries = [line for line in text.splitlines() if "↳" in line]
    assert summaries[0].endswith('#1 → ↳ tally event "chat" n=1')
    assert any(line.endswith("#3 ← ↳ tally ack 1 (chat)") for line in summaries)
    assert not any("#2" in line for line in summaries)
    assert len(summaries) == 7  # every message of #1 and #3


def test_a_rule_decodes_a_connection_without_subprotocol_and_no_decode_keeps_to_rules() -> None:
    text = _run("text", rules=("tally:^/plain",), auto=False)
    summaries = [line for line in text.splitlines() if "↳" in line]
    assert len(summaries) == 1 and '#2 → ↳ tally event "chat" n=1' in summaries[0]


def test_without_decoding_the_log_is_unchanged() -> None:
    out = io.StringIO()
    sink = ConsoleSink(out, fmt="json")
    for e in tally_traffic():
        sink.publish(e)
    sink.flush()
    assert "decoded" not in out.getvalue()


def test_a_message_split_in_frames_is_decoded_once_whole() -> None:
    t = Traffic().open(1, "/", "tally.v1")
    raw = encode_frame(1, b"EV big ", fin=False, mask_key=b"abcd") + encode_frame(
        0, b"payload", mask_key=b"abcd")
    t.send(1, "c2s", "EV first")

    for f in t.inspectors[(1, "c2s")].feed(raw):
        t.events.append(FrameSeen(1, 9, "c2s", t.ts, f))
        if f.message is not None:
            t.events.append(MessageSeen(1, "c2s", t.ts, f.message, f.message_no))
    out = io.StringIO()
    sink = ConsoleSink(out, fmt="text", decoding=new_decoding())
    for e in t.events:
        sink.publish(e)
    sink.flush()
    assert [line.split("↳ ")[1] for line in out.getvalue().splitlines() if "↳" in line] == [
        'tally event "first" n=1', 'tally event "big" n=2']
