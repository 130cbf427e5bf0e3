"""The opening handshake on both sides of the proxy, sans-IO (RFC 6455 §4).

wsinspect is a server to the client and a client to the upstream. ``ClientHandshake`` reads the
client's upgrade request and answers it; ``UpstreamHandshake`` writes the proxy's own request and
reads the upstream's answer. Both are fed bytes and return bytes or values; HTTP/1.1 parsing and
serialisation come from h11, so no header is parsed by hand here.

Errors are ``HandshakeError``s that carry the ``Refusal`` to answer the client with (400, 426,
431, 502 and a one-line reason), the way h11's errors carry ``error_status_hint``; an upstream
that answers anything but 101 is a ``Refusal`` too, ``by="upstream"``.
"""

from __future__ import annotations

import base64
import hashlib
import os
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from urllib.parse import urlsplit

import h11

from wsinspect.wire.deflate import strip_permessage_deflate
from wsinspect.wire.refusal import HOP_BY_HOP, Headers, Refusal

__all__ = [
    "GUID",
    "ClientHandshake",
    "HandshakeError",
    "Headers",
    "UpgradeRequest",
    "UpstreamAccepted",
    "UpstreamHandshake",
    "accept_key",
    "fresh_key",
    "header_value",
    "offers_deflate",
]

GUID = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11"  # RFC 6455 §1.3

DEFAULT_BODY_LIMIT = 64 * 1024
# The longest upstream response head read (h11's default is 16 KiB; a 101 carrying many
# cookies can be longer). Bounds memory when an upstream's head never ends.
UPSTREAM_HEAD_LIMIT = 64 * 1024


def accept_key(key: str) -> str:
    """``Sec-WebSocket-Accept`` for a ``Sec-WebSocket-Key`` (RFC 6455 §4.2.2 step 5.4)."""
    digest = hashlib.sha1((key + GUID).encode("ascii")).digest()
    return base64.b64encode(digest).decode("ascii")


def fresh_key() -> str:
    """A new random ``Sec-WebSocket-Key``: 16 random bytes, base64 (§4.1)."""
    return base64.b64encode(os.urandom(16)).decode("ascii")


class HandshakeError(Exception):
    """A handshake that cannot go on: ``refusal`` is the proxy's answer to the client, with
    ``status``, the one-line ``reason`` and extra ``headers`` (``Sec-WebSocket-Version: 13``
    for a 426)."""

    def __init__(self, status: int, reason: str, headers: Headers = ()) -> None:
        super().__init__(reason)
        self.refusal = Refusal(status, reason, headers)


def header_value(headers: Iterable[tuple[str, str]], name: str) -> str | None:
    """The values of header ``name`` (case-insensitive) joined by ``, ``; ``None`` if absent."""
    name = name.lower()
    values = [v for n, v in headers if n.lower() == name]
    return ", ".join(values) if values else None


def _tokens(value: str | None) -> list[str]:
    return [t.strip().lower() for t in (value or "").split(",") if t.strip()]


def offers_deflate(value: str | None) -> bool:
    """Whether a ``Sec-WebSocket-Extensions`` value offers permessage-deflate (RFC 7692)."""
    return value is not None and strip_permessage_deflate(value) != (value.strip() or None)


def _decode_headers(raw: Iterable[tuple[bytes, bytes]]) -> Headers:
    # h11 has already checked the bytes; latin-1 is the lossless byte↔str mapping for them.
    return tuple((n.decode("latin-1"), v.decode("latin-1")) for n, v in raw)


def _encode_headers(headers: Iterable[tuple[str, str]]) -> list[tuple[bytes, bytes]]:
    return [(n.encode("latin-1"), v.encode("latin-1")) for n, v in headers]


