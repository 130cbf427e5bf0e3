"""permessage-deflate (RFC 7692): negotiation parsing and a display-only inflater.

The relay never re-compresses anything: both peers negotiated the extension through it and the
compressed frames forward byte for byte. This module only lets the inspector *show* what was
compressed: ``negotiated_deflate`` reads the upstream's ``Sec-WebSocket-Extensions`` answer,
``DeflateParams.for_direction`` picks the window bits and context-takeover rule of one direction,
and ``Inflater`` inflates that direction's messages, one after the other.

Every message is inflated to its end, however long; memory stays bounded (RFC 7692 §10: a
small message may inflate to gigabytes). Output is kept up to the capture limit; past it,
inflating goes on (to keep the LZ77 context in step, learn the size and hash the whole message)
but the output is dropped: zlib is handed at most ``_IN_STEP`` input bytes and asked for at most
``_OUT_STEP`` output bytes per call, so a decompression bomb costs CPU time in proportion to its
inflated size (about a second per GiB) and no memory. The inspector hands the inflater the
whole compressed payload of long frames as it streams through (``FrameParser.streaming``), never
only their captured part, so the capture limit never stops inflating.
"""

from __future__ import annotations

import hashlib
import zlib
from collections.abc import Iterable
from dataclasses import dataclass

from wsinspect.wire.sides import Direction

__all__ = [
    "DeflateParams",
    "ExtensionError",
    "Inflater",
    "negotiated_deflate",
    "parse_extensions",
    "strip_permessage_deflate",
]

EXTENSION_NAME = "permessage-deflate"
_TRAILER = b"\x00\x00\xff\xff"  # removed by the sender, put back before inflating (§7.2.2)
_IN_STEP = 16 << 10
_OUT_STEP = 256 << 10

ExtensionParam = tuple[str, str | None]


class ExtensionError(ValueError):
    """A malformed or invalid ``Sec-WebSocket-Extensions`` value (RFC 6455 §9.1, RFC 7692 §7)."""


def _split(value: str, sep: str) -> list[str]:
    """Split on ``sep`` outside quoted strings (RFC 7230 §3.2.6)."""
    parts: list[str] = []
    cur: list[str] = []
    quoted = escaped = False
    for ch in value:
        if escaped:
            escaped = False
        elif quoted and ch == "\\":
            escaped = True
        elif ch == '"':
            quoted = not quoted
        elif ch == sep and not quoted:
            parts.append("".join(cur))
            cur = []
            continue
        cur.append(ch)
    if quoted:
        raise ExtensionError(f"unterminated quoted string in {value!r}")
    parts.append("".join(cur))
    return parts


def _unquote(value: str) -> str:
    if len(value) >= 2 and value[0] == value[-1] == '"':
        out: list[str] = []
        escaped = False
        for ch in value[1:-1]:
            if ch == "\\" and not escaped:
                escaped = True
                continue
            escaped = False
            out.append(ch)
        return "".join(out)
    return value


def _parse_one(element: str) -> tuple[str, list[ExtensionParam]]:
    items = [item.strip() for item in _split(element, ";")]
    name = items[0]
    if not name or any(c in name for c in ' \t="'):
        raise ExtensionError(f"bad extension name {name!r}")
    params: list[ExtensionParam] = []
    for item in items[1:]:
        if not item:
            raise ExtensionError(f"empty parameter in {element.strip()!r}")
        key, eq, raw = item.partition("=")
        key = key.strip()
        params.append((key.lower(), _unquote(raw.strip()) if eq else None))
    return name.lower(), params


def parse_extensions(value: str) -> list[tuple[str, list[ExtensionParam]]]:
    """Parse a ``Sec-WebSocket-Extensions`` value (RFC 6455 §9.1) into ``(name, params)``.

    >>> parse_extensions('permessage-deflate; client_max_window_bits="10", x-foo')
    [('permessage-deflate', [('client_max_window_bits', '10')]), ('x-foo', [])]
    """
    return [_parse_one(e) for e in _split(value, ",") if e.strip()]


@dataclass(frozen=True, slots=True)
class DeflateParams:
    """The permessage-deflate parameters a server accepted (RFC 7692 §7.1).

    ``*_max_window_bits`` is ``None`` when absent (the sender may use up to 15).
    """

    server_no_context_takeover: bool = False
    client_no_context_takeover: bool = False
    server_max_window_bits: int | None = None
    client_max_window_bits: int | None = None

    def for_direction(self, direction: Direction) -> tuple[int, bool]:
        """``(window_bits, no_context_takeover)`` of the sender of ``direction``.

        The client compresses ``c2s`` with the ``client_*`` parameters, the server ``s2c`` with
        the ``server_*`` ones (RFC 7692 §7.1.1, §7.1.2).
        """
        if direction == "c2s":
            return self.client_max_window_bits or 15, self.client_no_context_takeover
        return self.server_max_window_bits or 15, self.server_no_context_takeover


