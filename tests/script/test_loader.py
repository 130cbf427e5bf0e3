"""Loading a script file: it runs as a module of its own, with what modules can do."""

from __future__ import annotations

from pathlib import Path

import pytest

from wsinspect.script.loader import ScriptError, ScriptFile


def test_a_script_can_define_dataclasses_and_reload(tmp_path: Path) -> None:
    path = tmp_path / "state.py"
    path.write_text(
        "from dataclasses import dataclass, field\n"
        "@dataclass\n"
        "class Seen:\n"
        "    texts: list = field(default_factory=list)\n"
        "SEEN = Seen()\n"
        "def on_message(conn, msg):\n"
        "    SEEN.texts.append(msg)\n"
    )
    hooks = ScriptFile(str(path)).load()
    assert hooks.on_message is not None
    hooks.on_message(None, "x")
    assert hooks.on_message.__globals__["SEEN"].texts == ["x"]


def test_a_script_that_fails_leaves_no_module_behind(tmp_path: Path) -> None:
    import sys

    path = tmp_path / "broken_one.py"
    path.write_text("raise RuntimeError('no')\n")
    with pytest.raises(ScriptError, match=r"broken_one\.py:1"):
        ScriptFile(str(path)).load()
    assert "wsinspect_script_broken_one" not in sys.modules
