"""The ``tui``, ``view`` and ``demo`` commands refuse bad input before any UI starts."""

from __future__ import annotations

from pathlib import Path

import pytest

from wsinspect.cli import main


def test_view_of_a_missing_file_says_so(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["view", str(tmp_path / "nope.jsonl")]) == 2
    assert "nope.jsonl: cannot read" in capsys.readouterr().err


def test_view_of_a_file_that_is_not_a_recording_says_so(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "notes.txt"
    path.write_text("hello\n")
    assert main(["view", str(path)]) == 2
    assert "not a wsinspect recording" in capsys.readouterr().err


def test_tui_refuses_an_unwritable_recording_path(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    target = tmp_path / "missing-dir" / "rec.jsonl"
    code = main(["tui", "-u", "ws://127.0.0.1:9", "-l", "127.0.0.1:0", "-w", str(target)])
    assert code == 2
    assert "cannot write" in capsys.readouterr().err


def test_ui_max_frames_must_be_positive(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        main(["tui", "-u", "ws://127.0.0.1:9", "--ui-max-frames", "0"])
    assert "--ui-max-frames" in capsys.readouterr().err


def test_demo_is_its_own_upstream(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["demo", "--no-tui", "-u", "ws://127.0.0.1:9"]) == 2
    assert "the demo is its own upstream" in capsys.readouterr().err
