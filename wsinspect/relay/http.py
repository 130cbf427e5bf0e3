"""Plain HTTP passthrough: a request without ``Upgrade: websocket`` goes to its upstream.

So a web app's page, scripts and API calls load through the proxy and its WebSocket follows.
Connections are kept alive on both sides as HTTP/1.1 allows: a client connection serves one
request after another (``opening.handle_client`` loops), and the upstream connection of the
last exchange is kept in ``KeptAlive`` for the next request to the same server. Bodies are
streamed both ways through h11, which also re-frames them (chunked or Content-Length). Each
exchange is one ``HttpExchange`` event (method, URL, status, response body size, time).
"""

from __future__ import annotations

import select
import time
from typing import TYPE_CHECKING

import h11
import trio

from wsinspect.events import HttpExchange
from wsinspect.relay.transport import raw_socket
from wsinspect.relay.upstream import Route, UpstreamError
from wsinspect.wire.handshake import ClientHandshake, UpgradeRequest, join_target
from wsinspect.wire.refusal import Refusal

if TYPE_CHECKING:
    from wsinspect.relay.server import Relay

__all__ = ["KeptAlive", "passthrough"]

READ_SIZE = 64 * 1024
# Hop-by-hop (RFC 9110 §7.6.1); framing headers are kept: h11 re-frames the body from them.
_DROP = frozenset({"connection", "keep-alive", "proxy-connection", "te", "trailer", "upgrade"})
# A forward proxy's own credentials end with it; in reverse mode they were meant for another.
_DROP_FORWARD = _DROP | {"proxy-authorization"}


def _enc(headers: list[tuple[str, str]]) -> list[tuple[bytes, bytes]]:
    return [(n.encode("latin-1"), v.encode("latin-1")) for n, v in headers]


_NO_TUNNELS = (
    "CONNECT is not supported: wsinspect is not a forward proxy; point the client at "
    "wsinspect's address directly and it relays to its upstream, or start it with --forward"
)


class _Failed(Exception):
    """An exchange that cannot go on: ``refusal`` is the client's answer."""

    def __init__(self, status: int, reason: str) -> None:
        super().__init__(reason)
        self.refusal = Refusal(status, reason)


def _is_stale(stream: trio.abc.Stream) -> bool:
    """Whether an idle kept-alive upstream connection has been closed (or has sent something
    unasked) since its last answer, which makes its socket readable: it is not reused."""
    sock = raw_socket(stream)
    if sock is None:
        return False
    try:
        readable, _, _ = select.select([sock.fileno()], [], [], 0)
    except (OSError, ValueError):
        return True
    return bool(readable)


class KeptAlive:
    """The upstream connection the last exchange left open, for the next request that goes
    to the same server (``Route.key``); at most one per client connection."""

    __slots__ = ("_conn", "_key", "_stream")

    def __init__(self) -> None:
        self._key: tuple[str, int, bool] | None = None
        self._stream: trio.abc.Stream | None = None
        self._conn: h11.Connection | None = None

    async def take(self, route: Route) -> tuple[trio.abc.Stream, h11.Connection] | None:
        """The kept connection if it reaches ``route``'s server and is still open; a kept
        connection to another server, or a closed one, is closed."""
        stream, conn, key = self._stream, self._conn, self._key
        self._stream = self._conn = self._key = None
        if stream is None or conn is None:
            return None
        if key == route.key and not _is_stale(stream):
            return stream, conn
        await trio.aclose_forcefully(stream)
        return None

    def keep(self, route: Route, stream: trio.abc.Stream, conn: h11.Connection) -> None:
        conn.start_next_cycle()
        self._key, self._stream, self._conn = route.key, stream, conn

    async def aclose(self) -> None:
        if self._stream is not None:
            await trio.aclose_forcefully(self._stream)
        self._stream = self._conn = self._key = None


