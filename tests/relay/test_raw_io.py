"""The relay's raw socket paths: handshake I/O on file descriptors, the accept loop, the pumps'
read-first loop. Real loopback sockets; peers misbehave on purpose (pieces, slow reads, RST)."""

from __future__ import annotations

import socket

import pytest
import trio
from relay_helpers import (
    Proxy,
    StartProxy,
    raw_client,
    read_exactly,
    read_until,
    set_rst,
    start_raw_ws_server,
    upgrade_request,
)

from wsinspect.relay.server import ACCEPT_BURST
from wsinspect.relay.transport import receive_some, send_all
from wsinspect.wire.frames import encode_frame

pytestmark = pytest.mark.trio

MASK = b"\x01\x02\x03\x04"


async def socket_pair() -> tuple[trio.SocketStream, trio.SocketStream]:
    """Two ends of one loopback TCP connection, both plain ``SocketStream``s."""
    listener = (await trio.open_tcp_listeners(0, host="127.0.0.1"))[0]
    port = listener.socket.getsockname()[1]
    a = await trio.open_tcp_stream("127.0.0.1", port)
    b = await listener.accept()
    await listener.aclose()
    return a, b


async def test_handshake_read_waits_for_bytes_that_come_in_pieces() -> None:
    with trio.fail_after(10):
        a, b = await socket_pair()
        got = bytearray()
        async with trio.open_nursery() as nursery:

            async def drip() -> None:
                for piece in (b"GET / ", b"HTTP/1.1\r\n", b"\r\n"):
                    await trio.sleep(0.01)  # the reader finds nothing (EAGAIN) and waits
                    await a.send_all(piece)

            nursery.start_soon(drip)
            while len(got) < 18:
                got += await receive_some(b, 1024)
        assert bytes(got) == b"GET / HTTP/1.1\r\n\r\n"
        await a.aclose()
        assert await receive_some(b, 1024) == b""  # end of stream
        await b.aclose()


async def test_handshake_write_finishes_to_a_slow_reader() -> None:
    data = bytes(range(256)) * 16384  # 4 MiB: more than the socket buffers hold
    with trio.fail_after(20):
        a, b = await socket_pair()
        async with trio.open_nursery() as nursery:
            nursery.start_soon(send_all, a, data)  # partial writes, then waits for room
            got = await read_exactly(b, len(data))
        assert got == data
        await a.aclose()
        await b.aclose()


async def test_handshake_read_from_a_reset_peer_raises_oserror() -> None:
    with trio.fail_after(10):
        a, b = await socket_pair()
        set_rst(a)
        await a.aclose()
        with pytest.raises(ConnectionResetError):
            await receive_some(b, 1024)
        await b.aclose()


async def test_handshake_write_to_a_reset_peer_raises_oserror() -> None:
    with trio.fail_after(10):
        a, b = await socket_pair()
        set_rst(a)
        await a.aclose()
        with pytest.raises(OSError):
            for _ in range(100):  # the first write may still be accepted locally
                await send_all(b, b"x" * 65536)
        await b.aclose()


async def test_request_sent_one_byte_at_a_time_is_upgraded(
    nursery: trio.Nursery, start_proxy: StartProxy
) -> None:
    async def idle(stream: trio.SocketStream, head: bytes, rest: bytes) -> None:
        await trio.sleep_forever()

    with trio.fail_after(10):
        proxy = await start_proxy(await start_raw_ws_server(nursery, idle))
        client = await trio.open_tcp_stream("127.0.0.1", proxy.port)
        for i in upgrade_request("/drip"):
            await client.send_all(bytes([i]))
        head = await read_until(client, b"\r\n\r\n")
        assert head.startswith(b"HTTP/1.1 101 ")
        await client.aclose()


async def test_upstream_reset_before_its_101_is_answered_502(
    nursery: trio.Nursery, start_proxy: StartProxy
) -> None:
    async def reset(stream: trio.SocketStream) -> None:
        await read_until(stream, b"\r\n\r\n")
        set_rst(stream)
        await stream.aclose()

    listeners = await trio.open_tcp_listeners(0, host="127.0.0.1")
    port = listeners[0].socket.getsockname()[1]
    nursery.start_soon(trio.serve_listeners, reset, listeners)
    with trio.fail_after(10):
        proxy = await start_proxy(f"ws://127.0.0.1:{port}")
        client, head, _ = await raw_client(proxy.port)
        assert head.startswith(b"HTTP/1.1 502 ")
        await client.aclose()


async def test_client_reset_mid_request_leaves_the_proxy_serving(
    nursery: trio.Nursery, start_proxy: StartProxy
) -> None:
    async def idle(stream: trio.SocketStream, head: bytes, rest: bytes) -> None:
        await trio.sleep_forever()

    with trio.fail_after(10):
        proxy = await start_proxy(await start_raw_ws_server(nursery, idle))
        bad = await trio.open_tcp_stream("127.0.0.1", proxy.port)
        await bad.send_all(upgrade_request()[:20])
        set_rst(bad)
        await bad.aclose()
        client, head, _ = await raw_client(proxy.port)
        assert head.startswith(b"HTTP/1.1 101 ")
        await client.aclose()


