"""The demo's own server: the web page over HTTP and a WebSocket echo endpoint, on one port.

``GET /`` answers the page (its script connects to the proxy, whose URL the page is given);
``GET /echo`` with ``Upgrade: websocket`` is a WebSocket echo server (RFC 6455): every data
frame is sent back with the same opcode and FIN bit (so fragmented messages come back
fragmented), pings are answered with pongs (§5.5.2), and a close frame is answered with a close
frame carrying the same code (§5.5.1, §7.4). HTTP parsing is h11's, frames are
``wsinspect.wire.frames``'; nothing here goes through the relay.

It accepts permessage-deflate (RFC 7692) when the offer lets it echo compressed frames as they
came, RSV1 included, without a compressor of its own: the client inflates the server's stream,
which is then exactly the stream its own deflater produced, so the LZ77 contexts stay in step.
That holds when the server's side is unconstrained (no ``server_no_context_takeover``, no
``server_max_window_bits``: the client's inflater keeps a 15-bit window, the most its deflater
can use), which is the offer browsers make (``permessage-deflate; client_max_window_bits``).
So the demo shows what a browser session really looks like: compressed frames, inflated
messages.
"""

from __future__ import annotations

import contextlib
import json
from dataclasses import dataclass
from importlib import resources

import h11
import trio

from wsinspect.wire.deflate import ExtensionError, parse_extensions
from wsinspect.wire.frames import FrameParser, Opcode, encode_frame
from wsinspect.wire.handshake import accept_key

__all__ = ["DemoServer", "accept_deflate", "serve_demo"]

ECHO_PATH = "/echo"
MAX_REQUEST = 64 * 1024
# The largest frame echoed; a longer one is answered with close 1009 (RFC 6455 §7.4.1) rather
# than echoed cut short (the parser keeps at most this much of a payload).
MAX_FRAME = 16 * 1024 * 1024
# The offer parameters that let the echo return compressed frames unchanged (see above).
_ECHOABLE_DEFLATE_PARAMS = {"client_max_window_bits", "client_no_context_takeover"}


@dataclass
class DemoServer:
    """The running demo server: ``address`` is where it listens; ``ws_url`` is what the page's
    script connects to (the proxy), set once the proxy is listening."""

    address: tuple[str, int]
    ws_url: str = ""

    @property
    def url(self) -> str:
        host, port = self.address
        return f"http://{host}:{port}/"

    @property
    def upstream_url(self) -> str:
        """The echo endpoint as the proxy's upstream."""
        host, port = self.address
        return f"ws://{host}:{port}"


def page(ws_url: str) -> bytes:
    """The demo page with the WebSocket URL filled in (as a JSON string literal, so no URL can
    break out of the script)."""
    template = resources.files("wsinspect.demo").joinpath("page.html").read_text("utf-8")
    literal = json.dumps(ws_url).replace("<", "\\u003c")
    return template.replace("__WS_URL__", literal).encode("utf-8")


async def _send(
    stream: trio.SocketStream,
    conn: h11.Connection,
    *events: h11.InformationalResponse | h11.Response | h11.Data | h11.EndOfMessage,
) -> None:
    for event in events:
        data = conn.send(event)
        if data:
            await stream.send_all(data)


def accept_deflate(offer: str | None) -> str | None:
    """The ``Sec-WebSocket-Extensions`` answer to a client's offer: ``permessage-deflate`` when
    one of its permessage-deflate offers can be echoed unchanged (RFC 7692 §5.1: the server
    picks one offer; answering without parameters means a 15-bit window and context takeover
    from the server), else ``None`` (no extension, §9.1)."""
    if not offer:
        return None
    try:
        offers = parse_extensions(offer)
    except ExtensionError:
        return None
    for name, params in offers:
        keys = [key for key, _ in params]
        if (name == "permessage-deflate" and len(set(keys)) == len(keys)
                and set(keys) <= _ECHOABLE_DEFLATE_PARAMS):
            return "permessage-deflate"
    return None


