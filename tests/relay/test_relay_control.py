"""Session actions, control commands and the extension points faults use."""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Sequence

import pytest
import trio
from relay_helpers import (
    StartProxy,
    echo,
    raw_client,
    read_exactly,
    read_to_eof,
    start_raw_ws_server,
    start_ws_server,
    upgrade_request,
)
from websockets.exceptions import ConnectionClosed as WsClosed
from websockets.trio.client import connect
from websockets.trio.server import ServerConnection

from wsinspect.events import ConnectionClosed, FrameSeen, HandshakeRejected
from wsinspect.relay.control import (
    BlackholeConnection,
    CloseConnection,
    ControlError,
    CutConnection,
    ListConnections,
)
from wsinspect.relay.hooks import FrameIn, HandshakeInfo, Hooks, Refusal
from wsinspect.relay.session import Session
from wsinspect.wire.frames import FrameParser, encode_frame

pytestmark = pytest.mark.trio

MASK = b"\x09\x08\x07\x06"


async def test_close_command_closes_both_real_peers_with_the_code(
    nursery: trio.Nursery, start_proxy: StartProxy
) -> None:
    server_saw: list[int | None] = []

    async def handler(ws: ServerConnection) -> None:
        try:
            async for message in ws:
                await ws.send(message)
        finally:
            server_saw.append(ws.close_code)

    with trio.fail_after(10):
        proxy = await start_proxy(await start_ws_server(nursery, handler, compression=None))
        async with connect(proxy.url(), proxy=None, compression=None) as ws:
            await ws.send("hi")
            await ws.recv()
            result = await proxy.relay.execute(CloseConnection(1, 4000, "maintenance"))
            assert "4000" in result
            with pytest.raises(WsClosed) as info:
                await ws.recv()
            assert info.value.rcvd is not None and info.value.rcvd.code == 4000
            assert info.value.rcvd.reason == "maintenance"
        closed = await proxy.sink.wait_for(ConnectionClosed)
        assert closed.initiator == "proxy" and closed.how == "closed-by-proxy"
        assert server_saw == [4000]
        assert proxy.relay.sessions == {}


async def test_cut_command_ends_both_tcp_connections_with_fin(
    nursery: trio.Nursery, start_proxy: StartProxy
) -> None:
    up_eof = trio.Event()

    async def server(stream: trio.SocketStream, head: bytes, rest: bytes) -> None:
        assert await read_to_eof(stream) == b""
        up_eof.set()

    with trio.fail_after(10):
        proxy = await start_proxy(await start_raw_ws_server(nursery, server))
        client, _, _ = await raw_client(proxy.port)
        await proxy.relay.execute(CutConnection(1))
        assert await read_to_eof(client) == b""
        await up_eof.wait()
        closed = await proxy.sink.wait_for(ConnectionClosed)
        assert (closed.initiator, closed.how) == ("proxy", "fin")


async def test_cut_with_rst_resets_the_client(nursery: trio.Nursery, start_proxy: StartProxy) -> None:
    async def server(stream: trio.SocketStream, head: bytes, rest: bytes) -> None:
        await trio.sleep_forever()

    with trio.fail_after(10):
        proxy = await start_proxy(await start_raw_ws_server(nursery, server))
        client, _, _ = await raw_client(proxy.port)
        await proxy.relay.execute(CutConnection(1, rst=True))
        with pytest.raises(trio.BrokenResourceError):
            await read_to_eof(client)
        assert (await proxy.sink.wait_for(ConnectionClosed)).how == "rst"


