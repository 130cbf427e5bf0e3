"""``wsinspect mock`` as a user runs it: a subprocess, a real client, the log and the recording."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
from websockets.sync.client import connect

from wsinspect.events import FrameSeen
from wsinspect.recording.reader import read_events

SCRIPT = """
    def on_open(conn):
        conn.send("s2c", "welcome")

    def on_message(conn, msg):
        return "echo " + msg.text
"""


def test_bad_script_is_a_one_line_error_and_status_2(tmp_path: Path) -> None:
    bad = tmp_path / "bad_mock.py"
    bad.write_text("def on_message(conn, msg):\n    return (\n")
    done = subprocess.run([sys.executable, "-m", "wsinspect", "mock", "--script", str(bad)],
                          capture_output=True, text=True, timeout=30)
    assert done.returncode == 2
    assert done.stderr.startswith(f"wsinspect mock: error: {bad}:2: SyntaxError")
    assert done.stderr.count("\n") == 1


def test_the_command_serves_logs_and_records(tmp_path: Path) -> None:
    script = tmp_path / "chat_mock.py"
    script.write_text(textwrap.dedent(SCRIPT))
    record = tmp_path / "mock.jsonl"
    env = dict(os.environ, PYTHONUNBUFFERED="1", NO_COLOR="1")
    proc = subprocess.Popen(
        [sys.executable, "-m", "wsinspect", "mock", "--script", str(script), "--listen",
         "127.0.0.1:0", "--log-format", "json", "--record", str(record)],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
    try:
        assert proc.stdout is not None
        first = json.loads(proc.stdout.readline())
        match = re.search(r"listening on ws://127\.0\.0\.1:(\d+), relaying to mock://chat_mock.py",
                          first["text"])
        assert match, first
        with connect(f"ws://127.0.0.1:{match.group(1)}/room", open_timeout=10) as ws:
            assert ws.recv(timeout=10) == "welcome"
            ws.send("hi")
            assert ws.recv(timeout=10) == "echo hi"
    finally:
        proc.send_signal(signal.SIGTERM)
        out, err = proc.communicate(timeout=20)
    assert proc.returncode in (0, 130), err
    assert '"echo hi"' in out or "echo hi" in out
    frames = [e for e in read_events(str(record)) if isinstance(e, FrameSeen)]
    payloads = [(e.direction, e.frame.payload) for e in frames if e.frame.opcode == 1]
    assert ("s2c", b"welcome") in payloads
    assert ("c2s", b"hi") in payloads
    assert ("s2c", b"echo hi") in payloads


@pytest.mark.parametrize("args", [["--help"]])
def test_help_teaches_with_an_example(args: list[str]) -> None:
    done = subprocess.run([sys.executable, "-m", "wsinspect", "mock", *args],
                          capture_output=True, text=True, timeout=30)
    assert "def on_message(conn, msg):" in done.stdout
    assert "each seeing what the ones before made of it" in done.stdout.replace("\n", " ").replace("  ", " ")
