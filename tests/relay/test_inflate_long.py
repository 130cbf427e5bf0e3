"""Compressed messages far over the capture limit, through the real relay between real
``websockets`` peers: each is inflated to its end (its length and the SHA-256 of the whole
inflated message are right) and the short messages after it still read (RFC 7692)."""

from __future__ import annotations

import hashlib
import json
import os

import pytest
import trio
from relay_helpers import StartProxy, echo, start_ws_server
from websockets.extensions.permessage_deflate import ServerPerMessageDeflateFactory
from websockets.trio.client import connect

from wsinspect.events import ConnectionClosed, FrameSeen, MessageSeen
from wsinspect.recording.encoder import json_line
from wsinspect.recording.format import dumps, to_dict

pytestmark = pytest.mark.trio

CAPTURE_LIMIT = 1024

# ~200 KiB each: JSON that compresses well (still tens of KiB on the wire) and random text.
COMPRESSIBLE = json.dumps([{"id": i, "user": f"user{i % 97}", "ok": i % 3 == 0} for i in range(5600)])
RANDOM_TEXT = os.urandom(100 << 10).hex()
RANDOM_BINARY = os.urandom(200 << 10)


def messages() -> list[str | bytes | list[str]]:
    """What the client sends (the server echoes it): long ones, each followed by short ones."""
    return [
        "hello",
        COMPRESSIBLE,
        "short after compressible",
        RANDOM_TEXT,
        "short after random text",
        RANDOM_BINARY,
        b"short binary after random binary",
        [RANDOM_TEXT[:70_000], RANDOM_TEXT[70_000:140_000], RANDOM_TEXT[140_000:]],  # fragmented
        "short after a fragmented one",
        COMPRESSIBLE[: 150 << 10],  # refers back to the first long one (context takeover)
        "the last short one",
    ]


def as_bytes(m: str | bytes | list[str]) -> bytes:
    if isinstance(m, list):
        m = "".join(m)
    return m.encode() if isinstance(m, str) else m


NO_TAKEOVER = ServerPerMessageDeflateFactory(
    server_no_context_takeover=True, client_no_context_takeover=True
)


@pytest.mark.parametrize("takeover", [True, False], ids=["context-takeover", "no-context-takeover"])
async def test_long_compressed_messages_are_inflated_whole_and_short_ones_after_still_read(
    nursery: trio.Nursery, start_proxy: StartProxy, takeover: bool
) -> None:
    kw = {} if takeover else {"compression": None, "extensions": [NO_TAKEOVER]}
    sent = messages()
    with trio.fail_after(30):
        upstream = await start_ws_server(nursery, echo, **kw)
        proxy = await start_proxy(upstream, capture_limit=CAPTURE_LIMIT)
        async with connect(proxy.url(), proxy=None) as ws:
            for m in sent:
                await ws.send(m)
                got = await ws.recv()
                assert (got.encode() if isinstance(got, str) else got) == as_bytes(m)
        await proxy.sink.wait_for(ConnectionClosed)

    expected = [as_bytes(m) for m in sent]
    for direction in ("c2s", "s2c"):
        seen = [e.message for e in proxy.sink.of(MessageSeen) if e.direction == direction]
        assert [m.length for m in seen] == [len(m) for m in expected]
        for m, want in zip(seen, expected, strict=True):
            assert m.compressed and m.note is None
            assert m.payload == want[:CAPTURE_LIMIT]
            if len(want) > CAPTURE_LIMIT:
                assert m.truncated and m.sha256 == hashlib.sha256(want).hexdigest()
            else:
                assert not m.truncated and m.sha256 is None
    frames = [e.frame for e in proxy.sink.of(FrameSeen)]
    # The long messages really were far over the capture limit on the wire too.
    assert sum(f.length > 20 * CAPTURE_LIMIT for f in frames if f.rsv1) >= 6
    assert all(not f.violations for f in frames)


async def test_recorded_line_of_a_long_compressed_message_holds_its_sha256(
    nursery: trio.Nursery, start_proxy: StartProxy
) -> None:
    with trio.fail_after(20):
        proxy = await start_proxy(
            await start_ws_server(nursery, echo), capture_limit=CAPTURE_LIMIT
        )
        async with connect(proxy.url(), proxy=None) as ws:
            await ws.send(RANDOM_TEXT)
            await ws.recv()
            await ws.send("short")
            await ws.recv()
        await proxy.sink.wait_for(ConnectionClosed)
    events = proxy.sink.of(MessageSeen)
    lines = [to_dict(e) for e in events]
    digest = hashlib.sha256(RANDOM_TEXT.encode()).hexdigest()
    assert [(d["len"], d.get("sha256"), d["payload"]) for d in lines] == [
        (len(RANDOM_TEXT), digest, RANDOM_TEXT[:CAPTURE_LIMIT]),
        (len(RANDOM_TEXT), digest, RANDOM_TEXT[:CAPTURE_LIMIT]),
        (5, None, "short"),
        (5, None, "short"),
    ]
    assert all(json_line(e) == dumps(to_dict(e)) for e in events)
