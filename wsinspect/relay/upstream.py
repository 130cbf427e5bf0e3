"""Connecting to the upstream: TCP, TLS with SNI and verification, and a client handshake.

``connect`` opens the transport the relay uses (for WebSocket and plain HTTP alike);
``open_websocket`` also does the client side of the opening handshake (RFC 6455 §4.1) and is
reusable by anything that needs a WebSocket client connection (``replay``).

Failures become ``UpstreamError`` carrying the ``Refusal`` the proxy answers its client with:
502 for a refused, unreachable or unresolvable upstream, a TLS failure or a bad 101, 504 for a
timeout.
"""

from __future__ import annotations

import socket
import ssl
from collections.abc import Sequence
from dataclasses import dataclass
from urllib.parse import urlsplit

import trio

from wsinspect.relay.transport import open_tcp, receive_some
from wsinspect.settings import Upstream
from wsinspect.wire.handshake import HandshakeError, UpstreamAccepted, UpstreamHandshake
from wsinspect.wire.refusal import Refusal

__all__ = [
    "Route",
    "UpstreamError",
    "WebSocketConnection",
    "client_ssl_context",
    "connect",
    "connect_tcp",
    "open_websocket",
    "read_answer",
    "start_tls",
]

RECEIVE_SIZE = 64 * 1024


class UpstreamError(Exception):
    """The upstream could not be reached or did not complete its handshake.

    ``refusal`` is what the client is answered: ``UpstreamError(status, reason)`` for the
    proxy's own 502/504, ``UpstreamError.of(refusal)`` to carry one already made (a
    ``HandshakeError``'s, or the upstream's own refusal).
    """

    def __init__(self, status: int, reason: str) -> None:
        super().__init__(reason)
        self.refusal = Refusal(status, reason)

    @classmethod
    def of(cls, refusal: Refusal) -> UpstreamError:
        error = cls(refusal.status, refusal.reason)
        error.refusal = refusal
        return error


def client_ssl_context(ca: str | None = None, insecure: bool = False) -> ssl.SSLContext:
    """A TLS client context: the system trust store, plus ``ca`` (a PEM file) when given;
    ``insecure`` turns verification off (hostname and chain)."""
    ctx = ssl.create_default_context()
    if ca:
        ctx.load_verify_locations(cafile=ca)
    if insecure:
        ctx.check_hostname = False
        ctx.verify_mode = ssl.CERT_NONE
    # A WebSocket is HTTP/1.1: say so, for servers that choose by ALPN.
    ctx.set_alpn_protocols(["http/1.1"])
    return ctx


def _describe(exc: BaseException) -> str:
    """The most specific reason in an exception chain (trio wraps OSError and SSL errors)."""
    seen: list[BaseException] = []
    cur: BaseException | None = exc
    while cur is not None and cur not in seen:
        seen.append(cur)
        if isinstance(cur, ssl.SSLCertVerificationError):
            return f"TLS certificate verification failed: {cur.verify_message or cur.reason}"
        if isinstance(cur, ssl.SSLError):
            return f"TLS handshake failed: {cur.reason or cur}"
        if isinstance(cur, socket.gaierror):
            return f"cannot resolve host: {cur.strerror or cur}"
        if isinstance(cur, OSError) and cur.strerror:
            return cur.strerror
        if isinstance(cur, BaseExceptionGroup) and cur.exceptions:
            cur = cur.exceptions[-1]
            continue
        cur = cur.__cause__ or cur.__context__
    return str(exc) or type(exc).__name__


async def connect(
    host: str,
    port: int,
    *,
    ssl_context: ssl.SSLContext | None = None,
    server_hostname: str | None = None,
) -> trio.abc.Stream:
    """Open TCP to ``host:port`` and, with ``ssl_context``, TLS with SNI ``server_hostname``
    (default ``host``); the TLS handshake completes here so its errors surface here.

    Raises ``UpstreamError(502)`` on refusal, unreachable or unknown hosts and TLS failures;
    callers bound the time (``UpstreamError(504)`` is theirs to raise on timeout).
    """
    tcp = await connect_tcp(host, port)
    if ssl_context is None:
        return tcp
    return await start_tls(tcp, host, port, ssl_context, server_hostname)


async def connect_tcp(host: str, port: int) -> trio.SocketStream:
    """TCP to ``host:port``; ``UpstreamError(502)`` with the reason when it cannot be had."""
    try:
        return await open_tcp(host, port)
    except OSError as exc:  # includes gaierror and the OSError trio raises for all attempts
        raise UpstreamError(502, f"cannot connect to {host}:{port}: {_describe(exc)}") from exc


async def start_tls(
    tcp: trio.abc.Stream, host: str, port: int, ssl_context: ssl.SSLContext,
    server_hostname: str | None = None,
) -> trio.SSLStream[trio.abc.Stream]:
    """TLS over ``tcp`` (SNI and verified name ``server_hostname``, default ``host``), its
    handshake done; ``UpstreamError(502)`` saying why it failed (``tcp`` is then closed)."""
    stream = trio.SSLStream(
        tcp, ssl_context, server_hostname=server_hostname or host, https_compatible=True
    )
    try:
        await stream.do_handshake()
    except (trio.BrokenResourceError, ssl.SSLError, OSError) as exc:
        await trio.aclose_forcefully(tcp)
        raise UpstreamError(502, f"TLS with {host}:{port} failed: {_describe(exc)}") from exc
    return stream


