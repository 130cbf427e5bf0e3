"""What a forward proxy reads of a tunnel before it decides: TLS or plain HTTP, and the server
name a TLS client asks for, sans-IO (RFC 8446 §4.1.2, RFC 5246 §7.4.1.2, RFC 6066 §3).

A ``CONNECT`` tunnel carries either a TLS ClientHello (the client wants ``https``/``wss``) or a
plain HTTP request. ``looks_like_tls`` tells them apart from the first bytes; ``read_client_hello``
parses the ClientHello (it may span several TLS records) once enough bytes are there and returns
its SNI host name and ALPN offer, so the proxy can choose the leaf certificate, or decide to
tunnel the host blindly, before it answers a single byte of TLS.
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["MAX_HELLO", "ClientHello", "HelloError", "looks_like_tls", "read_client_hello"]

_HANDSHAKE = 0x16  # TLS record content type (RFC 8446 §5.1)
_CLIENT_HELLO = 1  # handshake message type
_SERVER_NAME = 0  # extension types (RFC 6066 §3, RFC 7301 §3.1)
_ALPN = 16
#: The longest ClientHello read (a post-quantum key share makes Chromium's about 1.8 KB).
MAX_HELLO = 64 * 1024


class HelloError(ValueError):
    """The bytes start like TLS but are not a ClientHello this proxy can read."""


@dataclass(frozen=True, slots=True)
class ClientHello:
    """The parts of a ClientHello the proxy acts on: the SNI ``server_name`` (``None`` when the
    client sent none, as it does for an IP address) and the ``alpn`` protocols offered."""

    server_name: str | None
    alpn: tuple[str, ...]


def looks_like_tls(data: bytes) -> bool:
    """Whether a tunnel's first bytes are a TLS handshake record (type 22, version 3.x).
    An HTTP request starts with a method's letters, never with byte 22."""
    return len(data) >= 2 and data[0] == _HANDSHAKE and data[1] == 3


def read_client_hello(data: bytes) -> ClientHello | None:
    """Parse the ClientHello at the start of ``data`` (TLS records as they came); ``None``
    while it is incomplete. Raises ``HelloError`` when the records are not a ClientHello or
    it is over ``MAX_HELLO`` bytes."""
    message = bytearray()
    pos = 0
    needed: int | None = None
    while needed is None or len(message) < needed:
        if len(data) < pos + 5:
            return None
        if data[pos] != _HANDSHAKE:
            raise HelloError(f"TLS record type {data[pos]} where a handshake record was expected")
        length = int.from_bytes(data[pos + 3 : pos + 5], "big")
        if length == 0:
            raise HelloError("an empty TLS handshake record")
        if len(data) < pos + 5 + length:
            return None
        message += data[pos + 5 : pos + 5 + length]
        pos += 5 + length
        if needed is None and len(message) >= 4:
            if message[0] != _CLIENT_HELLO:
                raise HelloError(f"TLS handshake message type {message[0]}, not a ClientHello")
            needed = 4 + int.from_bytes(message[1:4], "big")
            if needed > MAX_HELLO:
                raise HelloError(f"a ClientHello of {needed} bytes (over {MAX_HELLO})")
    return _parse_body(bytes(message[4:needed]))


class _Reader:
    """Length-prefixed fields of a TLS structure; any overrun is a ``HelloError``."""

    __slots__ = ("data", "pos")

    def __init__(self, data: bytes) -> None:
        self.data = data
        self.pos = 0

    def take(self, n: int) -> bytes:
        if self.pos + n > len(self.data):
            raise HelloError("a truncated ClientHello")
        chunk = self.data[self.pos : self.pos + n]
        self.pos += n
        return chunk

    def number(self, size: int) -> int:
        return int.from_bytes(self.take(size), "big")

    def vector(self, length_size: int) -> _Reader:
        return _Reader(self.take(self.number(length_size)))

    @property
    def left(self) -> int:
        return len(self.data) - self.pos


def _parse_body(body: bytes) -> ClientHello:
    r = _Reader(body)
    r.take(2 + 32)  # legacy_version, random
    r.vector(1)  # legacy_session_id
    r.vector(2)  # cipher_suites
    r.vector(1)  # legacy_compression_methods
    server_name: str | None = None
    alpn: tuple[str, ...] = ()
    if r.left == 0:  # no extensions at all (TLS 1.0-style hello)
        return ClientHello(None, ())
    extensions = r.vector(2)
    while extensions.left:
        kind = extensions.number(2)
        data = extensions.vector(2)
        if kind == _SERVER_NAME:
            names = data.vector(2)
            while names.left:
                name_type = names.number(1)
                name = names.vector(2).data
                if name_type == 0:  # host_name
                    try:
                        server_name = name.decode("ascii").rstrip(".").lower() or None
                    except UnicodeDecodeError:
                        raise HelloError("an SNI host name that is not ASCII") from None
        elif kind == _ALPN:
            protocols = data.vector(2)
            offered = []
            while protocols.left:
                offered.append(protocols.vector(1).data.decode("latin-1"))
            alpn = tuple(offered)
    return ClientHello(server_name, alpn)