async def _echo(stream: trio.SocketStream, data: bytes, *, deflate: bool = False) -> None:
    """Echo frames until a close frame has been answered or the peer goes away. With
    ``deflate`` negotiated, RSV1 (a compressed message, RFC 7692 §6) is echoed too."""
    parser = FrameParser(capture_limit=MAX_FRAME)
    while True:
        for frame in parser.feed(data):
            if frame.truncated:
                await stream.send_all(encode_frame(Opcode.CLOSE, b"\x03\xf1frame too big to echo"))
                return
            if frame.opcode in (Opcode.TEXT, Opcode.BINARY, Opcode.CONTINUATION):
                rsv1 = deflate and frame.rsv1
                await stream.send_all(
                    encode_frame(frame.opcode, frame.payload, fin=frame.fin, rsv1=rsv1)
                )
            elif frame.opcode == Opcode.PING:
                await stream.send_all(encode_frame(Opcode.PONG, frame.payload))
            elif frame.opcode == Opcode.CLOSE:
                # Echo the status code (no code → empty close, §5.5.1); then the server closes
                # the TCP connection first (§7.1.1).
                body = frame.payload[:2] if len(frame.payload) >= 2 else b""
                await stream.send_all(encode_frame(Opcode.CLOSE, body))
                return
        data = bytes(await stream.receive_some(65536))
        if not data:
            return


async def _handle(stream: trio.SocketStream, server: DemoServer) -> None:
    conn = h11.Connection(h11.SERVER, max_incomplete_event_size=MAX_REQUEST)
    async with stream:
        while True:
            event = conn.next_event()
            if event is h11.NEED_DATA:
                data = bytes(await stream.receive_some(65536))
                conn.receive_data(data)
                if not data and conn.their_state is not h11.DONE:
                    return
                continue
            if isinstance(event, h11.Request):
                break
            return
        headers = {name.decode("latin-1").lower(): value.decode("latin-1") for name, value in event.headers}
        target = event.target.decode("latin-1").split("?")[0]
        upgrade = headers.get("upgrade", "").lower() == "websocket"
        if upgrade and target == ECHO_PATH and "sec-websocket-key" in headers:
            answer = [
                ("Upgrade", "websocket"),
                ("Connection", "Upgrade"),
                ("Sec-WebSocket-Accept", accept_key(headers["sec-websocket-key"])),
            ]
            # The offer may come in several header lines (RFC 6455 §9.1): one list.
            offer = ", ".join(v.decode("latin-1") for n, v in event.headers
                              if n.lower() == b"sec-websocket-extensions")
            deflate = accept_deflate(offer)
            if deflate is not None:
                answer.append(("Sec-WebSocket-Extensions", deflate))
            await _send(stream, conn, h11.InformationalResponse(status_code=101, headers=answer))
            trailing, _ = conn.trailing_data
            await _echo(stream, bytes(trailing), deflate=deflate is not None)
            return
        if event.method == b"GET" and target in ("/", "/index.html"):
            status, ctype, body = 200, "text/html; charset=utf-8", page(server.ws_url)
        else:
            status, ctype, body = 404, "text/plain; charset=utf-8", b"not found\n"
        await _send(
            stream,
            conn,
            h11.Response(
                status_code=status,
                headers=[
                    ("Content-Type", ctype),
                    ("Content-Length", str(len(body))),
                    ("Cache-Control", "no-store"),
                    ("Connection", "close"),
                ],
            ),
            h11.Data(data=body),
            h11.EndOfMessage(),
        )


async def _handle_safely(stream: trio.SocketStream, server: DemoServer) -> None:
    # A browser that goes away mid-request must not take the demo down.
    with contextlib.suppress(trio.BrokenResourceError, trio.ClosedResourceError, h11.ProtocolError):
        await _handle(stream, server)


async def serve_demo(host: str = "127.0.0.1", port: int = 0, *,
                     task_status: trio.TaskStatus[DemoServer] = trio.TASK_STATUS_IGNORED) -> None:
    """Serve the page and the echo endpoint on ``host:port`` until cancelled; hands the
    ``DemoServer`` (with the bound port) to ``task_status.started``."""
    listeners = await trio.open_tcp_listeners(port, host=host)
    sockname = listeners[0].socket.getsockname()
    server = DemoServer((host, sockname[1]))
    async with trio.open_nursery() as nursery:
        task_status.started(server)

        async def handler(stream: trio.SocketStream) -> None:
            await _handle_safely(stream, server)

        await trio.serve_listeners(handler, listeners, handler_nursery=nursery)
