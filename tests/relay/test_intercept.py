"""Breakpoints, held messages and injection through a running proxy, with real peers
(``websockets`` on both ends) and raw sockets where the exact bits matter."""

from __future__ import annotations

import re
from typing import Any

import pytest
import trio
from loopback import echo, start_ws_server
from relay_helpers import RawReceiver, StartProxy, raw_client, start_raw_ws_server
from websockets.exceptions import ConnectionClosed as WsClosed
from websockets.trio.client import connect
from websockets.trio.server import ServerConnection

from wsinspect.events import ConnectionClosed, ConnectionOpened, FrameSeen, MessageAction
from wsinspect.intercept.breakpoints import parse_breakpoint
from wsinspect.intercept.commands import (
    AddBreakpoint,
    ClearBreakpoints,
    DropHeld,
    ListHeld,
    ResumeHeld,
    SendMessage,
)
from wsinspect.relay.control import ControlError, CutConnection
from wsinspect.wire.frames import FrameParser, encode_frame

pytestmark = pytest.mark.trio


def armed(*specs: str) -> dict[str, Any]:
    return {"breakpoints": tuple(parse_breakpoint(s) for s in specs)}


async def held_ids(proxy: Any, n: int = 1) -> list[int]:
    """Wait until ``n`` messages are held; their ids."""
    while True:
        held = await proxy.relay.execute(ListHeld())
        if len(held) >= n:
            return [h["id"] for h in held]
        await trio.sleep(0.005)


async def test_a_matching_message_is_held_until_resumed_and_then_goes_as_it_came(
    nursery: trio.Nursery, start_proxy: StartProxy
) -> None:
    with trio.fail_after(10):
        proxy = await start_proxy(await start_ws_server(nursery, echo), **armed("dir=c2s,match=^order"))
        async with connect(proxy.url(), proxy=None, compression=None) as ws:
            await ws.send("hello")
            assert await ws.recv() == "hello"  # not matched: no wait
            await ws.send("order 42")
            [ident] = await held_ids(proxy)
            held = (await proxy.relay.execute(ListHeld()))[0]
            assert held["conn"] == 1 and held["dir"] == "c2s" and held["preview"] == "order 42"
            with trio.move_on_after(0.2):
                await ws.recv()
                pytest.fail("a held message reached the upstream")
            assert await proxy.relay.execute(ResumeHeld(ident)) == f"held message {ident} resumed"
            assert await ws.recv() == "order 42"
    actions = [(e.action, e.held, e.by) for e in proxy.sink.of(MessageAction)]
    assert actions == [("held", ident, "breakpoint 1"), ("resumed", ident, "ctl")]
    frames = [e for e in proxy.sink.of(FrameSeen) if e.direction == "c2s" and e.frame.opcode == 1]
    assert [(e.frame.payload, e.delivered, e.written) for e in frames] == [
        (b"hello", True, None), (b"order 42", True, None)]


async def test_everything_behind_a_held_message_waits_and_the_other_direction_flows(
    nursery: trio.Nursery, start_proxy: StartProxy
) -> None:
    got: list[str | bytes] = []

    async def server(ws: ServerConnection) -> None:
        async for message in ws:
            got.append(message)
            await ws.send(f"ack {message!s}")

    with trio.fail_after(10):
        proxy = await start_proxy(await start_ws_server(nursery, server), **armed("dir=c2s,text=stop"))
        async with connect(proxy.url(), proxy=None, compression=None) as ws:
            await ws.send("first")
            assert await ws.recv() == "ack first"
            await ws.send("stop here")
            await held_ids(proxy)
            await ws.send("behind 1")
            await ws.ping(b"p")
            await ws.send("behind 2")
            await trio.sleep(0.1)
            assert got == ["first"]  # all of it waits behind the held message
            # The other direction keeps flowing: the proxy injects toward the client.
            assert await proxy.relay.execute(SendMessage(1, "client", "text", b"from proxy"))
            assert await ws.recv() == "from proxy"
            await proxy.relay.execute(ResumeHeld(all=True))
            assert [await ws.recv() for _ in range(3)] == ["ack stop here", "ack behind 1",
                                                             "ack behind 2"]
    assert got == ["first", "stop here", "behind 1", "behind 2"]