async def test_blackhole_stops_forwarding_and_marks_frames_not_delivered(
    nursery: trio.Nursery, start_proxy: StartProxy
) -> None:
    got: list[bytes] = []

    async def server(stream: trio.SocketStream, head: bytes, rest: bytes) -> None:
        while data := await stream.receive_some(1000):
            got.append(data)

    with trio.fail_after(10):
        proxy = await start_proxy(await start_raw_ws_server(nursery, server))
        client, _, _ = await raw_client(proxy.port)
        await proxy.relay.execute(BlackholeConnection(1))
        await client.send_all(encode_frame(1, b"into the void", mask_key=MASK))
        seen = await proxy.sink.wait_for(FrameSeen)
        assert not seen.delivered
        await trio.sleep(0.1)
        assert got == []
        assert 1 in proxy.relay.sessions  # both sockets stay open
        listing = await proxy.relay.execute(ListConnections())
        assert listing[0]["blackholed"] is True


async def test_unknown_connection_is_a_control_error(nursery: trio.Nursery, start_proxy: StartProxy) -> None:
    proxy = await start_proxy(await start_ws_server(nursery, echo))
    with pytest.raises(ControlError, match="#7"):
        await proxy.relay.execute(CutConnection(7))


async def test_a_frame_stage_can_drop_and_duplicate_whole_frames(
    nursery: trio.Nursery, start_proxy: StartProxy
) -> None:
    async def stage(item: FrameIn) -> Sequence[bytes]:
        if item.frame.payload == b"drop me":
            return []
        if item.frame.payload == b"twice":
            return [item.raw, item.raw]
        return [item.raw]

    attached = trio.Event()

    async def attach(session: Session) -> None:
        session.set_stage("c2s", stage)
        attached.set()

    a = encode_frame(1, b"drop me", mask_key=MASK)
    b = encode_frame(1, b"twice", mask_key=MASK)
    c = encode_frame(1, b"keep", mask_key=MASK)
    got: list[bytes] = []
    arrived = trio.Event()

    async def server(stream: trio.SocketStream, head: bytes, rest: bytes) -> None:
        got.append(await read_exactly(stream, 2 * len(b) + len(c)))
        arrived.set()
        await trio.sleep_forever()

    with trio.fail_after(10):
        proxy = await start_proxy(await start_raw_ws_server(nursery, server),
                                  hooks=Hooks(session_hooks=[attach]))
        client, _, _ = await raw_client(proxy.port)
        await attached.wait()  # the hook runs once the session starts
        await client.send_all(a + b + c)
        await arrived.wait()
        assert got == [b + b + c]
        dropped = await proxy.sink.wait_for(FrameSeen, lambda f: f.frame.payload == b"drop me")
        assert not dropped.delivered


async def test_a_handshake_gate_refuses_before_the_upstream_is_contacted(
    nursery: trio.Nursery, start_proxy: StartProxy
) -> None:
    contacted: list[bytes] = []

    async def server(stream: trio.SocketStream, head: bytes, rest: bytes) -> None:
        contacted.append(head)

    async def gate(info: HandshakeInfo) -> Refusal | None:
        if info.origin != "https://good.test":
            return Refusal(403, f"origin {info.origin} is not allowed", rule="allow-origin")
        return None

    with trio.fail_after(10):
        proxy = await start_proxy(await start_raw_ws_server(nursery, server),
                                  hooks=Hooks(gates=[gate]))
        stream = await trio.open_tcp_stream("127.0.0.1", proxy.port)
        await stream.send_all(upgrade_request(extra="Origin: https://evil.test\r\n"))
        answer = await read_to_eof(stream)
        assert answer.startswith(b"HTTP/1.1 403 ")
        assert b"origin https://evil.test is not allowed" in answer
        event = await proxy.sink.wait_for(HandshakeRejected)
        assert (event.status, event.rule, event.origin) == (403, "allow-origin", "https://evil.test")
        assert contacted == []


async def test_last_activity_times_track_data_and_control_frames(
    nursery: trio.Nursery, start_proxy: StartProxy
) -> None:
    async def server(stream: trio.SocketStream, head: bytes, rest: bytes) -> None:
        await trio.sleep_forever()

    with trio.fail_after(10):
        proxy = await start_proxy(await start_raw_ws_server(nursery, server))
        client, _, _ = await raw_client(proxy.port)
        session = proxy.relay.sessions[1]
        before_data, before_control = session.traffic.last_data, session.traffic.last_control
        await trio.sleep(0.02)
        await client.send_all(encode_frame(9, b"ping", mask_key=MASK))
        await proxy.sink.wait_for(FrameSeen)
        assert session.traffic.last_control > before_control and session.traffic.last_data == before_data


