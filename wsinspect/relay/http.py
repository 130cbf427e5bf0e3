"""Plain HTTP passthrough: a request without ``Upgrade: websocket`` goes to the upstream.

So a web app's page, scripts and API calls load through the proxy and its WebSocket follows.
One request per client connection (the response says ``Connection: close``); bodies are
streamed both ways through h11, which also re-frames them (chunked or Content-Length). Each
exchange is one ``HttpExchange`` event (method, path, status, response body size, time).
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING

import h11
import trio

from wsinspect.events import HttpExchange
from wsinspect.relay.upstream import UpstreamError, connect
from wsinspect.wire.handshake import ClientHandshake, UpgradeRequest, join_target
from wsinspect.wire.refusal import Refusal

if TYPE_CHECKING:
    from wsinspect.relay.server import Relay

__all__ = ["passthrough"]

READ_SIZE = 64 * 1024
# Hop-by-hop (RFC 9110 §7.6.1); framing headers are kept: h11 re-frames the body from them.
_DROP = frozenset({"connection", "keep-alive", "proxy-connection", "te", "trailer", "upgrade"})


def _enc(headers: list[tuple[str, str]]) -> list[tuple[bytes, bytes]]:
    return [(n.encode("latin-1"), v.encode("latin-1")) for n, v in headers]


_NO_TUNNELS = (
    "CONNECT is not supported: wsinspect is not a forward proxy; point the client at "
    "wsinspect's address directly and it relays to its upstream"
)


class _Failed(Exception):
    """An exchange that cannot go on: ``refusal`` is the client's answer."""

    def __init__(self, status: int, reason: str) -> None:
        super().__init__(reason)
        self.refusal = Refusal(status, reason)


async def passthrough(
    relay: Relay, conn: int, client_stream: trio.abc.Stream, hs: ClientHandshake,
    request: UpgradeRequest, client: str,
) -> None:
    """Forward ``request`` upstream and stream the answer back; publish one ``HttpExchange``."""
    settings = relay.settings
    upstream = settings.upstream
    assert upstream is not None
    started = trio.current_time()
    ts = time.time()
    status = 0
    size = 0

    def publish() -> None:
        relay.hub.publish(HttpExchange(conn, ts, client, request.method, request.target,
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
        return
    if request.method.upper() == "CONNECT":
        # A client that takes wsinspect for a forward proxy: it relays to its one upstream,
        # it opens no tunnels anywhere else (405 must say what is allowed: RFC 9110 §15.5.6).
        allow = ("Allow", "GET, HEAD, POST, PUT, PATCH, DELETE, OPTIONS")
        await refuse(Refusal(405, _NO_TUNNELS, (allow,)))
        publish()
        return

    up_stream: trio.abc.Stream | None = None
    up = h11.Connection(h11.CLIENT)
    try:
        # Connect and send the request head and body, then wait for the answer's head:
        # all of it bounded by the handshake timeout (504 after it).
        with trio.move_on_after(settings.handshake_timeout) as scope:
            up_stream = await connect(upstream.host, upstream.port, ssl_context=relay.upstream_ssl)
            headers = [
                (n, upstream.host_header if n.lower() == "host" else v)
                for n, v in request.headers
                if n.lower() not in _DROP
            ]
            if request.header("host") is None:  # HTTP/1.0 may omit it; HTTP/1.1 must send it
                headers.insert(0, ("Host", upstream.host_header))
            headers.append(("Connection", "close"))
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
        out.append(("Connection", "close"))
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
            await trio.aclose_forcefully(up_stream)
    publish()
    with trio.move_on_after(1):
        try:
            if isinstance(client_stream, trio.abc.HalfCloseableStream):
                await client_stream.send_eof()
        except (trio.BrokenResourceError, trio.ClosedResourceError, OSError):
            pass


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