async def test_edit_and_drop_in_both_directions(
    nursery: trio.Nursery, start_proxy: StartProxy
) -> None:
    got: list[str | bytes] = []

    async def server(ws: ServerConnection) -> None:
        async for message in ws:
            got.append(message)
            if message == "push":
                await ws.send("secret")
                await ws.send(b"\x00\x01")
                await ws.send("public")

    with trio.fail_after(10):
        proxy = await start_proxy(await start_ws_server(nursery, server),
                                  **armed("dir=c2s,match=^buy", "dir=s2c,op=binary"))
        async with connect(proxy.url(), proxy=None, compression=None) as ws:
            await ws.send("buy 1")
            [first] = await held_ids(proxy)
            await proxy.relay.execute(ResumeHeld(first, b"buy 100"))
            await ws.send("buy 2")
            [second] = await held_ids(proxy)
            await proxy.relay.execute(DropHeld(second))
            await ws.send("push")
            [third] = await held_ids(proxy)  # the binary message, from the server
            await proxy.relay.execute(ResumeHeld(third, b"\xff"))
            assert [await ws.recv() for _ in range(3)] == ["secret", b"\xff", "public"]
    assert got == ["buy 100", "push"]
    edits = [e for e in proxy.sink.of(MessageAction) if e.action == "edited"]
    assert [(e.direction, e.original, e.payload) for e in edits] == [
        ("c2s", b"buy 1", b"buy 100"), ("s2c", b"\x00\x01", b"\xff")]
    written = [e for e in proxy.sink.of(FrameSeen) if e.written]
    assert [(e.direction, e.written, e.frame.payload, e.frame.masked) for e in written] == [
        ("c2s", "edited", b"buy 100", True), ("s2c", "edited", b"\xff", False)]
    undelivered = [e.frame.payload for e in proxy.sink.of(FrameSeen) if not e.delivered]
    assert undelivered == [b"buy 1", b"buy 2", b"\x00\x01"]


async def test_a_held_fragmented_message_resumed_as_is_is_byte_exact(
    nursery: trio.Nursery, start_proxy: StartProxy
) -> None:
    sent = b"".join([
        encode_frame(1, b"order ", fin=False, mask_key=b"\x01\x02\x03\x04"),
        encode_frame(9, b"between", mask_key=b"\xaa\xbb\xcc\xdd"),
        encode_frame(0, b"99", rsv2=True, mask_key=b"\x00\x00\x00\x00"),
    ])
    upstream = RawReceiver(len(sent))
    with trio.fail_after(10):
        proxy = await start_proxy(await start_raw_ws_server(nursery, upstream.serve),
                                  **armed("re:^order"))
        stream, _, _ = await raw_client(proxy.port)
        for i in range(0, len(sent), 5):
            await stream.send_all(sent[i : i + 5])
        [ident] = await held_ids(proxy)
        held = (await proxy.relay.execute(ListHeld()))[0]
        assert held["preview"] == "order 99"
        assert not upstream.done.is_set()
        await proxy.relay.execute(ResumeHeld(ident))
        await upstream.done.wait()
    assert upstream.got == sent


@pytest.mark.parametrize("spec", ["re:^never-matches", "dir=s2c,op=binary", "#99"])
async def test_breakpoints_that_match_nothing_leave_the_bytes_alone(
    nursery: trio.Nursery, start_proxy: StartProxy, spec: str
) -> None:
    from test_relay_fidelity import _client_bytes

    sent = _client_bytes()
    upstream = RawReceiver(len(sent))
    with trio.fail_after(10):
        proxy = await start_proxy(await start_raw_ws_server(nursery, upstream.serve), **armed(spec))
        stream, _, _ = await raw_client(proxy.port)
        for i in range(0, len(sent), 7):
            await stream.send_all(sent[i : i + 7])
        await upstream.done.wait()
    assert upstream.got == sent
    assert not proxy.sink.of(MessageAction)


