"""The I/O boundary is a promise: ``wire`` is sans-IO and imports nothing of ours outside it (but
the speed-ups shim); ``recording`` stands below the relay and the outputs; only ``tui`` imports
Textual. Checked in a fresh interpreter so other tests can't mask it."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest


def _modules_after_import(module: str) -> set[str]:
    code = f"import json, sys, {module}; print(json.dumps(sorted(sys.modules)))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    return set(json.loads(out.stdout))


WIRE_MODULES = [
    "wsinspect.wire.frames",
    "wsinspect.wire.walker",
    "wsinspect.wire.inspector",
    "wsinspect.wire.checks",
    "wsinspect.wire.messages",
    "wsinspect.wire.closecodes",
]


@pytest.mark.parametrize("module", WIRE_MODULES)
def test_wire_imports_no_io_and_nothing_of_ours_outside_wire(module: str) -> None:
    loaded = _modules_after_import(module)
    assert not {"trio", "textual", "asyncio"} & loaded
    # (the speed-ups shim and the optional C module are byte loops that import nothing: allowed)
    ours = {m for m in loaded if m.startswith("wsinspect.")} - SPEEDUPS
    assert all(m.startswith("wsinspect.wire") for m in ours), sorted(ours)


SPEEDUPS = {"wsinspect.speedups", "wsinspect._speedups"}


def test_the_speedups_shim_imports_nothing_of_ours() -> None:
    loaded = _modules_after_import("wsinspect.speedups")
    assert {m for m in loaded if m.startswith("wsinspect.")} <= SPEEDUPS


RECORDING_MODULES = [
    "wsinspect.recording.format",
    "wsinspect.recording.encoder",
    "wsinspect.recording.writer",
    "wsinspect.recording.reader",
]


@pytest.mark.parametrize("module", RECORDING_MODULES)
def test_recording_depends_on_events_and_wire_only(module: str) -> None:
    loaded = _modules_after_import(module)
    assert "textual" not in loaded
    # (the writer raises ``config.ConfigError``, and ``config`` parses ``--fault`` specs)
    above = ("wsinspect.relay", "wsinspect.sinks", "wsinspect.tui", "wsinspect.commands")
    assert not {m for m in loaded if m.startswith(above)}, sorted(loaded)


@pytest.mark.parametrize("module", ["wsinspect.events", "wsinspect.render", "wsinspect.cli"])
def test_core_modules_do_not_pull_in_textual(module: str) -> None:
    assert "textual" not in _modules_after_import(module)


def test_only_the_shim_imports_the_c_module() -> None:
    import re
    from pathlib import Path

    package = Path(__file__).resolve().parent.parent / "wsinspect"
    direct = re.compile(r"^\s*(from wsinspect import .*\b_speedups|from wsinspect\._speedups |import wsinspect\._speedups)", re.M)
    offenders = [
        str(path.relative_to(package))
        for path in package.rglob("*.py")
        if path.name != "speedups.py" and direct.search(path.read_text("utf-8"))
    ]
    assert offenders == [], "import wsinspect.speedups instead"
