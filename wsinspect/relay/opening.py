"""One accepted client connection, from its first byte to the relayed session.

Upstream first (the issue's rule): the client's request is read and validated
(RFC 6455 §4.2.1), handshake gates run, then the proxy connects upstream and completes its own
handshake (§4.1) *before* it answers the client, so the client's answer is the upstream's:
its 101 (with the Accept for the client's key), its refusal as-is, or 502/504 when it could not
be reached. Every refusal is one ``Refusal`` value that ``refuse_request`` publishes as
``HandshakeRejected`` and answers the client with.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import replace
from typing import TYPE_CHECKING

import trio

from wsinspect.events import ConnectionOpened, HandshakeRejected, Notice
from wsinspect.relay.hooks import HandshakeInfo
from wsinspect.relay.http import KeptAlive, passthrough
from wsinspect.relay.session import Session
from wsinspect.relay.transport import raw_socket, receive_some, send_all
from wsinspect.relay.upstream import Route, UpstreamError, read_answer
from wsinspect.wire.handshake import (
    ClientHandshake,
    HandshakeError,
    UpgradeRequest,
    UpstreamHandshake,
    join_target,
    offers_deflate,
    validate_upgrade,
)
from wsinspect.wire.refusal import Refusal

if TYPE_CHECKING:
    from wsinspect.relay.server import Relay

__all__ = [
    "KEEP_ALIVE_IDLE",
    "Router",
    "handle_client",
    "peer_name",
    "read_request",
    "refuse_request",
    "send_refusal",
]

READ_SIZE = 16 * 1024
LINGER = 1.0  # seconds to drain a refused client's input before closing
LINGER_BYTES = 1 << 20


def peer_name(stream: trio.abc.Stream) -> str:
    """``host:port`` of the client (``[v6]:port`` for IPv6), ``?`` when unknown."""
    sock = raw_socket(stream)
    try:
        addr = sock.getpeername() if sock is not None else None
    except OSError:
        addr = None
    if not addr or not isinstance(addr, tuple):
        return "?"
    host, port = addr[0], addr[1]
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


async def send_refusal(stream: trio.abc.Stream, hs: ClientHandshake, refusal: Refusal) -> None:
    """Answer the client with ``refusal`` and end the connection, ignoring a client that left."""
    data = hs.refuse(refusal)
    with trio.move_on_after(5):
        try:
            await stream.send_all(data)
            if isinstance(stream, trio.abc.HalfCloseableStream):
                await stream.send_eof()
                # Lingering close: closing with unread input would send an RST that can
                # destroy the answer before the client reads it, so drain a little first.
                with trio.move_on_after(LINGER):
                    drained = 0
                    while drained < LINGER_BYTES and (
                        chunk := await stream.receive_some(READ_SIZE)
                    ):
                        drained += len(chunk)
        except (trio.BrokenResourceError, trio.ClosedResourceError, OSError):
            pass


async def refuse_request(
    relay: Relay, conn: int, client: str, stream: trio.abc.Stream, hs: ClientHandshake,
    refusal: Refusal, request: UpgradeRequest | None = None, *,
    upstream: trio.abc.Stream | None = None, answer: bool = True,
) -> None:
    """The one way a handshake ends refused: publish ``HandshakeRejected``, answer the client,
    then close the upstream connection if one was opened.

    ``request`` is the client's request once its head was read (its path, Origin and headers
    go into the event; the refusal's own ``origin`` wins). ``answer=False`` only reports: the
    client left before the 101 reached it, so there is nobody to answer.
    """
    origin = refusal.origin
    if origin is None and request is not None:
        origin = request.header("origin")
    relay.hub.publish(HandshakeRejected(
        conn, time.time(), client, request.target if request is not None else "",
        refusal.status, refusal.reason, origin=origin, rule=refusal.rule, by=refusal.by,
        request_headers=request.headers if request is not None else (),
    ))
    if answer:
        await send_refusal(stream, hs, refusal)
    if upstream is not None:
        await trio.aclose_forcefully(upstream)


#: Where a request goes: its ``Route``, or the ``Refusal`` it gets (a forward proxy's answer
#: to a request that names no host).
Router = Callable[[UpgradeRequest], "Route | Refusal"]
#: How long a kept-alive connection may wait, quiet, for its next request.
KEEP_ALIVE_IDLE = 60.0


async def handle_client(
    relay: Relay, stream: trio.abc.Stream, conn: int, router: Router, *,
    hs: ClientHandshake | None = None, request: UpgradeRequest | None = None,
    initial: bytes = b"", client: str | None = None,
) -> None:
    """Serve client connection ``conn``: its requests in turn, each sent where ``router``
    says, until one becomes a relayed WebSocket session or the connection ends. Plain HTTP
    passes through with keep-alive (``relay.http``). A caller that has already read from the
    connection passes its ``hs`` and ``request``, or the ``initial`` bytes it read."""
    opened = await _requests(relay, stream, conn, router, hs, request, initial,
                             client or peer_name(stream))
    # Only the session outlives the handshakes: h11 state, headers and the handshake
    # frames are garbage once it runs (memory per idle connection stays small), which is why
    # the requests are read in a frame of their own.
    if opened is not None:
        session, client_first, upstream_first = opened
        del opened
        try:
            await session.run(client_first, upstream_first)
        finally:
            relay.sessions.pop(conn, None)


async def _requests(
    relay: Relay, stream: trio.abc.Stream, conn: int, router: Router,
    hs: ClientHandshake | None, request: UpgradeRequest | None, initial: bytes, client: str,
) -> Opened | None:
    """The requests of ``handle_client``, up to the one that opens a session (``None``: the
    connection ended or was answered)."""
    hs = hs or ClientHandshake(relay.settings.max_header_size)
    if request is None and initial:
        try:
            request = hs.feed(initial)
        except HandshakeError as exc:
            await refuse_request(relay, conn, client, stream, hs, exc.refusal)
            return None
    pool = KeptAlive()
    try:
        first = True
        while True:
            if request is None:
                request = await read_request(relay, conn, stream, hs, client, first=first)
                if request is None:
                    return None
            first = False
            route = router(request)
            if isinstance(route, Refusal):
                await refuse_request(relay, conn, client, stream, hs, route, request)
                return None
            if request.is_websocket:
                return await _upgrade(relay, conn, stream, hs, request, client, route)
            if not await passthrough(relay, conn, stream, hs, request, client, route, pool):
                return None
            try:  # a pipelined request may be waiting already
                request = hs.next_request()
            except HandshakeError as exc:
                await refuse_request(relay, conn, client, stream, hs, exc.refusal)
                return None
    finally:
        await pool.aclose()


Opened = tuple[Session, bytes, bytes]


async def read_request(
    relay: Relay, conn: int, stream: trio.abc.Stream, hs: ClientHandshake, client: str, *,
    first: bool,
) -> UpgradeRequest | None:
    """The next request's head, or ``None`` when the connection ended or was answered (a
    malformed request, or none within the handshake timeout: 408). A kept-alive connection
    (not ``first``) that stays quiet for ``KEEP_ALIVE_IDLE`` or closes between requests ends
    without a word, as HTTP/1.1 allows."""
    settings = relay.settings
    request: UpgradeRequest | None = None
    got_bytes = hs.received_any
    timeout = settings.handshake_timeout if first else max(KEEP_ALIVE_IDLE, settings.handshake_timeout)
    with trio.move_on_after(timeout):
        try:
            while request is None:
                data = await receive_some(stream, READ_SIZE)
                if not data and not got_bytes:
                    return None  # connected (or kept alive) and left without a word
                got_bytes = True
                request = hs.feed(data)
        except HandshakeError as exc:
            await refuse_request(relay, conn, client, stream, hs, exc.refusal)
            return None
        except (trio.BrokenResourceError, trio.ClosedResourceError, OSError) as exc:
            if got_bytes or (first and settings.cert):
                relay.hub.publish(Notice(time.time(), "warning",
                                         f"client {client} failed before its request: {exc}", conn))
            return None
    if request is None and (first or got_bytes):
        reason = f"no complete request within {timeout:g} s"
        await refuse_request(relay, conn, client, stream, hs, Refusal(408, reason))
    return request


async def _upgrade(
    relay: Relay, conn: int, stream: trio.abc.Stream, hs: ClientHandshake,
    request: UpgradeRequest, client: str, route: Route,
) -> Opened | None:
    """Validate a WebSocket request, run the handshake gates, then both handshakes."""
    try:
        request = validate_upgrade(request)
    except HandshakeError as exc:
        await refuse_request(relay, conn, client, stream, hs, exc.refusal, request)
        return None

    info = HandshakeInfo(conn, client, request.target, request.headers)
    for gate in list(relay.hooks.gates):
        refusal = await gate(info)
        if refusal is not None:
            # A gate refuses for the proxy; the event names the Origin it judged (the first).
            refusal = replace(refusal, origin=refusal.origin or info.origin, by="proxy")
            await refuse_request(relay, conn, client, stream, hs, refusal, request)
            return None

    return await _open_upstream(relay, conn, stream, hs, request, client, route)


async def _open_upstream(
    relay: Relay, conn: int, stream: trio.abc.Stream, hs: ClientHandshake,
    request: UpgradeRequest, client: str, route: Route,
) -> Opened | None:
    settings = relay.settings
    hub = relay.hub
    upstream = route.upstream
    path = request.target
    if settings.forward:  # the proxy's own credentials end here
        request = replace(request, headers=tuple(
            (n, v) for n, v in request.headers if n.lower() != "proxy-authorization"))

    if upstream.secure and settings.insecure:
        hub.publish(Notice(time.time(), "warning",
                           f"--insecure: the certificate of {upstream.host} is not verified", conn))
    offer = request.header("sec-websocket-extensions")
    strip = settings.no_compression and offers_deflate(offer)
    if strip:
        hub.publish(Notice(time.time(), "info",
                           "--no-compression: permessage-deflate removed from the client's offer", conn))

    up_hs = UpstreamHandshake()
    up_stream: trio.abc.Stream | None = None

    async def refuse(refusal: Refusal, *, answer: bool = True) -> None:
        await refuse_request(relay, conn, client, stream, hs, refusal, request,
                      upstream=up_stream, answer=answer)

    with trio.move_on_after(settings.handshake_timeout) as scope:
        try:
            connector = relay.hooks.connect_upstream
            if connector is not None:  # an in-process upstream (Hooks.connect_upstream)
                up_stream = await connector(HandshakeInfo(conn, client, path, request.headers))
            else:
                up_stream = await route.connect()
            await send_all(
                up_stream,
                up_hs.request_for(
                    request, upstream.host_header, upstream.path, strip_compression=strip
                ),
            )
            answer = await read_answer(up_stream, up_hs)
        except (UpstreamError, HandshakeError) as exc:
            await refuse(exc.refusal)
            return None
        except (trio.BrokenResourceError, trio.ClosedResourceError, OSError) as exc:
            await refuse(Refusal(502, f"upstream connection failed: {exc}"))
            return None
    if scope.cancelled_caught:
        what = "connect" if up_stream is None else "answer the handshake"
        await refuse(Refusal(504, f"upstream {upstream.host}:{upstream.port} did not {what} within {settings.handshake_timeout:g} s"))
        return None
    assert up_stream is not None

    if isinstance(answer, Refusal):
        # Relayed as-is: the client sees the upstream's own 401/403/404/3xx/5xx.
        await refuse(answer)
        return None

    client_first = hs.trailing_data()
    extensions = answer.extensions
    session = Session(
        hub, conn, stream, up_stream,
        client=client, path=path, extensions=extensions,
        capture_limit=settings.capture_limit, strict=settings.strict,
        max_message_size=settings.max_message_size,
        session_hooks=list(relay.hooks.session_hooks), tier=relay.tier,
    )
    # Registered before the 101 goes out: once the client is open, commands can find it.
    relay.sessions[conn] = session
    try:
        await send_all(stream, hs.accept(answer))
    except (trio.BrokenResourceError, trio.ClosedResourceError, OSError):
        relay.sessions.pop(conn, None)
        await refuse(Refusal(101, "the client left before the 101 reached it"), answer=False)
        return None
    session.opened = ConnectionOpened(
        conn=conn,
        ts=time.time(),
        client=client,
        path=route.url_for(path, websocket=True),
        upstream=f"{'wss' if upstream.secure else 'ws'}://{upstream.host_header}"
        f"{join_target(upstream.path, path)}",
        request_headers=request.headers,
        status=101,
        response_headers=answer.headers,
        subprotocol=answer.subprotocol,
        extensions=extensions,
    )
    hub.publish(session.opened)
    return session, client_first, answer.trailing