async def test_an_injected_data_message_waits_for_the_message_under_way(
    nursery: trio.Nursery, start_proxy: StartProxy
) -> None:
    first = encode_frame(1, b"part one ", fin=False, mask_key=b"\x01\x02\x03\x04")
    last = encode_frame(0, b"part two", mask_key=b"\x05\x06\x07\x08")
    received = bytearray()
    changed = trio.Event()

    async def server(stream: trio.SocketStream, head: bytes, rest: bytes) -> None:
        nonlocal changed
        received.extend(rest)
        while True:
            data = await stream.receive_some()
            if not data:
                return
            received.extend(data)
            changed.set()
            changed = trio.Event()

    with trio.fail_after(10):
        proxy = await start_proxy(await start_raw_ws_server(nursery, server))
        stream, _, _ = await raw_client(proxy.port)
        await stream.send_all(first)
        while len(received) < len(first):
            await changed.wait()
        sent_now = await proxy.relay.execute(SendMessage(1, "upstream", "text", b"injected"))
        assert "waits for the message under way" in sent_now
        # A ping may go between the fragments (RFC 6455 §5.4); the data message may not.
        await proxy.relay.execute(SendMessage(1, "upstream", "ping", b"p"))
        await trio.sleep(0.05)
        await stream.send_all(last)
        while True:
            frames = FrameParser().feed(bytes(received))
            if len(frames) == 4:
                break
            await changed.wait()
    assert [(f.opcode, f.payload, f.fin) for f in frames] == [
        (1, b"part one ", False), (9, b"p", True), (0, b"part two", True), (1, b"injected", True)]
    # Toward the upstream the proxy masks with a fresh key; the client's frames keep theirs.
    assert frames[0].mask_key == b"\x01\x02\x03\x04" and frames[2].mask_key == b"\x05\x06\x07\x08"
    assert frames[1].masked and frames[3].masked and not frames[3].rsv1
    assert bytes(received[: len(first)]) == first


async def test_injecting_to_both_sides_and_a_close(
    nursery: trio.Nursery, start_proxy: StartProxy
) -> None:
    got: list[str | bytes] = []
    closed: list[tuple[int | None, str | None]] = []
    first = trio.Event()
    ended = trio.Event()

    async def server(ws: ServerConnection) -> None:
        try:
            async for message in ws:
                got.append(message)
                first.set()
        finally:
            closed.append((ws.close_code, ws.close_reason))
            ended.set()

    with trio.fail_after(10):
        proxy = await start_proxy(await start_ws_server(nursery, server))
        async with connect(proxy.url(), proxy=None, compression=None) as ws:
            await ws.send("hi")
            await first.wait()
            await proxy.relay.execute(SendMessage(1, "upstream", "binary", b"\x00bin"))
            await proxy.relay.execute(SendMessage(1, "client", "text", b"hello client"))
            assert await ws.recv() == "hello client"
            await proxy.relay.execute(SendMessage(1, "upstream", "close", code=4000, reason="bye"))
            with pytest.raises(WsClosed):
                await ws.recv()
            await ended.wait()
    assert got == ["hi", b"\x00bin"]
    assert closed == [(4000, "bye")]
    injected = [(e.direction, e.opcode, e.by) for e in proxy.sink.of(MessageAction)]
    assert injected == [("c2s", 2, "ctl"), ("s2c", 1, "ctl"), ("c2s", 8, "ctl")]


