"""The shim ``wsinspect.speedups``: each C function of ``wsinspect._speedups`` gives exactly what
its pure-Python fallback gives, on random inputs (a bounded number of them), and the C module is
really there when ``WSINSPECT_REQUIRE_SPEEDUPS=1`` says it must be (``.ci/run`` sets it wherever
a C compiler is found): a broken build fails here instead of passing as "skipped"."""

from __future__ import annotations

import binascii
import os
import random
import subprocess
import sys

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from wsinspect import speedups
from wsinspect.wire import frames
from wsinspect.wire.frames import encode_frame

REQUIRED = bool(os.environ.get("WSINSPECT_REQUIRE_SPEEDUPS"))

needs_c = pytest.mark.skipif(
    not speedups.HAVE_C and not REQUIRED, reason="wsinspect._speedups is not built (no C compiler)"
)


def c_module():  # type: ignore[no-untyped-def]
    """The C functions (the shim's, when it has them); fails (not skips) when they are required
    and missing."""
    if not speedups.HAVE_C:
        pytest.fail("wsinspect._speedups was not built (WSINSPECT_REQUIRE_SPEEDUPS is set)")
    return speedups


def test_the_c_module_is_built_when_required() -> None:
    if not REQUIRED:
        pytest.skip("WSINSPECT_REQUIRE_SPEEDUPS is not set")
    assert speedups.HAVE_C, "wsinspect._speedups was not built (WSINSPECT_REQUIRE_SPEEDUPS is set)"


@needs_c
def test_the_shim_and_its_users_use_the_c_functions() -> None:
    import types

    c = c_module()
    for name in ("unmask", "b64encode", "scan_lines"):
        function = getattr(c, name)
        assert isinstance(function, types.BuiltinFunctionType), name
        assert function.__module__ == "wsinspect._speedups", name
        assert function is not getattr(speedups, name + "_py")
    assert frames.mask is c.unmask  # bound once, at import


@needs_c
def test_each_c_module_object_has_its_own_working_state() -> None:
    # Multi-phase initialisation (PEP 489): a second module object from the same spec gets its
    # own buffers and tables and gives the same results.
    import importlib.util

    c = c_module()
    spec = importlib.util.find_spec(c.unmask.__module__)
    assert spec is not None and spec.loader is not None
    other = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(other)
    assert other is not c
    data = encode_frame(2, bytes(range(256)) * 300) + encode_frame(1, "é".encode() * 5000)
    args = (0, False, 1 << 20, 1, "s2c", 1.5, 0, 0)
    assert other.scan_lines(data, *args) == c.scan_lines(data, *args)
    assert other.b64encode(data) == c.b64encode(data) == speedups.b64encode_py(data)
    del other