@dataclass(frozen=True, slots=True)
class UpgradeRequest:
    """A request the client sent: ``headers`` in the order and case they came.

    ``is_websocket`` tells whether it asks for a WebSocket (``Upgrade: websocket``); ``key`` is
    its ``Sec-WebSocket-Key`` once validated.
    """

    method: str
    target: str
    http_version: str
    headers: Headers
    key: str = ""

    @property
    def is_websocket(self) -> bool:
        return "websocket" in _tokens(header_value(self.headers, "upgrade"))

    def header(self, name: str) -> str | None:
        return header_value(self.headers, name)


def validate_upgrade(request: UpgradeRequest) -> UpgradeRequest:
    """Check a WebSocket upgrade request as RFC 6455 §4.2.1 requires; return it with ``key``.

    400 for a method other than GET, HTTP older than 1.1, a missing Host, a Connection header
    without ``Upgrade``, a missing, repeated or malformed ``Sec-WebSocket-Key`` (must decode to
    16 bytes), a body (``Content-Length`` other than 0, ``Transfer-Encoding``) or a missing
    ``Sec-WebSocket-Version``; 426 with ``Sec-WebSocket-Version: 13`` for
    another version (§4.4).
    """
    if request.method != "GET":
        raise HandshakeError(400, f"a WebSocket handshake must use GET, not {request.method}")
    if request.http_version < "1.1":
        raise HandshakeError(400, f"a WebSocket handshake needs HTTP/1.1, not HTTP/{request.http_version}")
    if request.header("host") is None:
        raise HandshakeError(400, "missing Host header")
    if "upgrade" not in _tokens(request.header("connection")):
        raise HandshakeError(400, "the Connection header must include 'Upgrade'")
    keys = [v for n, v in request.headers if n.lower() == "sec-websocket-key"]
    if not keys:
        raise HandshakeError(400, "missing Sec-WebSocket-Key header")
    if len(keys) > 1:
        raise HandshakeError(400, "more than one Sec-WebSocket-Key header")
    key = keys[0].strip()
    try:
        raw = base64.b64decode(key.encode("ascii"), validate=True)
    except (ValueError, UnicodeEncodeError):
        raw = b""
    if len(raw) != 16:
        raise HandshakeError(400, f"invalid Sec-WebSocket-Key {key!r}: must be 16 bytes in base64")
    # A GET body has no meaning (RFC 9110 §9.3.1) and the proxy forwards none upstream: bytes
    # after the head are frames. A request announcing one cannot be relayed faithfully.
    length = (request.header("content-length") or "0").strip()
    if request.header("transfer-encoding") is not None or length not in ("0", ""):
        raise HandshakeError(400, "a WebSocket handshake request must not have a body")
    version = request.header("sec-websocket-version")
    if version is None:
        raise HandshakeError(400, "missing Sec-WebSocket-Version header")
    if version.strip() != "13":
        raise HandshakeError(
            426,
            f"unsupported Sec-WebSocket-Version {version.strip()!r}: this proxy speaks 13",
            (("Sec-WebSocket-Version", "13"),),
        )
    return UpgradeRequest(request.method, request.target, request.http_version, request.headers, key)