async def test_bad_requests_get_a_clear_answer_and_change_nothing(
    nursery: trio.Nursery, start_proxy: StartProxy
) -> None:
    with trio.fail_after(10):
        proxy = await start_proxy(await start_ws_server(nursery, echo))
        execute = proxy.relay.execute
        async with connect(proxy.url(), proxy=None, compression=None) as ws:
            await ws.send("x")
            await ws.recv()
            cases = [
                (AddBreakpoint("dir=sideways"), "a direction is c2s or s2c"),
                (AddBreakpoint("match=(("), "missing )"),
                (AddBreakpoint("colour=red"), "unknown key 'colour'"),
                (ResumeHeld(7), "no held message 7"),
                (DropHeld(7), "no held message 7"),
                (ClearBreakpoints(3), "no breakpoint 3"),
                (SendMessage(9, "client", "text", b"x"), "no open connection #9"),
                (SendMessage(1, "client", "close", code=1005), "may not be sent"),
                (SendMessage(1, "client", "close", code=1006), "may not be sent"),
                (SendMessage(1, "client", "close", code=70000), "may not be sent"),
                (SendMessage(1, "client", "ping", b"x" * 126), "at most 125 bytes"),
                (SendMessage(1, "client", "text", b"\xff"), "must be UTF-8"),
                (SendMessage(1, "sideways", "text", b"x"), "upstream or client"),
            ]
            for command, why in cases:
                with pytest.raises(ControlError, match=re.escape(why)):
                    await execute(command)
            await ws.send("still fine")
            assert await ws.recv() == "still fine"
    assert not proxy.sink.of(MessageAction)


@pytest.mark.parametrize("takeover", [True, False], ids=["context-takeover", "no-takeover"])
async def test_compressed_connections_stay_in_sync_after_edits_drops_and_injections(
    nursery: trio.Nursery, start_proxy: StartProxy, takeover: bool
) -> None:
    """Real websockets peers on both ends, permessage-deflate negotiated: they fail loudly on
    a desynchronised stream. Repetitive messages make the sender refer back to earlier ones."""
    from websockets.extensions.permessage_deflate import (
        ClientPerMessageDeflateFactory,
        ServerPerMessageDeflateFactory,
    )

    got: list[str | bytes] = []

    async def server(ws: ServerConnection) -> None:
        async for message in ws:
            got.append(message)
            await ws.send(f"echo {message!s} " * 3)

    client_ext = [ClientPerMessageDeflateFactory(
        client_no_context_takeover=not takeover, server_no_context_takeover=not takeover)]
    server_ext = [ServerPerMessageDeflateFactory()]
    base = "the quick brown fox jumps over the lazy dog "
    with trio.fail_after(10):
        upstream = await start_ws_server(nursery, server, extensions=server_ext)
        proxy = await start_proxy(upstream, **armed("match=edit-me|drop-me"))
        async with connect(proxy.url(), proxy=None, extensions=client_ext) as ws:
            await ws.send(base + "1")
            assert await ws.recv() == f"echo {base}1 " * 3
            await ws.send(base + "edit-me")
            [ident] = await held_ids(proxy)
            await proxy.relay.execute(ResumeHeld(ident, (base + "edited").encode()))
            assert await ws.recv() == f"echo {base}edited " * 3
            await ws.send(base + "drop-me")
            [ident] = await held_ids(proxy)
            await proxy.relay.execute(DropHeld(ident))
            await proxy.relay.execute(SendMessage(1, "upstream", "text", (base + "injected").encode()))
            assert await ws.recv() == f"echo {base}injected " * 3
            await proxy.relay.execute(SendMessage(1, "client", "text", (base + "to client").encode()))
            assert await ws.recv() == base + "to client"
            for i in range(5):  # later messages refer back to what the receiver never saw
                await ws.send(base + "edit-me"[:4] + f" {i}")
                assert await ws.recv() == f"echo {base}edit {i} " * 3
    assert got == [base + "1", base + "edited", base + "injected",
                   *[base + f"edit {i}" for i in range(5)]]
    [opened] = proxy.sink.of(ConnectionOpened)
    assert "permessage-deflate" in (opened.extensions or "")
    recompressed = [e for e in proxy.sink.of(FrameSeen) if e.written == "recompressed"]
    assert bool(recompressed) == takeover  # only context takeover needs the proxy to compress
    assert all(e.frame.rsv1 for e in recompressed)