def test_without_the_c_module_the_shim_falls_back_to_python() -> None:
    code = (
        "import sys; sys.modules['wsinspect._speedups'] = None\n"
        "from wsinspect import speedups\n"
        "from wsinspect.relay import observers\n"
        "from wsinspect.wire import frames\n"
        "assert not speedups.HAVE_C and not observers.LINES_AVAILABLE\n"
        "assert speedups.unmask is speedups.unmask_py is frames.mask\n"
        "assert speedups.b64encode is speedups.b64encode_py\n"
        "assert speedups.scan_lines is speedups.scan_lines_py\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True)


@needs_c
@settings(max_examples=300, deadline=None)
@given(data=st.binary(max_size=300), key=st.binary(min_size=4, max_size=4), offset=st.integers(0, 7))
def test_c_unmask_equals_the_python_one(data: bytes, key: bytes, offset: int) -> None:
    assert c_module().unmask(data, key, offset) == speedups.unmask_py(data, key, offset)


@needs_c
def test_c_unmask_equals_the_python_one_on_big_payloads() -> None:
    rng = random.Random(5)
    unmask = c_module().unmask
    for n in (4095, 4096, 4097, 65_537, 1 << 20):
        data = rng.randbytes(n)
        key = rng.randbytes(4)
        for offset in (0, 1, 2, 3):
            assert unmask(data, key, offset) == speedups.unmask_py(data, key, offset)
        assert unmask(memoryview(data), key) == speedups.unmask_py(memoryview(data), key)


@needs_c
@settings(max_examples=300, deadline=None)
@given(data=st.binary(max_size=300))
def test_c_base64_equals_binascii(data: bytes) -> None:
    assert c_module().b64encode(data) == speedups.b64encode_py(data)
    assert speedups.b64encode_py(data) == binascii.b2a_base64(data, newline=False)


@needs_c
def test_c_base64_equals_the_python_one_on_big_payloads() -> None:
    rng = random.Random(6)
    for n in (1 << 14, (1 << 16) - 1, 1 << 16, (1 << 20) + 1, (1 << 20) + 2):
        data = rng.randbytes(n)
        assert c_module().b64encode(data) == speedups.b64encode_py(data)


@needs_c
def test_c_base64_of_big_payloads_is_the_same_from_several_threads() -> None:
    """From 64 KiB on the C encoder runs without the GIL (the recorder's writer thread):
    threads encoding at once each get their own payload's base64."""
    import threading

    rng = random.Random(7)
    payloads = [rng.randbytes((1 << 18) + i) for i in range(4)]
    results: dict[int, list[bytes]] = {}

    def encode(i: int) -> None:
        results[i] = [c_module().b64encode(payloads[i]) for _ in range(5)]

    threads = [threading.Thread(target=encode, args=(i,)) for i in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    for i, data in enumerate(payloads):
        assert results[i] == [speedups.b64encode_py(data)] * 5


def both_scans() -> list:  # type: ignore[type-arg]
    return [
        pytest.param(speedups.scan_lines_py, id="python"),
        pytest.param("c", id="c", marks=needs_c),
    ]


def scan_fn(which):  # type: ignore[no-untyped-def]
    return c_module().scan_lines if which == "c" else which


@pytest.mark.parametrize("which", both_scans())
def test_scan_refuses_bad_arguments_clearly(which) -> None:  # type: ignore[no-untyped-def]
    scan = scan_fn(which)
    with pytest.raises(TypeError):
        scan(b"", 0)
    with pytest.raises(TypeError):
        scan(bytearray(b""), 0, True, 10, 1, "c2s", 1.0, 0, 0)
    with pytest.raises(ValueError):
        scan(b"", -1, True, 10, 1, "c2s", 1.0, 0, 0)
    with pytest.raises(ValueError):
        scan(b"", 0, True, -1, 1, "c2s", 1.0, 0, 0)
    for unmask in (c_module().unmask if speedups.HAVE_C else None, speedups.unmask_py):
        if unmask is not None:
            with pytest.raises(ValueError):
                unmask(b"abc", b"123")


def random_frame(rng: random.Random, client: bool) -> bytes:
    """A frame the scan may or may not take: mostly common ones, sometimes anything."""
    opcode = rng.choice([1, 1, 2, 2, 0, 8, 9, 10, 3])
    size = rng.choice([0, 1, 5, 125, 126, 200, 65_535, 65_536, 70_000]) if rng.random() < 0.3 else rng.randrange(60)
    if opcode == 1:
        alphabet = "aé\"\\\n\t\x00\x1f\x7f\u2028😀"
        payload = "".join(rng.choice(alphabet) for _ in range(size)).encode()[:size]
        if rng.random() < 0.1:
            payload += b"\xff"
    else:
        payload = rng.randbytes(size)
    key = rng.randbytes(4) if (client if rng.random() < 0.95 else not client) else None
    frame = encode_frame(opcode, payload, fin=rng.random() < 0.9, mask_key=key,
                         rsv1=rng.random() < 0.05)
    if rng.random() < 0.03 and len(payload) < 126:  # a non-minimal length
        b1 = frame[1] & 0x80 | 126
        frame = bytes([frame[0], b1]) + len(payload).to_bytes(2, "big") + frame[2:]
    return frame


@pytest.mark.parametrize("seed", range(40))
@needs_c
def test_c_scan_equals_the_python_one_on_random_streams(seed: int) -> None:
    rng = random.Random(seed)
    client = seed % 2 == 0
    direction = "c2s" if client else "s2c"
    data = b"".join(random_frame(rng, client) for _ in range(rng.randrange(1, 30)))
    if rng.random() < 0.3:
        data = data[: rng.randrange(len(data) + 1)]  # a frame cut short
    args = (client, rng.choice([0, 10, 1000, 1 << 20]), rng.randrange(1 << 40), direction,
            rng.choice([0.0, 1.5, 1795298313.2083018, 1e22, 123456789.0]),
            rng.randrange(1 << 32), rng.randrange(1 << 32))
    pos = rng.randrange(3) if data else 0
    c = c_module().scan_lines(data, pos, *args)
    py = speedups.scan_lines_py(data, pos, *args)
    assert c == py