class ClientHandshake:
    """The proxy's server side toward the client: read one request, answer it.

    ``feed(data)`` returns the ``UpgradeRequest`` once its head is complete (``None`` before);
    a malformed request raises ``HandshakeError(400)``, a head over ``max_header_size``
    ``HandshakeError(431)``. The request is not validated as a WebSocket upgrade here: plain
    HTTP requests are passed through, so call ``validate_upgrade`` when ``is_websocket``.
    """

    def __init__(self, max_header_size: int = 64 * 1024) -> None:
        self.conn = h11.Connection(h11.SERVER, max_incomplete_event_size=max_header_size)
        self.max_header_size = max_header_size
        self.request: UpgradeRequest | None = None

    @property
    def received_any(self) -> bool:
        return self.conn.their_state is not h11.IDLE or bool(self.conn.trailing_data[0])

    def feed(self, data: bytes) -> UpgradeRequest | None:
        """Take bytes from the client (``b""`` at EOF); the request once its head is complete."""
        self.conn.receive_data(data)
        return self._next_request()

    @property
    def can_keep_alive(self) -> bool:
        """Whether the exchange just answered leaves the connection open for another request
        (both sides done, neither said ``Connection: close``, HTTP/1.1)."""
        return self.conn.our_state is h11.DONE and self.conn.their_state is h11.DONE

    def next_request(self) -> UpgradeRequest | None:
        """Start reading the next request on a kept-alive connection (``can_keep_alive``):
        the request if bytes already received hold its whole head (pipelining), else ``None``
        until ``feed`` gives more."""
        self.conn.start_next_cycle()
        self.request = None
        return self._next_request()

    def _next_request(self) -> UpgradeRequest | None:
        try:
            event = self.conn.next_event()
        except h11.RemoteProtocolError as exc:
            status = exc.error_status_hint
            if status == 431:
                raise HandshakeError(431, "request headers too large") from None
            # h11 appends the offending bytes as a bytearray repr: keep the sentence only.
            detail = str(exc).split(": bytearray(", 1)[0]
            raise HandshakeError(status, f"malformed HTTP request: {detail}") from None
        if event is h11.NEED_DATA:
            return None
        if isinstance(event, h11.ConnectionClosed):
            raise HandshakeError(400, "the client closed the connection before a complete request")
        if not isinstance(event, h11.Request):  # pragma: no cover - h11 yields Request first
            raise HandshakeError(400, "malformed HTTP request")
        if event.http_version not in (b"1.0", b"1.1"):
            # h11 parses any version; an HTTP/2 preface (``PRI * HTTP/2.0``) lands here.
            version = event.http_version.decode("ascii", "replace")
            raise HandshakeError(400, f"unsupported HTTP version {version}: this proxy speaks HTTP/1.1")
        # h11 bounds only a head still incomplete; one that came whole in a chunk is measured.
        raw = event.headers.raw_items()
        size = len(event.method) + len(event.target) + 12 + sum(len(n) + len(v) + 4 for n, v in raw)
        if size > self.max_header_size:
            raise HandshakeError(431, "request headers too large")
        self.request = UpgradeRequest(
            event.method.decode("ascii", "replace"),
            event.target.decode("latin-1"),
            event.http_version.decode("ascii"),
            _decode_headers(raw),
        )
        return self.request

    def trailing_data(self) -> bytes:
        """Bytes the client sent after the request head of an upgrade request (its first frames,
        if it did not wait for the 101). Call only for a WebSocket request."""
        # h11 holds an upgrade request's remaining bytes once it has seen its (empty) body.
        while self.conn.their_state is h11.SEND_BODY:
            if self.conn.next_event() is h11.NEED_DATA:
                break
        return bytes(self.conn.trailing_data[0])

    def accept(self, upstream: UpstreamAccepted) -> bytes:
        """The 101 for the client: the upstream's status line and headers in order, with
        ``Sec-WebSocket-Accept`` recomputed for the client's key (§4.2.2 step 5).

        The bytes are the ones h11 writes for this ``InformationalResponse`` (status line,
        ``Host`` first if there is one, the rest in order), put together here: every header
        came out of h11's parser, which validated and normalised it, and the one value
        replaced is base64, so sending it through a second h11 state machine would only check
        them again (a visible share of the cost of opening a connection). Nothing is sent on
        this connection through h11 after the 101."""
        assert self.request is not None
        client_accept = accept_key((self.request.header("sec-websocket-key") or "").strip())
        reason = upstream.reason.encode("latin-1", "replace") or b"Switching Protocols"
        lines = [b"HTTP/1.1 101 " + reason]
        rest: list[bytes] = []
        for n, v in upstream.headers:
            low = n.lower()
            if low == "sec-websocket-accept":
                v = client_accept
            line = n.encode("latin-1") + b": " + v.encode("latin-1")
            (lines if low == "host" else rest).append(line)
        lines += rest
        lines.append(b"\r\n")
        return b"\r\n".join(lines)

    def refuse(self, refusal: Refusal) -> bytes:
        """The complete response that answers the request with ``refusal`` and ends the
        connection (``Refusal.response`` on this handshake's h11 connection)."""
        return refusal.response(self.conn)


