"""``wsinspect stats`` counts decoded messages by type: per decoder, by kind and by its main
field, per connection and in total; --decode, --no-decode and a bad --decode."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import pytest
from decoding_helpers import tally_traffic, use_tally

from wsinspect.commands import stats
from wsinspect.recording.writer import Recorder


@pytest.fixture(autouse=True)
def _tally() -> None:
    use_tally()


@pytest.fixture
def rec(tmp_path: Path) -> Path:
    path = tmp_path / "rec.jsonl"
    r = Recorder.create(str(path))
    for event in tally_traffic():
        r.publish(event)
    r.close()
    return path


def run(argv: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str, str]:
    parser = argparse.ArgumentParser()
    stats.configure(parser)
    code = stats.run(parser.parse_args(argv))
    out = capsys.readouterr()
    return code, out.out, out.err


def test_json_counts_by_kind_and_main_field(rec: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run([str(rec), "--json"], capsys)
    assert code == 0
    d = json.loads(out)
    total = d["total"]["decoded"]["tally"]
    assert total == {"messages": 7, "errors": 1, "kinds": {"event": 4, "ack": 2},
                     "by_field": {"event": {"chat": 3, "join": 1}}}
    conns = {c["conn"]: c for c in d["connections"]}
    assert conns[1]["decoded"]["tally"]["by_field"] == {"event": {"chat": 2, "join": 1}}
    assert "decoded" not in conns[2]


def test_text_report_has_a_decoded_line(rec: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run([str(rec)], capsys)
    assert code == 0
    assert ("  decoded tally: 7 messages; event 4, ack 2; event: chat (3), join (1); "
            "1 not parsed") in out.splitlines()


def test_no_decode_and_a_rule(rec: Path, capsys: pytest.CaptureFixture[str]) -> None:
    _, out, _ = run([str(rec), "--json", "--no-decode"], capsys)
    assert "decoded" not in json.loads(out)["total"]
    _, out, _ = run([str(rec), "--json", "--no-decode", "--decode", "tally:^/plain"], capsys)
    d = json.loads(out)["total"]["decoded"]["tally"]
    assert d["messages"] == 1 and d["by_field"] == {"event": {"chat": 1}}


def test_an_unknown_decoder_is_one_line_and_status_2(rec: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = run([str(rec), "--decode", "nosuch"], capsys)
    assert code == 2 and out == ""
    assert err.startswith("wsinspect stats: error: --decode 'nosuch': unknown decoder 'nosuch'")
    assert len(err.splitlines()) == 1