async def passthrough(
    relay: Relay, conn: int, client_stream: trio.abc.Stream, hs: ClientHandshake,
    request: UpgradeRequest, client: str, route: Route, kept: KeptAlive,
) -> bool:
    """Forward ``request`` to ``route``'s server and stream the answer back; publish one
    ``HttpExchange``. True when the client connection stays open for another request."""
    settings = relay.settings
    upstream = route.upstream
    started = trio.current_time()
    ts = time.time()
    status = 0
    size = 0
    shown = route.url_for(request.target)
    drop = _DROP_FORWARD if settings.forward else _DROP

    def publish() -> None:
        relay.hub.publish(HttpExchange(conn, ts, client, request.method, shown,
                                       status, size, trio.current_time() - started))

    async def refuse(refusal: Refusal) -> None:
        # Not a handshake: the refusal is this exchange's answer, reported by its HttpExchange.
        nonlocal status, size
        from wsinspect.relay.opening import send_refusal

        status, size = refusal.status, len(refusal.response_body)
        await send_refusal(client_stream, hs, refusal)

    if settings.websocket_only:
        await refuse(Refusal(400, "this proxy relays WebSocket connections only (--websocket-only)"))
        publish()
        return False
    if request.method.upper() == "CONNECT":
        # A client that takes wsinspect for a forward proxy: it relays to its one upstream,
        # it opens no tunnels anywhere else (405 must say what is allowed: RFC 9110 §15.5.6).
        allow = ("Allow", "GET, HEAD, POST, PUT, PATCH, DELETE, OPTIONS")
        await refuse(Refusal(405, _NO_TUNNELS, (allow,)))
        publish()
        return False

    up_stream: trio.abc.Stream | None = None
    up = h11.Connection(h11.CLIENT)
    done = False
    try:
        # Connect and send the request head and body, then wait for the answer's head:
        # all of it bounded by the handshake timeout (504 after it).
        with trio.move_on_after(settings.handshake_timeout) as scope:
            reused = await kept.take(route)
            if reused is not None:
                up_stream, up = reused
            else:
                up_stream = await route.connect()
            headers = [
                (n, upstream.host_header if n.lower() == "host" else v)
                for n, v in request.headers
                if n.lower() not in drop
            ]
            if request.header("host") is None:  # HTTP/1.0 may omit it; HTTP/1.1 must send it
                headers.insert(0, ("Host", upstream.host_header))
            target = join_target(upstream.path, request.target)
            try:
                head = up.send(
                    h11.Request(
                        method=request.method.encode(),
                        target=target.encode("latin-1"),
                        headers=_enc(headers),
                    )
                )
            except h11.LocalProtocolError as exc:  # the client's request cannot be relayed
                raise _Failed(400, f"cannot relay this request: {exc}") from None
            await up_stream.send_all(head or b"")
            await _copy_request_body(hs.conn, client_stream, up, up_stream)
            response = await _next_event(up, up_stream, skip_informational=True)
        if scope.cancelled_caught:
            raise _Failed(504, f"upstream did not answer within {settings.handshake_timeout:g} s")
        if not isinstance(response, h11.Response):
            raise _Failed(502, "upstream closed the connection without a response")
        status = response.status_code
        out = [
            (n.decode("latin-1"), v.decode("latin-1"))
            for n, v in response.headers.raw_items()
            if n.lower().decode("latin-1") not in _DROP
        ]
        await client_stream.send_all(
            hs.conn.send(
                h11.Response(status_code=status, headers=_enc(out), reason=response.reason)
            )
            or b""
        )
        # Stream the body as it comes, without a time limit (long polls, event streams).
        assert up_stream is not None
        while True:
            event = await _next_event(up, up_stream)
            if isinstance(event, h11.Data):
                size += len(event.data)
                await client_stream.send_all(hs.conn.send(h11.Data(data=event.data)) or b"")
            elif isinstance(event, h11.EndOfMessage):
                await client_stream.send_all(hs.conn.send(h11.EndOfMessage()) or b"")
                break
            else:  # the upstream ended a close-delimited body
                if hs.conn.our_state is h11.SEND_BODY:
                    await client_stream.send_all(hs.conn.send(h11.EndOfMessage()) or b"")
                break
        done = True
    except (UpstreamError, _Failed) as exc:
        await refuse(exc.refusal)
    except h11.ProtocolError as exc:
        if status == 0:
            detail = str(exc).split(": bytearray(", 1)[0]
            await refuse(Refusal(502, f"upstream sent malformed HTTP: {detail}"))
    except (trio.BrokenResourceError, trio.ClosedResourceError, OSError) as exc:
        if status == 0:
            await refuse(Refusal(502, f"upstream connection failed: {exc}"))
    finally:
        if up_stream is not None:
            if done and up.our_state is h11.DONE and up.their_state is h11.DONE:
                kept.keep(route, up_stream, up)
            else:
                await trio.aclose_forcefully(up_stream)
    publish()
    if done and hs.can_keep_alive:
        return True
    with trio.move_on_after(1):
        try:
            if isinstance(client_stream, trio.abc.HalfCloseableStream):
                await client_stream.send_eof()
        except (trio.BrokenResourceError, trio.ClosedResourceError, OSError):
            pass
    return False


async def _copy_request_body(
    client: h11.Connection, client_stream: trio.abc.Stream,
    up: h11.Connection, up_stream: trio.abc.Stream,
) -> None:
    while True:
        try:
            event = client.next_event()
        except h11.RemoteProtocolError as exc:  # the client's fault: 400, not the upstream's 502
            detail = str(exc).split(": bytearray(", 1)[0]
            raise _Failed(400, f"malformed request body: {detail}") from None
        if event is h11.NEED_DATA:
            client.receive_data(bytes(await client_stream.receive_some(READ_SIZE)))
            continue
        if isinstance(event, h11.Data):
            await up_stream.send_all(up.send(h11.Data(data=event.data)) or b"")
        elif isinstance(event, h11.EndOfMessage):
            await up_stream.send_all(up.send(h11.EndOfMessage()) or b"")
            return
        else:
            raise _Failed(400, "the client closed the connection inside its request body")


async def _next_event(
    up: h11.Connection, stream: trio.abc.Stream, *, skip_informational: bool = False
) -> object:
    eof = False
    while True:
        try:
            event = up.next_event()
        except h11.RemoteProtocolError:
            if eof and skip_informational:  # h11 words an EOF before the answer as a state error
                raise _Failed(502, "upstream closed the connection without a response") from None
            raise
        if event is h11.NEED_DATA:
            data = bytes(await stream.receive_some(READ_SIZE))
            eof = not data
            up.receive_data(data)
            continue
        if skip_informational and isinstance(event, h11.InformationalResponse):
            continue
        return event
