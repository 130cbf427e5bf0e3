"""The one way in to the optional C module ``wsinspect._speedups`` (built from ``_speedups.c``
where a C compiler was found at install).

Each function here is the C version when it was built and the pure-Python version otherwise:
the same results, byte for byte, slower (``tests/test_speedups.py`` holds them equal). Bind
them at import time (``mask = speedups.unmask``), never look them up per frame. ``HAVE_C``
says which is in use; the pure-Python versions stay reachable as ``*_py`` for the tests.

Nothing else imports ``wsinspect._speedups``. Like ``wire``, this module imports nothing of
ours but the C module, so ``wire`` may use it.
"""

from __future__ import annotations

from binascii import b2a_base64
from json.encoder import encode_basestring as _json_str

__all__ = [
    "HAVE_C",
    "b64encode",
    "b64encode_py",
    "scan_lines",
    "scan_lines_py",
    "unmask",
    "unmask_py",
]


# ---- the pure-Python versions --------------------------------------------------------------

# XOR tables for ``bytes.translate``: _XOR[k] maps every byte b to b ^ k.
_XOR = [bytes(b ^ k for b in range(256)) for k in range(256)]
_MASK_BY_TABLE = 4096  # from this size on, four table lookups beat the big-integer XOR


def unmask_py(data: bytes | bytearray | memoryview, key: bytes, offset: int = 0, /) -> bytes:
    """XOR ``data`` with the 4-byte masking ``key`` (RFC 6455 §5.3); masking and unmasking are
    the same.

    ``offset`` is the position of ``data[0]`` within the payload, so a payload can be unmasked in
    pieces. Runs at C speed: one big-integer XOR for small payloads; for big ones, each of the
    four byte lanes (every fourth byte) goes through ``bytes.translate`` with its key byte's XOR
    table, 2-3x faster than the integer conversions (1 MiB: ~1 ms instead of ~3 ms). A key that
    is not 4 bytes raises ``ValueError``, as the C version does.
    """
    if len(key) != 4:
        raise ValueError("a masking key is 4 bytes")
    n = len(data)
    if not n:
        return b""
    if offset & 3:
        key = key[offset & 3 :] + key[: offset & 3]
    if n >= _MASK_BY_TABLE:
        if isinstance(data, memoryview):
            data = data.tobytes()
        out = bytearray(n)
        for lane in range(4):
            out[lane::4] = data[lane::4].translate(_XOR[key[lane]])
        return bytes(out)
    keystream = (key * ((n >> 2) + 1))[:n]
    return (int.from_bytes(data, "big") ^ int.from_bytes(keystream, "big")).to_bytes(n, "big")


def b64encode_py(data: bytes | bytearray | memoryview, /) -> bytes:
    """Standard padded base64 (RFC 4648 §4) without the newline: ``b2a_base64``'s."""
    return b2a_base64(data, newline=False)


def scan_lines_py(data: bytes, pos: int, client: bool, limit: int, conn: int, direction: str,
                  ts: float, seq: int, message_no: int, /
                  ) -> tuple[int, int, int, bytes | None]:
    """The recording lines of the common frames of ``data`` from ``pos`` on (see the header of
    ``_speedups.c``): each complete, unfragmented text or binary frame with no RSV bits, the
    mask bit of its direction (§5.1), a minimal length (§5.2), at most ``limit`` bytes of
    payload and, for text, valid UTF-8 (§8.1) becomes its frame line, its one-frame message
    on it (format v2, ``recording.format_v2``). The scan stops at the first frame that is anything else or not complete; returns where
    it stopped, the last sequence and message numbers used and the lines (``None``: none).

    The reference for the C version (``tests/test_speedups.py``); the relay uses the C one
    only: in Python the inspector is as fast.
    """
    if data.__class__ is not bytes or direction.__class__ is not str:
        raise TypeError("scan_lines: data must be bytes, direction str")
    if pos < 0 or limit < 0:
        raise ValueError("scan_lines: pos and limit must not be negative")
    ts_text = repr(float(ts))
    head_open = f'{{"type":"frame","conn":{conn:d},"seq":'
    dir_ts = f',"dir":"{direction}","ts":{ts_text}'
    out: list[str] = []
    end = len(data)
    while end - pos >= 2:
        b0, b1 = data[pos], data[pos + 1]
        avail = end - pos
        if b0 != 0x81 and b0 != 0x82:  # FIN, no RSV, text or binary
            break
        if bool(b1 & 0x80) != bool(client):
            break
        length = b1 & 0x7F
        hlen = 2
        if length == 126:
            hlen = 4
            if avail < hlen:
                break
            length = int.from_bytes(data[pos + 2 : pos + 4], "big")
            if length < 126:  # not minimal
                break
        elif length == 127:
            hlen = 10
            if avail < hlen:
                break
            length = int.from_bytes(data[pos + 2 : pos + 10], "big")
            if length < 65536 or length >> 63:  # not minimal, or the top bit set
                break
        if client:
            hlen += 4
        if avail < hlen or length > limit or length > avail - hlen:
            break
        header = data[pos : pos + hlen]
        payload = data[pos + hlen : pos + hlen + length]
        if client:
            payload = unmask_py(payload, header[-4:])
        if b0 == 0x81:
            try:
                value = '"text":' + _json_str(payload.decode("utf-8"))
            except UnicodeDecodeError:
                break
        else:
            value = '"b64":"' + b2a_base64(payload, newline=False).decode("ascii") + '"'
        seq += 1
        message_no += 1
        out.append(
            f'{head_open}{seq}{dir_ts},"hdr":"{header.hex()}",{value},"msg":{message_no},'
            '"end":{}}\n'
        )
        pos += hlen + length
    lines = "".join(out).encode("utf-8") if out else None
    return pos, seq, message_no, lines


# ---- the C versions, where built -----------------------------------------------------------

try:
    from wsinspect import _speedups as _c
except ImportError:  # pragma: no cover - built wherever a C compiler was found
    _c = None  # type: ignore[assignment]

#: Whether the C module was built (and is in use).
HAVE_C: bool = _c is not None

if _c is not None:
    unmask = _c.unmask
    b64encode = _c.b64encode
    scan_lines = _c.scan_lines
else:  # pragma: no cover - the pure-Python versions
    unmask = unmask_py
    b64encode = b64encode_py
    scan_lines = scan_lines_py
