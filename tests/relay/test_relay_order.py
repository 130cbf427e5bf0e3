"""Events keep the order in which the proxy received the frames, whatever the sends do."""

from __future__ import annotations

import json

import pytest
import trio
import trio.testing
from relay_helpers import Collector, StartProxy, raw_client, read_exactly, start_raw_ws_server

from wsinspect.events import FrameSeen, Notice
from wsinspect.hub import Hub
from wsinspect.relay.hooks import Hooks
from wsinspect.relay.observers import LINES_AVAILABLE
from wsinspect.relay.session import Session
from wsinspect.wire.frames import encode_frame

pytestmark = pytest.mark.trio

MASK = b"\x01\x02\x03\x04"


class HeldSend(trio.abc.Stream):
    """Passes bytes on at once, then holds the sender until ``release`` is set: a send that
    is still under way (a full socket buffer) while the peer already has the bytes."""

    def __init__(self, inner: trio.abc.Stream, release: trio.Event) -> None:
        self.inner = inner
        self.release = release

    async def send_all(self, data: bytes | bytearray | memoryview) -> None:
        await self.inner.send_all(data)
        await self.release.wait()

    async def wait_send_all_might_not_block(self) -> None:
        await self.inner.wait_send_all_might_not_block()

    async def receive_some(self, max_bytes: int | None = None) -> bytes | bytearray:
        return await self.inner.receive_some(max_bytes)

    async def aclose(self) -> None:
        await self.inner.aclose()


async def test_a_reply_is_never_logged_before_the_request_it_answers(
    nursery: trio.Nursery, start_proxy: StartProxy
) -> None:
    release = trio.Event()

    class HoldRequests:
        def setup(self, session: Session) -> None:
            session.wrap_sender("c2s", lambda inner: HeldSend(inner, release))

        async def __call__(self, session: Session) -> None:
            await trio.sleep_forever()

    request = encode_frame(1, b"request", mask_key=MASK)
    reply = encode_frame(1, b"reply")

    async def upstream(stream: trio.SocketStream, head: bytes, rest: bytes) -> None:
        got = rest + await read_exactly(stream, len(request) - len(rest))
        assert got == request
        await stream.send_all(reply)  # answers at once, while the proxy's send is under way
        await trio.sleep_forever()

    with trio.fail_after(10):
        hooks = Hooks(session_hooks=[HoldRequests()])
        proxy = await start_proxy(await start_raw_ws_server(nursery, upstream), hooks=hooks)
        client, _, _ = await raw_client(proxy.port)
        await client.send_all(request)
        assert await read_exactly(client, len(reply)) == reply
        await proxy.sink.wait_for(FrameSeen, lambda e: e.direction == "s2c")
        release.set()
        await proxy.sink.wait_for(FrameSeen, lambda e: e.direction == "c2s")
    seen = proxy.sink.of(FrameSeen)
    assert [(e.seq, e.direction, e.frame.payload) for e in seen] == [
        (1, "c2s", b"request"),
        (2, "s2c", b"reply"),
    ]


class LineCollector(Collector):
    """A sink that also takes recording lines: the recording tier writes the frames."""

    def __init__(self) -> None:
        super().__init__()
        self.lines: list[dict] = []

    def publish_lines(self, lines: bytes, count: int) -> None:
        self.lines += [json.loads(line) for line in lines.splitlines()]


@pytest.mark.parametrize("tier", ["full", "recording"])
async def test_frames_whose_send_failed_are_said_not_delivered(tier: str) -> None:
    hub = Hub()
    sink = Collector() if tier == "full" else LineCollector()
    hub.subscribe(sink)
    assert (hub.line_sink is not None) == (tier == "recording")
    _client_end, proxy_client_side = trio.testing.lockstep_stream_pair()
    proxy_upstream_side, upstream_end = trio.testing.lockstep_stream_pair()
    await upstream_end.aclose()  # the upstream is gone before anything is forwarded
    session = Session(hub, 7, proxy_client_side, proxy_upstream_side)
    first = encode_frame(1, b"one", mask_key=MASK) + encode_frame(1, b"two", mask_key=MASK)
    with trio.fail_after(5):
        await session.run(client_first=first)
    if isinstance(sink, LineCollector) and LINES_AVAILABLE:
        seqs = [line["seq"] for line in sink.lines if line["type"] == "frame"]
    else:
        seqs = [e.seq for e in sink.of(FrameSeen)]
    assert seqs == [1, 2]
    notices = [n for n in sink.of(Notice) if "not delivered" in n.text]
    assert [n.text for n in notices] == [
        "frames #1 to #2 (c2s) were not delivered: the upstream is gone"
    ]
    assert notices[0].conn == 7
