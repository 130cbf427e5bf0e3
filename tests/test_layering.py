"""Dependencies point one way, and the I/O boundary is a promise: ``wire`` is sans-IO and
imports nothing of ours (but the speed-ups shim); ``recording`` stands below the relay and the
outputs; ``relay`` never imports ``faults`` (faults attach to a relay from
``wsinspect.compose``); no two packages import each other; only ``tui`` imports Textual; only
``wsinspect.speedups`` imports the C module.

Two kinds of check: a static scan of every ``import`` in the source (function-level ones
included), and fresh interpreters that import a module and list what got loaded, so other
tests cannot mask a stray import."""

from __future__ import annotations

import ast
import itertools
import json
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

import wsinspect

PACKAGE = Path(wsinspect.__file__).parent
# The optional C speed-ups are byte loops that import nothing: any layer may use them.
SPEEDUPS = {"wsinspect._speedups", "wsinspect.speedups"}


@dataclass(frozen=True)
class Import:
    source: str  # the importing module, "wsinspect.relay.server"
    target: str  # the imported module, "wsinspect.faults.runtime" or "textual.app"
    where: str  # "wsinspect/relay/server.py:23"
    type_only: bool  # under ``if TYPE_CHECKING:``


def _module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _is_type_checking(test: ast.expr) -> bool:
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING"
    )


def _imports() -> Iterator[Import]:
    for path in sorted(PACKAGE.rglob("*.py")):
        source = _module_name(path)
        package = source if path.name == "__init__.py" else source.rpartition(".")[0]
        tree = ast.parse(path.read_text(encoding="utf-8"))
        type_only_lines = {
            n.lineno
            for block in ast.walk(tree)
            if isinstance(block, ast.If) and _is_type_checking(block.test)
            for stmt in block.body
            for n in ast.walk(stmt)
            if hasattr(n, "lineno")
        }
        for node in ast.walk(tree):
            if isinstance(node, ast.Import):
                targets = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom):
                base = node.module or ""
                if node.level:
                    up = package.split(".")[: len(package.split(".")) - node.level + 1]
                    base = ".".join([*up, base] if base else up)
                # ``from wsinspect import speedups`` imports the module wsinspect.speedups
                targets = [f"{base}.{a.name}" for a in node.names] if base == "wsinspect" else [base]
            else:
                continue
            where = f"{path.relative_to(PACKAGE.parent)}:{node.lineno}"
            for target in targets:
                yield Import(source, target, where, node.lineno in type_only_lines)


IMPORTS = list(_imports())


def _unit(module: str) -> str:
    """The package (or top-level module) a module belongs to: ``wsinspect.relay.server`` →
    ``relay``, ``wsinspect.config`` → ``config``."""
    return module.split(".")[1] if module.count(".") else module


def test_the_scan_sees_the_imports_it_checks() -> None:
    """Guards the checks below against a scan that finds nothing."""
    assert any(i.source == "wsinspect.relay.server" and i.target == "wsinspect.relay.session"
               for i in IMPORTS)
    assert any(i.source == "wsinspect.compose" and i.target.startswith("wsinspect.faults")
               for i in IMPORTS)
    assert any(i.source == "wsinspect.speedups" and i.target == "wsinspect._speedups"
               for i in IMPORTS)
    assert any(i.type_only for i in IMPORTS)


def test_relay_never_imports_faults() -> None:
    stray = [i.where for i in IMPORTS
             if i.source.startswith("wsinspect.relay") and i.target.startswith("wsinspect.faults")]
    assert not stray, f"relay imports faults at {stray}: attach through relay.hooks instead"


def test_no_import_cycle_between_packages() -> None:
    """Run-time imports only (type-only ones never execute); a cycle is reported with the
    import lines that make it."""
    edges: dict[str, dict[str, str]] = {}
    for i in IMPORTS:
        if i.type_only or not i.target.startswith("wsinspect.") or i.target in SPEEDUPS:
            continue
        a, b = _unit(i.source), _unit(i.target)
        if a != b:
            edges.setdefault(a, {}).setdefault(b, i.where)

    def cycle_from(start: str) -> list[str] | None:
        stack = [(start, [start])]
        while stack:
            node, path = stack.pop()
            for nxt in edges.get(node, {}):
                if nxt == start:
                    return [*path, start]
                if nxt not in path:
                    stack.append((nxt, [*path, nxt]))
        return None

    for unit in sorted(edges):
        cycle = cycle_from(unit)
        assert cycle is None, " → ".join(cycle) + ": " + ", ".join(
            edges[a][b] for a, b in itertools.pairwise(cycle)
        )


def test_wire_imports_nothing_of_ours_outside_wire() -> None:
    stray = [f"{i.where} imports {i.target}" for i in IMPORTS
             if i.source.startswith("wsinspect.wire") and i.target.startswith("wsinspect")
             and not i.target.startswith("wsinspect.wire") and i.target not in SPEEDUPS]
    assert not stray


def test_only_tui_imports_textual() -> None:
    stray = [i.where for i in IMPORTS
             if i.target.split(".")[0] in {"textual", "rich"}
             and not i.source.startswith("wsinspect.tui")]
    assert not stray


# ---- what actually gets loaded, in a fresh interpreter -----------------------------------------


def _modules_after_import(*modules: str) -> set[str]:
    code = f"import json, sys, {', '.join(modules)}; print(json.dumps(sorted(sys.modules)))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    return set(json.loads(out.stdout))


WIRE_MODULES = sorted(_module_name(p) for p in (PACKAGE / "wire").glob("*.py"))


@pytest.mark.parametrize("module", WIRE_MODULES)
def test_wire_loads_no_io_and_nothing_of_ours_outside_wire(module: str) -> None:
    loaded = _modules_after_import(module)
    assert not {"trio", "textual", "asyncio"} & loaded
    ours = {m for m in loaded if m.startswith("wsinspect.")} - SPEEDUPS
    assert all(m.startswith("wsinspect.wire") for m in ours), sorted(ours)


def test_a_running_relay_does_not_load_faults() -> None:
    relay = sorted(_module_name(p) for p in (PACKAGE / "relay").glob("*.py"))
    loaded = _modules_after_import(*relay)
    assert "wsinspect.relay.session" in loaded
    assert not {m for m in loaded if m.startswith("wsinspect.faults")}


def test_the_speedups_shim_imports_nothing_of_ours() -> None:
    loaded = _modules_after_import("wsinspect.speedups")
    assert {m for m in loaded if m.startswith("wsinspect.")} <= SPEEDUPS


RECORDING_MODULES = sorted(_module_name(p) for p in (PACKAGE / "recording").glob("*.py"))


@pytest.mark.parametrize("module", RECORDING_MODULES)
def test_recording_loads_nothing_above_it(module: str) -> None:
    loaded = _modules_after_import(module)
    above = ("wsinspect.relay", "wsinspect.sinks", "wsinspect.tui", "wsinspect.commands",
             "wsinspect.faults", "textual")
    assert not {m for m in loaded if m.startswith(above)}, sorted(loaded)


@pytest.mark.parametrize("module", ["wsinspect.events", "wsinspect.render", "wsinspect.cli",
                                    "wsinspect.compose"])
def test_core_modules_do_not_pull_in_textual(module: str) -> None:
    assert "textual" not in _modules_after_import(module)


def test_only_the_shim_imports_the_c_module() -> None:
    stray = [i.where for i in IMPORTS
             if i.target == "wsinspect._speedups" and i.source != "wsinspect.speedups"]
    assert not stray, f"import wsinspect.speedups instead: {stray}"