def _window_bits(name: str, value: str | None) -> int:
    if value is None or not value.isdigit() or len(value) > 2 or not 8 <= int(value) <= 15:
        raise ExtensionError(f"{name} must be an integer from 8 to 15, got {value!r}")
    return int(value)


def negotiated_deflate(value: str | None) -> DeflateParams | None:
    """The permessage-deflate parameters in a server's extensions answer, ``None`` without.

    Raises ``ExtensionError`` for an answer a client must reject (RFC 7692 §7.1): an unknown or
    repeated parameter, a value on a ``*_no_context_takeover``, window bits outside 8-15 or
    missing, or permessage-deflate accepted twice.
    """
    if not value:
        return None
    found: DeflateParams | None = None
    for name, params in parse_extensions(value):
        if name != EXTENSION_NAME:
            continue
        if found is not None:
            raise ExtensionError("permessage-deflate accepted more than once")
        seen: set[str] = set()
        flags = {"server_no_context_takeover": False, "client_no_context_takeover": False}
        bits: dict[str, int | None] = {
            "server_max_window_bits": None,
            "client_max_window_bits": None,
        }
        for key, raw in params:
            if key in seen:
                raise ExtensionError(f"parameter {key} repeated")
            seen.add(key)
            if key in flags:
                if raw is not None:
                    raise ExtensionError(f"{key} takes no value")
                flags[key] = True
            elif key in bits:
                bits[key] = _window_bits(key, raw)
            else:
                raise ExtensionError(f"unknown permessage-deflate parameter {key}")
        found = DeflateParams(
            flags["server_no_context_takeover"],
            flags["client_no_context_takeover"],
            bits["server_max_window_bits"],
            bits["client_max_window_bits"],
        )
    return found


def strip_permessage_deflate(header_value: str | None) -> str | None:
    """A client's ``Sec-WebSocket-Extensions`` offer without its permessage-deflate offers.

    Used by ``--no-compression``: the other offers are kept as written, in order; ``None`` when
    nothing is left (drop the header then). A value that does not parse is returned unchanged
    unless it plainly starts with permessage-deflate.

    >>> strip_permessage_deflate("permessage-deflate; client_max_window_bits, x-foo; a=1")
    'x-foo; a=1'
    >>> strip_permessage_deflate("permessage-deflate") is None
    True
    """
    if header_value is None:
        return None
    try:
        elements = _split(header_value, ",")
    except ExtensionError:
        elements = header_value.split(",")
    kept = []
    for element in elements:
        text = element.strip()
        if not text:
            continue
        name = _split_name(text)
        if name.lower() != EXTENSION_NAME:
            kept.append(text)
    return ", ".join(kept) or None


def _split_name(element: str) -> str:
    return element.split(";", 1)[0].strip()