async def test_an_error_in_one_session_ends_only_that_session(
    nursery: trio.Nursery, start_proxy: StartProxy
) -> None:
    async def broken_hook(session: Session) -> None:
        if session.conn == 1:
            raise RuntimeError("a fault that went wrong")

    with trio.fail_after(10):
        upstream = await start_ws_server(nursery, echo, compression=None)
        proxy = await start_proxy(upstream, hooks=Hooks(session_hooks=[broken_hook]))
        async with connect(proxy.url(), proxy=None, compression=None) as first:
            closed = await proxy.sink.wait_for(ConnectionClosed)
            assert closed.conn == 1 and closed.how == "error"
            assert "a fault that went wrong" in (closed.detail or "")
            with pytest.raises(WsClosed):
                await first.recv()
        async with connect(proxy.url(), proxy=None, compression=None) as second:
            await second.send("still serving")
            assert await second.recv() == "still serving"


def _thread_upstream_answering_close_with_fin() -> tuple[int, Callable[[], None]]:
    """A blocking upstream in its own thread: it answers the handshake, then answers a close
    frame at once with its own close frame and a FIN, as fast as a real server can, racing
    the proxy's close frame toward the client."""
    import socket
    import threading

    from wsinspect.wire.handshake import accept_key

    listener = socket.create_server(("127.0.0.1", 0))
    listener.settimeout(10)

    def serve() -> None:
        while True:
            try:
                conn, _ = listener.accept()
            except OSError:
                return
            with conn:
                data = b""
                while b"\r\n\r\n" not in data:
                    data += conn.recv(4096)
                head, _, rest = data.partition(b"\r\n\r\n")
                key = next(line.split(b":", 1)[1].strip() for line in head.split(b"\r\n")
                           if line.lower().startswith(b"sec-websocket-key:"))
                conn.sendall(b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n"
                             b"Connection: Upgrade\r\nSec-WebSocket-Accept: "
                             + accept_key(key.decode()).encode() + b"\r\n\r\n")
                parser = FrameParser()
                frames = parser.feed(rest)
                while not any(f.opcode == 8 for f in frames):
                    chunk = conn.recv(4096)
                    if not chunk:
                        break
                    frames += parser.feed(chunk)
                conn.sendall(encode_frame(8, (4000).to_bytes(2, "big")))
                conn.shutdown(socket.SHUT_WR)

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    return listener.getsockname()[1], listener.close


async def test_a_proxy_close_reaches_the_client_even_when_the_upstream_answers_with_a_fin_at_once(
    start_proxy: StartProxy,
) -> None:
    port, stop = _thread_upstream_answering_close_with_fin()
    try:
        with trio.fail_after(20):
            proxy = await start_proxy(f"ws://127.0.0.1:{port}")
            for conn in range(1, 11):  # the race went wrong about one time in five
                stream, head, rest = await raw_client(proxy.port)
                assert head.startswith(b"HTTP/1.1 101")
                parser = FrameParser()
                frames = parser.feed(rest)
                async with trio.open_nursery() as nursery:
                    nursery.start_soon(proxy.relay.execute, CloseConnection(conn, 4000, ""))
                    while not frames and (chunk := await stream.receive_some(4096)):
                        frames += parser.feed(chunk)
                    if frames:  # answer like a real client, so the proxy need not wait
                        with contextlib.suppress(trio.BrokenResourceError):
                            await stream.send_all(encode_frame(8, (4000).to_bytes(2, "big"), mask_key=MASK))
                    frames += parser.feed(await read_to_eof(stream))
                # The client is owed the close frame; a bare FIN would read as 1006.
                assert [(f.opcode, f.close_code) for f in frames] == [(8, 4000)], conn
                await stream.aclose()
    finally:
        stop()