async def test_a_held_message_of_a_connection_that_ends_is_dropped_and_said_so(
    nursery: trio.Nursery, start_proxy: StartProxy
) -> None:
    with trio.fail_after(10):
        proxy = await start_proxy(await start_ws_server(nursery, echo), **armed("text=held"))
        async with connect(proxy.url(), proxy=None, compression=None) as ws:
            await ws.send("held forever")
            [ident] = await held_ids(proxy)
            # (a close from the client would wait behind the held message: the proxy ends it)
            await proxy.relay.execute(CutConnection(1))
        await proxy.sink.wait_for(MessageAction, lambda e: e.action == "dropped")
        await proxy.sink.wait_for(ConnectionClosed)
    assert await proxy.relay.execute(ListHeld()) == []
    actions = [(e.action, e.held, e.by) for e in proxy.sink.of(MessageAction)]
    assert actions == [("held", ident, "breakpoint 1"), ("dropped", ident, "connection ended")]
    [frame] = [e for e in proxy.sink.of(FrameSeen) if e.frame.opcode == 1]
    assert not frame.delivered


@pytest.mark.parametrize("fault", ["drop:dir=c2s,match=^drop", "duplicate:dir=c2s,match=^dup"])
async def test_drop_and_duplicate_faults_keep_a_compressed_stream_in_sync(
    nursery: trio.Nursery, start_proxy: StartProxy, fault: str
) -> None:
    """Under context takeover a dropped or doubled compressed message would break the
    receiver's decompressor (websockets fails loudly): the proxy keeps it valid."""
    from wsinspect.faults.spec import parse_fault

    got: list[str | bytes] = []
    ended = trio.Event()

    async def server(ws: ServerConnection) -> None:
        async for message in ws:
            got.append(message)
            if message == "end":
                ended.set()

    base = "the same words again and again so that deflate refers back "
    with trio.fail_after(10):
        upstream = await start_ws_server(nursery, server, compression="deflate")
        proxy = await start_proxy(upstream, faults=(parse_fault(fault),))
        async with connect(proxy.url(), proxy=None, compression="deflate") as ws:
            await ws.send(base + "first")
            await ws.send("drop " + base if "drop" in fault else "dup " + base)
            for i in range(4):
                await ws.send(base + f"later {i}")
            # The fault still reads the text of what the proxy now compresses itself.
            await ws.send("drop " + base + "again" if "drop" in fault else base + "last")
            await ws.send("end")
            await ended.wait()
    later = [base + f"later {i}" for i in range(4)]
    if "drop" in fault:
        assert got == [base + "first", *later, "end"]
        assert any(e.written == "recompressed" for e in proxy.sink.of(FrameSeen))
    else:
        assert got == [base + "first", "dup " + base, "dup " + base, *later, base + "last", "end"]


async def test_trio_websocket_peers_see_edits_and_injections(
    nursery: trio.Nursery, start_proxy: StartProxy
) -> None:
    """Another library on both ends (trio-websocket, wsproto inside): what the proxy writes is
    a valid frame to it as well, in both directions."""
    from trio_websocket import ConnectionClosed as TwsClosed
    from trio_websocket import open_websocket_url, serve_websocket

    async def handler(request: Any) -> None:
        ws = await request.accept()
        try:
            while True:
                message = await ws.get_message()
                await ws.send_message(f"echo {message}")
        except TwsClosed:
            pass

    server = await nursery.start(serve_websocket, handler, "127.0.0.1", 0, None)
    upstream = f"ws://127.0.0.1:{server.port}"
    with trio.fail_after(10):
        proxy = await start_proxy(upstream, **armed("dir=s2c,match=^echo hold"))
        async with open_websocket_url(proxy.url()) as ws:
            await ws.send_message("hold")
            [ident] = await held_ids(proxy)
            await proxy.relay.execute(ResumeHeld(ident, b"echo edited"))
            assert await ws.get_message() == "echo edited"
            await proxy.relay.execute(SendMessage(1, "client", "text", b"injected"))
            assert await ws.get_message() == "injected"
            await proxy.relay.execute(SendMessage(1, "upstream", "text", b"from the proxy"))
            assert await ws.get_message() == "echo from the proxy"
            await proxy.relay.execute(SendMessage(1, "upstream", "ping", b"p"))
            await ws.send_message("after the ping")
            assert await ws.get_message() == "echo after the ping"