async def test_a_burst_of_pending_connections_is_all_served(
    nursery: trio.Nursery, start_proxy: StartProxy
) -> None:
    async def idle(stream: trio.SocketStream, head: bytes, rest: bytes) -> None:
        await trio.sleep_forever()

    n = ACCEPT_BURST * 2 + 5  # more than one burst of accepts
    with trio.fail_after(30):
        proxy = await start_proxy(await start_raw_ws_server(nursery, idle))
        # Plain blocking connects: all of them wait in the listen backlog before the proxy's
        # accept loop runs again.
        socks = [socket.create_connection(("127.0.0.1", proxy.port)) for _ in range(n)]
        for s in socks:
            s.sendall(upgrade_request())
        streams = [trio.SocketStream(trio.socket.from_stdlib_socket(s)) for s in socks]
        for stream in streams:
            head = await read_until(stream, b"\r\n\r\n")
            assert head.startswith(b"HTTP/1.1 101 ")
        for stream in streams:
            await stream.aclose()


# Peers in their own processes (no GIL shared with the relay), on inherited descriptors.
FLOOD = """
import os, sys
fd, limit = int(sys.argv[1]), int(sys.argv[2])
chunk = bytes.fromhex(sys.argv[3]) * 4096
sent = 0
try:
    while sent < limit:
        sent += os.write(fd, chunk)
except OSError:
    pass
"""
DRAIN = """
import os, sys
fd = int(sys.argv[1])
try:
    while os.read(fd, 1 << 20):
        pass
except OSError:
    pass
"""


async def test_a_connection_that_always_has_data_does_not_starve_another(
    nursery: trio.Nursery, start_proxy: StartProxy
) -> None:
    """A writer and a reader in other processes keep one connection's pump always able to
    read and write without waiting (tiny frames make the pump slower than the writer); the
    other connection's round trip still completes while that flood runs."""
    import sys

    from wsinspect.wire.handshake import accept_key

    async def echo_one(stream: trio.SocketStream, head: bytes, rest: bytes) -> None:
        got = rest + await read_exactly(stream, 11 - len(rest))  # 2 + 4 (mask) + 5
        assert got[6:] == bytes(b ^ MASK[i % 4] for i, b in enumerate(b"hello"))
        await stream.send_all(encode_frame(1, b"hello"))
        await trio.sleep_forever()

    flood_listener = socket.create_server(("127.0.0.1", 0))
    flood_port = flood_listener.getsockname()[1]
    procs: list[trio.Process] = []
    with trio.fail_after(60):
        flooded: Proxy = await start_proxy(f"ws://127.0.0.1:{flood_port}", frames=False, messages=False)
        other = await start_proxy(await start_raw_ws_server(nursery, echo_one), frames=False, messages=False)
        csock = await trio.to_thread.run_sync(
            lambda: socket.create_connection(("127.0.0.1", flooded.port))
        )
        csock.sendall(upgrade_request())
        up, _ = await trio.to_thread.run_sync(flood_listener.accept)
        head = b""
        while b"\r\n\r\n" not in head:
            head += await trio.to_thread.run_sync(up.recv, 4096)
        key = next(line.split(b":", 1)[1].strip() for line in head.split(b"\r\n")
                   if line.lower().startswith(b"sec-websocket-key:"))
        up.sendall(b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n"
                   b"Connection: Upgrade\r\nSec-WebSocket-Accept: "
                   + accept_key(key.decode()).encode() + b"\r\n\r\n")
        frame = encode_frame(2, b"f" * 14).hex()
        try:
            for script, sock, args in ((DRAIN, csock, []), (FLOOD, up, [str(64 << 20), frame])):
                procs.append(await trio.lowlevel.open_process(
                    [sys.executable, "-c", script, str(sock.fileno()), *args], pass_fds=[sock.fileno()],
                ))
            writer = procs[1]

            def relayed() -> int:
                sessions = list(flooded.relay.sessions.values())
                return sessions[0].traffic.bytes["s2c"] if sessions else 0

            while relayed() < 1 << 20:  # noqa: ASYNC110 (a counter, no event to wait on)
                await trio.sleep(0.01)  # until the flood is under way
            client, head, rest = await raw_client(other.port)
            assert head.startswith(b"HTTP/1.1 101 ")
            await client.send_all(encode_frame(1, b"hello", mask_key=MASK))
            reply = rest + await read_exactly(client, 7 - len(rest))
            assert reply == encode_frame(1, b"hello")
            assert writer.poll() is None  # answered while the flood was still running
            await client.aclose()
        finally:
            for p in procs:
                p.kill()
                await p.wait()
            csock.close()
            up.close()
            flood_listener.close()