class Inflater:
    """Inflates the compressed messages of one direction, in order, for display only.

    Per message: ``begin()``, then ``feed(data, final=...)`` with the whole compressed payload,
    in pieces of any size (a frame's payload, or the pieces of a long one as they arrive), with
    ``final`` on the last piece of the message's last frame (``feed(b"", final=True)`` will do).
    ``feed`` returns the newly kept output (for the UTF-8 check). Then read ``payload()``,
    ``length``, ``sha256``, ``truncated``, ``status``.

    Every message is inflated to its end, however long: the output is kept up to
    ``capture_limit`` and the rest is counted (``length``) and hashed (``sha256``, the SHA-256
    of the whole inflated message, set when the output outgrew the capture limit), then dropped.

    ``status`` is ``ok``; ``error`` (the data does not inflate: a violation, RFC 7692 §7.2.2);
    or ``lost``: under context takeover the compression context is missing (an earlier message
    did not inflate, or the sender ended its DEFLATE stream with BFINAL) and this message refers
    to it. After such a message the next one is inflated with an empty window: every message
    starts on a byte-aligned block (§7.2.1), and zlib refuses a distance that reaches before
    the output it has (``invalid distance too far back``) rather than guess, so what inflates
    then is right, and a message that needs the lost history stops, ``lost``, with what came
    before that point. Once a whole window of output has inflated since, the context is whole
    again. ``window_bits`` below 9 inflates with 9: zlib compresses with a 512-byte window when
    asked for 8, and so do the peers that negotiate 8.
    """

    __slots__ = (
        "_d",
        "_fresh",
        "_hasher",
        "_kept",
        "_lost",
        "_parts",
        "capture_limit",
        "detail",
        "length",
        "no_context_takeover",
        "sha256",
        "status",
        "window_bits",
    )

    def __init__(
        self,
        window_bits: int = 15,
        *,
        no_context_takeover: bool = False,
        capture_limit: int = 1 << 20,
    ) -> None:
        self.window_bits = min(15, max(9, window_bits))
        self.no_context_takeover = no_context_takeover
        self.capture_limit = capture_limit
        self._d = zlib.decompressobj(-self.window_bits)
        # Why the shared context is incomplete (takeover only), and how much output has
        # inflated since the decompressor restarted without it.
        self._lost: str | None = None
        self._fresh = 0
        self._parts: list[bytes] = []
        self._kept = 0
        self._hasher: hashlib._Hash | None = None
        self.length = 0
        self.sha256: str | None = None
        self.status = "ok"
        self.detail = ""

    @property
    def truncated(self) -> bool:
        """Whether ``payload()`` holds less than the whole inflated message."""
        return self.status != "ok" or self._kept < self.length

    @property
    def context_lost(self) -> str | None:
        """Why the compression context is incomplete (context takeover only), ``None`` if whole."""
        return self._lost

    def begin(self) -> None:
        """Start the next compressed message."""
        if self.no_context_takeover:
            # Each message is a fresh stream (RFC 7692 §7.1.1): nothing carries over.
            self._d = zlib.decompressobj(-self.window_bits)
        elif self.status != "ok" or self._d.eof:
            # The context is lost (see the class): go on with an empty window.
            self._d = zlib.decompressobj(-self.window_bits)
            self._fresh = 0
        self._parts = []
        self._kept = 0
        self._hasher = None
        self.length = 0
        self.sha256 = None
        self.status = "ok"
        self.detail = ""

    def feed(self, data: bytes, *, final: bool) -> bytes:
        """Inflate the next piece of the message's compressed data; ``final`` on its last piece.

        Returns the output kept from this piece (empty once the capture limit is reached).
        Once the message failed (``status`` not ``ok``), the rest of it is ignored.
        """
        if self.status != "ok":
            return b""
        start = len(self._parts)
        try:
            if final and len(data) < _IN_STEP:
                # The common small message: one zlib call, trailer included.
                self._inflate(data + _TRAILER)
            else:
                self._inflate(data)
                if final:
                    self._inflate(_TRAILER)
        except zlib.error as exc:
            self._fail(exc)
        if final:
            self._end()
        if len(self._parts) == start:
            return b""
        new = self._parts[start:]
        return new[0] if len(new) == 1 else b"".join(new)

    def payload(self) -> bytes:
        """The kept inflated output of the current message (at most the capture limit)."""
        if len(self._parts) > 1:
            self._parts = [b"".join(self._parts)]
        return self._parts[0] if self._parts else b""

    def _fail(self, exc: zlib.error) -> None:
        if self._lost is not None and "too far back" in str(exc):
            self.status = "lost"
            self.detail = (
                f"this message refers to compressed data that is missing: {self._lost} "
                "(context takeover); shown up to that point"
            )
        else:
            self.status = "error"
            self.detail = f"inflate failed: {exc}"
        self._hasher = None
        if not self.no_context_takeover:
            self._lost = (
                "an earlier compressed message did not inflate" if self.status == "error" else
                "an earlier compressed message referred to missing data"
            )

    def _end(self) -> None:
        if self.status != "ok":
            return
        if self._hasher is not None:
            self.sha256 = self._hasher.hexdigest()
            self._hasher = None
        if self.no_context_takeover:
            return
        if self._d.eof:
            # The sender ended its DEFLATE stream (BFINAL); the next message may use the old
            # window as a dictionary, which is not kept (see the class).
            self._lost = "the sender ended its DEFLATE stream (BFINAL) under context takeover"
            self._fresh = 0
        elif self._lost is not None and self._fresh >= 1 << self.window_bits:
            self._lost = None  # a whole window inflated since: the context is complete again

    def _inflate(self, data: bytes) -> None:
        d = self._d
        steps: Iterable[bytes | memoryview]
        if len(data) <= _IN_STEP:
            steps = (data,)
        else:
            view = memoryview(data)
            steps = (view[i : i + _IN_STEP] for i in range(0, len(data), _IN_STEP))
        for buf in steps:
            while True:
                if d.eof:
                    return
                out = d.decompress(buf, _OUT_STEP)
                if out:
                    self._take(out)
                buf = d.unconsumed_tail
                if not buf and len(out) < _OUT_STEP:
                    break

    def _take(self, out: bytes) -> None:
        n = len(out)
        self.length += n
        if self._lost is not None:
            self._fresh += n
        hasher = self._hasher
        if hasher is not None:
            hasher.update(out)
            return
        room = self.capture_limit - self._kept
        if n <= room:
            self._parts.append(out)
            self._kept += n
            return
        # The message outgrows the capture limit: from here on it is hashed whole, and only
        # counted past the limit (memory stays flat whatever the size or ratio, RFC 7692 §10).
        hasher = self._hasher = hashlib.sha256()
        for part in self._parts:
            hasher.update(part)
        hasher.update(out)
        if room > 0:
            self._parts.append(out[:room])
            self._kept += room
