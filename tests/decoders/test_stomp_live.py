"""A stomp.py client (its WebSocket transport) through the proxy to a small broker whose
frames stomp.py also builds and parses: the recorded messages decode as STOMP frames."""

from __future__ import annotations

import queue
from typing import Any

import pytest
import stomp
import trio
from decoder_live import only_connection, summaries, wait_closed
from loopback import StartProxy, start_ws_server
from stomp.utils import Frame, convert_frame, parse_frame
from websockets.trio.server import ServerConnection

from wsinspect.events import MessageSeen
from wsinspect.wire.decoders import get_decoder

pytestmark = pytest.mark.trio

SUBPROTOCOLS = ["v12.stomp", "v11.stomp", "v10.stomp"]


def _encode(cmd: str, headers: dict[str, str], body: str = "") -> str:
    return b"".join(convert_frame(Frame(cmd, headers, body))).decode()


async def broker(ws: ServerConnection) -> None:
    """Just enough of a STOMP 1.2 broker: CONNECTED, one queue delivered to its subscribers,
    RECEIPTs, and DISCONNECT."""
    subscriptions: dict[str, str] = {}  # destination -> subscription id
    count = 0
    async for data in ws:
        raw = data.encode() if isinstance(data, str) else data
        if not raw.strip(b"\r\n"):
            continue  # a heart-beat
        frame = parse_frame(raw.rstrip(b"\r\n").removesuffix(b"\x00"))
        headers: dict[str, Any] = frame.headers
        if frame.cmd in ("CONNECT", "STOMP"):
            await ws.send(_encode("CONNECTED", {"version": "1.2", "heart-beat": "0,0",
                                                "server": "test-broker/1"}))
        elif frame.cmd == "SUBSCRIBE":
            subscriptions[headers["destination"]] = headers["id"]
        elif frame.cmd == "SEND" and headers["destination"] in subscriptions:
            count += 1
            body = frame.body.decode() if isinstance(frame.body, bytes) else frame.body
            await ws.send(_encode("MESSAGE", {
                "destination": headers["destination"], "message-id": f"m{count}",
                "subscription": subscriptions[headers["destination"]], "content-length": "0"},
                body))
        if "receipt" in headers:
            await ws.send(_encode("RECEIPT", {"receipt-id": headers["receipt"]}))
        if frame.cmd == "DISCONNECT":
            return


class Collect(stomp.ConnectionListener):  # type: ignore[misc]
    def __init__(self) -> None:
        self.messages: queue.Queue[tuple[dict[str, str], str]] = queue.Queue()

    def on_message(self, frame: Frame) -> None:
        self.messages.put((frame.headers, frame.body))


def client_session(port: int) -> list[tuple[dict[str, str], str]]:
    """stomp.py's own client: connect, subscribe, send two messages (one with a receipt and a
    header that needs escaping), receive them, disconnect."""
    conn = stomp.WSStompConnection([("127.0.0.1", port)], ws_path="/stomp", timeout=5,
                                   header={"Sec-WebSocket-Protocol": "v12.stomp"},
                                   reconnect_attempts_max=1)
    listener = Collect()
    conn.set_listener("collect", listener)
    conn.connect(wait=True)
    conn.subscribe("/queue/a", id="sub-0", ack="auto")
    conn.send("/queue/a", "hello", headers={"receipt": "r1"})
    conn.send("/queue/a", "world", headers={"x-note": "a:b"})
    got = [listener.messages.get(timeout=5), listener.messages.get(timeout=5)]
    conn.disconnect(receipt="bye")
    return got


async def test_stomp_py_session_decodes(nursery: trio.Nursery, start_proxy: StartProxy) -> None:
    with trio.fail_after(20):
        upstream = await start_ws_server(nursery, broker, subprotocols=SUBPROTOCOLS)
        proxy = await start_proxy(upstream)
        got = await trio.to_thread.run_sync(client_session, proxy.port, abandon_on_cancel=True)
        await wait_closed(proxy.sink)
    assert [body for _, body in got] == ["hello", "world"]

    seen = only_connection(proxy.sink)
    sent, received = summaries(seen, "c2s"), summaries(seen, "s2c")
    assert sent == ["stomp STOMP", "stomp SUBSCRIBE /queue/a id=sub-0",
                    "stomp SEND /queue/a receipt=r1", "stomp SEND /queue/a",
                    "stomp DISCONNECT receipt=bye"]
    assert received == ["stomp CONNECTED version=1.2", "stomp MESSAGE /queue/a sub=sub-0",
                        "stomp RECEIPT receipt=r1", "stomp MESSAGE /queue/a sub=sub-0",
                        "stomp RECEIPT receipt=bye"]
    second = [d for dr, d in seen if dr == "c2s" and d.kind == "SEND"][1]
    frame = second.body["frames"][0]
    assert frame["body"] == "world"
    assert frame["headers"]["x-note"] == "a:b"
    (wire,) = [e.message.payload for e in proxy.sink.of(MessageSeen) if b"x-note" in e.message.payload]
    assert b"x-note:a\\cb\n" in wire  # stomp.py escaped the colon on the wire
    assert frame["headers"]["content-length"] == "5"
    stomp_decoder = get_decoder("stomp")
    to_queue = [d.kind for _, d in seen if stomp_decoder.field_matches(d, "dest", "/queue/a")]
    assert sorted(to_queue) == ["MESSAGE", "MESSAGE", "SEND", "SEND", "SUBSCRIBE"]
    assert [d.fields["receipt"] for _, d in seen if d.kind == "RECEIPT"] == ["r1", "bye"]