@dataclass(slots=True)
class Route:
    """Where one client connection's requests go: ``upstream`` (reverse mode: ``--upstream``;
    forward mode: the host a request or a CONNECT names), the TLS context when it is secure,
    the name TLS asks for and verifies (``server_name``: the client's SNI in a tunnel), and
    ``tcp``, a connection a CONNECT already opened to it, which the first ``connect`` uses."""

    upstream: Upstream
    ssl_context: ssl.SSLContext | None
    server_name: str | None = None
    tcp: trio.abc.Stream | None = None
    forward: bool = False  # a forward proxy's route: events name the host of every request

    def url_for(self, target: str, *, websocket: bool = False) -> str:
        """How a request for ``target`` is shown (events, log, TUI): as it came in reverse mode
        (the upstream is always the same), as the whole URL the client asked for in forward
        mode (``wss://host/path`` for a WebSocket)."""
        if not self.forward or "://" in target:
            return target
        scheme = ("wss" if websocket else "https") if self.upstream.secure else (
            "ws" if websocket else "http")
        return f"{scheme}://{self.upstream.host_header}{target}"

    @property
    def key(self) -> tuple[str, int, bool]:
        """What makes two routes reach the same server (for reusing a kept-alive connection)."""
        return (self.upstream.host, self.upstream.port, self.upstream.secure)

    async def connect(self) -> trio.abc.Stream:
        """A connection to the upstream, TLS done when it is secure (``UpstreamError(502)``)."""
        up = self.upstream
        tcp, self.tcp = self.tcp, None
        if tcp is None:
            tcp = await connect_tcp(up.host, up.port)
        if not up.secure:
            return tcp
        assert self.ssl_context is not None
        return await start_tls(tcp, up.host, up.port, self.ssl_context, self.server_name)

    async def aclose(self) -> None:
        """Close a CONNECT's connection that no request used."""
        if self.tcp is not None:
            await trio.aclose_forcefully(self.tcp)
            self.tcp = None


async def read_answer(
    stream: trio.abc.Stream, handshake: UpstreamHandshake
) -> UpstreamAccepted | Refusal:
    """Read the upstream's answer to a handshake request already sent on ``stream``: its 101,
    or its refusal (``by="upstream"``).

    ``HandshakeError(502)`` for a bad or missing answer, ``UpstreamError(502)`` when the
    connection breaks.
    """
    while True:
        try:
            data = await receive_some(stream, RECEIVE_SIZE)
        except (trio.BrokenResourceError, OSError) as exc:
            raise UpstreamError(502, f"upstream connection failed during the handshake: {_describe(exc)}") from exc
        outcome = handshake.feed(data)
        if outcome is not None:
            return outcome
        if not data:
            # h11 reports the EOF itself; this guards a loop on a stream that keeps saying EOF.
            raise HandshakeError(502, "upstream closed the connection without answering the handshake")


@dataclass(slots=True)
class WebSocketConnection:
    """An open client WebSocket: the stream (after the 101) and the upstream's answer.

    ``answer.trailing`` holds bytes the server sent right after its 101 (already frames).
    """

    stream: trio.abc.Stream
    answer: UpstreamAccepted
    key: str


async def open_websocket(
    url: str,
    headers: Sequence[tuple[str, str]] = (),
    *,
    ssl_context: ssl.SSLContext | None = None,
    ca: str | None = None,
    insecure: bool = False,
    timeout: float = 10.0,  # noqa: ASYNC109 (one bound for connect + TLS + handshake)
) -> WebSocketConnection:
    """Connect to ``url`` (``ws://`` or ``wss://``) and complete the opening handshake.

    ``headers`` are sent in order (``Host`` is added first when missing; the upgrade headers and
    a fresh key are added unless given). For ``wss`` the TLS context is ``ssl_context`` or one
    built from ``ca``/``insecure``. Raises ``UpstreamError`` (502 unreachable/TLS/bad answer,
    504 on timeout, or the upstream's own status when it refuses).
    """
    parts = urlsplit(url)
    if parts.scheme not in ("ws", "wss") or not parts.hostname:
        raise ValueError(f"not a ws:// or wss:// URL: {url!r}")
    secure = parts.scheme == "wss"
    port = parts.port or (443 if secure else 80)
    target = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
    if secure and ssl_context is None:
        ssl_context = client_ssl_context(ca, insecure)
    host = parts.hostname
    default = 443 if secure else 80
    host_header = (f"[{host}]" if ":" in host else host) + ("" if port == default else f":{port}")
    if not any(n.lower() == "host" for n, _ in headers):
        headers = [("Host", host_header), *headers]
    handshake = UpstreamHandshake()
    with trio.move_on_after(timeout) as scope:
        stream = await connect(host, port, ssl_context=ssl_context if secure else None)
        try:
            await stream.send_all(handshake.request_raw(target, headers))
            answer = await read_answer(stream, handshake)
        except HandshakeError as exc:
            await trio.aclose_forcefully(stream)
            raise UpstreamError.of(exc.refusal) from exc
        except BaseException:
            await trio.aclose_forcefully(stream)
            raise
        if isinstance(answer, Refusal):
            await trio.aclose_forcefully(stream)
            raise UpstreamError.of(answer)
        return WebSocketConnection(stream, answer, handshake.key)
    assert scope.cancelled_caught
    raise UpstreamError(504, f"no handshake answer from {host}:{port} within {timeout:g} s")
