"""The close code registry (RFC 6455 §7.4)."""

from __future__ import annotations

import subprocess
import sys

import pytest

from wsinspect.wire.closecodes import close_code_meaning, is_valid_close_code


@pytest.mark.parametrize(
    ("code", "meaning"),
    [(1000, "normal closure"), (1001, "going away"), (1009, "message too big"),
     (3001, "registered (library/framework)"), (4000, "application-defined"), (999, "invalid"),
     (None, "no status code")],
)
def test_close_codes_have_a_meaning(code: int | None, meaning: str) -> None:
    assert close_code_meaning(code) == meaning


def test_codes_reserved_for_apis_may_not_be_sent() -> None:
    assert [c for c in range(1000, 1016) if not is_valid_close_code(c)] == [1004, 1005, 1006, 1015]
    assert not is_valid_close_code(2999)
    assert is_valid_close_code(3000) and is_valid_close_code(4999)
    assert not is_valid_close_code(5000)


def test_wire_package_does_no_io() -> None:
    """``wire`` is sans-IO: importing all of it pulls in neither trio nor textual."""
    code = (
        "import sys, pkgutil, importlib, wsinspect.wire as w\n"
        "for m in pkgutil.iter_modules(w.__path__): importlib.import_module('wsinspect.wire.' + m.name)\n"
        "print(sorted(n for n in sys.modules if n.split('.')[0] in ('trio', 'textual', 'socket', 'asyncio')))\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=True
    )
    assert out.stdout.strip() == "[]"
