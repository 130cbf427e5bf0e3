"""The I/O boundary is a promise: ``wire`` is sans-IO and imports nothing of ours outside it;
only ``tui`` imports Textual. Checked in a fresh interpreter so other tests can't mask it."""

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
    "wsinspect.wire.handshake",
    "wsinspect.wire.refusal",
]


@pytest.mark.parametrize("module", WIRE_MODULES)
def test_wire_imports_no_io_and_nothing_of_ours_outside_wire(module: str) -> None:
    loaded = _modules_after_import(module)
    assert not {"trio", "textual", "asyncio"} & loaded
    # (the optional C speed-ups are byte loops that import nothing: allowed)
    ours = {m for m in loaded if m.startswith("wsinspect.")} - {"wsinspect._speedups"}
    assert all(m.startswith("wsinspect.wire") for m in ours), sorted(ours)


@pytest.mark.parametrize("module", ["wsinspect.events", "wsinspect.render", "wsinspect.cli"])
def test_core_modules_do_not_pull_in_textual(module: str) -> None:
    assert "textual" not in _modules_after_import(module)
