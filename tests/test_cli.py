"""The command line as a user meets it: help, errors, and Ctrl-C."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

import pytest

from wsinspect.cli import main
from wsinspect.commands import is_interrupt


def test_no_command_prints_help_and_exits_2(capsys: pytest.CaptureFixture[str]) -> None:
    assert main([]) == 2
    out = capsys.readouterr().out
    for name in ("proxy", "tui", "demo", "view", "cat", "stats", "export", "replay", "ctl"):
        assert name in out


def test_ctrl_c_is_recognised_inside_an_exception_group() -> None:
    assert is_interrupt(KeyboardInterrupt())
    assert is_interrupt(BaseExceptionGroup("", [KeyboardInterrupt(), BaseExceptionGroup("", [KeyboardInterrupt()])]))
    assert not is_interrupt(BaseExceptionGroup("", [KeyboardInterrupt(), ValueError()]))
    assert not is_interrupt(ValueError())


def test_ctrl_c_ends_the_proxy_quietly_with_status_130() -> None:
    proc = subprocess.Popen(
        [sys.executable, "-m", "wsinspect", "proxy", "-l", "127.0.0.1:0", "-u", "ws://127.0.0.1:9"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert proc.stdout is not None
        line = proc.stdout.readline()  # "listening on ...": the relay is running
        assert "listening on" in line
        time.sleep(0.2)
        proc.send_signal(signal.SIGINT)
        _, err = proc.communicate(timeout=10)
    finally:
        if proc.poll() is None:
            os.kill(proc.pid, signal.SIGKILL)
    assert proc.returncode == 130
    assert "Traceback" not in err