@dataclass(frozen=True, slots=True)
class UpstreamAccepted:
    """The upstream's 101 (§4.1): its status line reason, headers in order, and the bytes that
    came after it (frames the server sent at once)."""

    reason: str
    headers: Headers
    trailing: bytes

    @property
    def subprotocol(self) -> str | None:
        return header_value(self.headers, "sec-websocket-protocol")

    @property
    def extensions(self) -> str | None:
        return header_value(self.headers, "sec-websocket-extensions")


class UpstreamHandshake:
    """The proxy's client side toward the upstream.

    ``request_for(client_request, ...)`` builds the upstream request with a fresh key;
    ``feed(data)`` reads the answer and returns ``UpstreamAccepted`` for a valid 101,
    a ``Refusal(by="upstream")`` (its status, phrase, headers and body up to ``body_limit``)
    for anything else, or ``None``
    while incomplete. A 101 that is not a valid WebSocket answer (no ``Upgrade: websocket``,
    no ``Connection: Upgrade``, wrong ``Sec-WebSocket-Accept``) or a malformed response raises
    ``HandshakeError(502)``.
    """

    def __init__(self, *, key: str | None = None, body_limit: int = DEFAULT_BODY_LIMIT) -> None:
        self.conn = h11.Connection(h11.CLIENT, max_incomplete_event_size=UPSTREAM_HEAD_LIMIT)
        self.key = key or fresh_key()
        self.body_limit = body_limit
        self._response: h11.Response | None = None
        self._body: list[bytes] = []
        self._size = 0

    def request_for(
        self, client: UpgradeRequest, host: str, prefix: str = "", *,
        strip_compression: bool = False,
    ) -> bytes:
        """The upstream request: the client's headers in order with ``Host`` set to ``host``,
        ``Sec-WebSocket-Key`` replaced by this handshake's fresh key, the canonical
        ``Connection: Upgrade``/``Upgrade: websocket`` pair, other hop-by-hop headers dropped,
        and the target ``prefix + client target``. With ``strip_compression`` every
        permessage-deflate offer is removed from ``Sec-WebSocket-Extensions``."""
        headers: list[tuple[str, str]] = []
        for name, value in client.headers:
            low = name.lower()
            if low == "host":
                headers.append((name, host))
            elif low == "sec-websocket-key":
                headers.append((name, self.key))
            elif low == "connection":
                headers.append((name, "Upgrade"))
            elif low == "upgrade":
                headers.append((name, "websocket"))
            elif low in HOP_BY_HOP:
                continue
            elif low == "sec-websocket-extensions" and strip_compression and offers_deflate(value):
                stripped = strip_permessage_deflate(value)
                if stripped:
                    headers.append((name, stripped))
            else:
                headers.append((name, value))
        return (
            self.conn.send(
                h11.Request(
                    method=b"GET",
                    target=join_target(prefix, client.target).encode("latin-1"),
                    headers=_encode_headers(headers),
                )
            )
            or b""
        )

    def request_raw(self, target: str, headers: Sequence[tuple[str, str]]) -> bytes:
        """A client request built from scratch (``replay``, ``open_websocket``): ``headers`` must
        include Host; the upgrade headers and this handshake's key are added when missing."""
        have = {n.lower() for n, _ in headers}
        out = list(headers)
        for name, value in (
            ("Upgrade", "websocket"),
            ("Connection", "Upgrade"),
            ("Sec-WebSocket-Key", self.key),
            ("Sec-WebSocket-Version", "13"),
        ):
            if name.lower() not in have:
                out.append((name, value))
        return (
            self.conn.send(
                h11.Request(
                    method=b"GET", target=target.encode("latin-1"), headers=_encode_headers(out)
                )
            )
            or b""
        )

    def feed(self, data: bytes) -> UpstreamAccepted | Refusal | None:
        """Take bytes from the upstream (``b""`` at EOF); the outcome once known."""
        self.conn.receive_data(data)
        while True:
            try:
                event = self.conn.next_event()
            except h11.RemoteProtocolError as exc:
                if self._response is not None:
                    return self._refused(complete=False)
                if not data:  # h11 words an EOF before any answer as a state error
                    raise HandshakeError(502, "upstream closed the connection without answering the handshake") from None
                if exc.error_status_hint == 431:
                    raise HandshakeError(502, f"upstream's response head is over {UPSTREAM_HEAD_LIMIT} bytes") from None
                raise HandshakeError(502, f"upstream sent a malformed HTTP response: {exc}") from None
            if event is h11.NEED_DATA:
                if self._response is not None and self._size >= self.body_limit:
                    return self._refused(complete=False)
                return None
            if isinstance(event, h11.InformationalResponse):
                if event.status_code == 101:
                    return self._accepted(event)
                continue  # 100 Continue and other 1xx: wait for the final answer
            if isinstance(event, h11.Response):
                self._response = event
                continue
            if isinstance(event, h11.Data):
                room = self.body_limit - self._size
                if room > 0:
                    self._body.append(bytes(event.data[:room]))
                self._size += len(event.data)
                continue
            if isinstance(event, h11.EndOfMessage):
                return self._refused(complete=self._size <= self.body_limit)
            if isinstance(event, h11.ConnectionClosed) or event is h11.PAUSED:
                if self._response is not None:
                    return self._refused(complete=False)
                raise HandshakeError(502, "upstream closed the connection without answering the handshake")
            raise HandshakeError(502, f"unexpected upstream event {event!r}")  # pragma: no cover

    def _accepted(self, event: h11.InformationalResponse) -> UpstreamAccepted:
        headers = _decode_headers(event.headers.raw_items())
        if "websocket" not in _tokens(header_value(headers, "upgrade")):
            raise HandshakeError(502, "upstream answered 101 without 'Upgrade: websocket'")
        if "upgrade" not in _tokens(header_value(headers, "connection")):
            raise HandshakeError(502, "upstream answered 101 without 'Connection: Upgrade'")
        got = header_value(headers, "sec-websocket-accept")
        if got is None or got.strip() != accept_key(self.key):
            raise HandshakeError(
                502,
                f"upstream's Sec-WebSocket-Accept {got!r} does not match the key sent (RFC 6455 §4.1)",
            )
        trailing = bytes(self.conn.trailing_data[0])
        return UpstreamAccepted(event.reason.decode("latin-1"), headers, trailing)

    def _refused(self, *, complete: bool) -> Refusal:
        """The upstream's answer, to relay as-is: its status line, headers and body."""
        r = self._response
        assert r is not None
        phrase = r.reason.decode("latin-1")
        return Refusal(
            r.status_code,
            f"upstream answered {r.status_code} {phrase}".rstrip(),
            _decode_headers(r.headers.raw_items()),
            b"".join(self._body),
            by="upstream",
            phrase=phrase,
            complete=complete,
        )


def join_target(prefix: str, target: str) -> str:
    """The upstream target: the upstream URL's path as a prefix of the client's path+query
    (``/base`` + ``/chat?room=1`` → ``/base/chat?room=1``). An absolute-form target
    (``ws://host/chat?room=1``, RFC 9112 §3.2.2) keeps only its path and query: the upstream
    is reached by its own Host."""
    if "://" in target and not target.startswith("/"):
        parts = urlsplit(target)
        if parts.scheme and parts.netloc:
            target = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
    if not prefix:
        return target or "/"
    if target.startswith("/"):
        return prefix.rstrip("/") + target
    # An asterisk or authority-form target: keep it under the prefix.
    return prefix.rstrip("/") + "/" + target.lstrip("/")
