"""MQTT over WebSocket through the real proxy: the paho-mqtt client (``transport="websockets"``)
talks to the Mosquitto broker, and the recorded messages decode as the packets they sent.

Mosquitto's own WebSocket listener (libwebsockets) cannot bind in some sandboxes, so the broker
listens on loopback TCP and a ``websockets`` server in the test carries the bytes: each TCP read
from the broker becomes one WebSocket message, so packets arrive coalesced or split as the
kernel hands them over, as with a real WebSocket-to-TCP bridge. Skipped where ``mosquitto`` is
not installed (Debian: ``apt-get install mosquitto``)."""

from __future__ import annotations

import contextlib
import functools
import json
import shutil
import socket
import subprocess
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import trio
from loopback import Collector, Proxy, start_ws_server
from websockets.exceptions import ConnectionClosed
from websockets.trio.server import ServerConnection

from wsinspect.compose import serve_proxy
from wsinspect.events import ConnectionClosed as Closed
from wsinspect.events import ConnectionOpened, MessageSeen
from wsinspect.hub import Hub
from wsinspect.settings import Settings, Upstream
from wsinspect.wire.decoders import Decoded, Decoding
from wsinspect.wire.decoders.mqtt import MqttDecoder

mqtt = pytest.importorskip("paho.mqtt.client")
pytestmark = [
    pytest.mark.trio,
    pytest.mark.skipif(shutil.which("mosquitto") is None, reason="needs the mosquitto broker"),
]
WAIT = 5.0


@pytest.fixture
def broker(tmp_path: Path) -> Iterator[int]:
    """A Mosquitto broker on a free loopback TCP port, anonymous, without persistence."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    conf = tmp_path / "mosquitto.conf"
    conf.write_text(f"listener {port} 127.0.0.1\nallow_anonymous true\npersistence false\n")
    proc = subprocess.Popen(["mosquitto", "-c", str(conf)], stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + WAIT
        while True:
            with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), 0.2):
                break
            assert proc.poll() is None and time.monotonic() < deadline, "mosquitto did not start"
            time.sleep(0.05)
        yield port
    finally:
        proc.terminate()
        try:
            proc.wait(WAIT)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


async def _bridge(port: int, ws: ServerConnection) -> None:
    """WebSocket messages to the broker's TCP stream and back, until either side ends."""
    tcp = await trio.open_tcp_stream("127.0.0.1", port)
    async with tcp, trio.open_nursery() as nursery:

        async def up() -> None:
            with contextlib.suppress(ConnectionClosed, trio.BrokenResourceError):
                async for message in ws:
                    await tcp.send_all(message if isinstance(message, bytes) else message.encode())
            nursery.cancel_scope.cancel()

        async def down() -> None:
            with contextlib.suppress(ConnectionClosed, trio.BrokenResourceError):
                while data := await tcp.receive_some(65536):
                    await ws.send(data)
                await ws.aclose()
            nursery.cancel_scope.cancel()

        nursery.start_soon(up)
        nursery.start_soon(down)


async def _proxy(nursery: trio.Nursery, upstream: str) -> Proxy:
    hub, sink = Hub(), Collector()
    hub.subscribe(sink, frames=True, messages=True)
    settings = Settings(listen_port=0, upstream=Upstream.parse(upstream))
    return Proxy(await nursery.start(serve_proxy, settings, hub), sink)


def _session(port: int, version: int) -> list[tuple[str, bytes]]:
    """Connect, subscribe to ``sensors/#`` at QoS 2, publish at QoS 0, 1 and 2, receive the
    three, unsubscribe, disconnect; returns what the client received."""
    v5 = version == mqtt.MQTTv5
    client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id=f"wsi-{version}",
                         transport="websockets", protocol=version)
    client.ws_set_options(path="/mqtt")
    client.username_pw_set("alice", "s3cret")
    received: list[tuple[str, bytes]] = []
    flags = {name: threading.Event() for name in ("connect", "subscribe", "unsubscribe", "got3")}
    client.on_connect = lambda *a: flags["connect"].set()
    client.on_subscribe = lambda *a: flags["subscribe"].set()
    client.on_unsubscribe = lambda *a: flags["unsubscribe"].set()

    def on_message(c: Any, u: Any, msg: Any) -> None:
        received.append((msg.topic, msg.payload))
        if len(received) == 3:
            flags["got3"].set()

    client.on_message = on_message

    def wait(name: str) -> None:
        assert flags[name].wait(WAIT), f"no {name} in {WAIT}s"

    props = None
    if v5:
        from paho.mqtt.packettypes import PacketTypes
        from paho.mqtt.properties import Properties

        props = Properties(PacketTypes.PUBLISH)  # type: ignore[no-untyped-call]
        props.ContentType = "text/plain"
        props.UserProperty = ("unit", "C")
    client.connect("127.0.0.1", port, keepalive=30)
    client.loop_start()
    try:
        wait("connect")
        client.subscribe("sensors/#", qos=2)
        wait("subscribe")
        for qos, payload in ((0, b"20.5"), (1, b"21.0"), (2, bytes([0xFF, 0x00, 0x7F]))):
            client.publish(f"sensors/{qos}", payload, qos=qos, properties=props).wait_for_publish(WAIT)
        wait("got3")
        client.unsubscribe("sensors/#")
        wait("unsubscribe")
        client.disconnect()
    finally:
        client.loop_stop()
    return received


async def _run(nursery: trio.Nursery, port: int, version: int) -> tuple[Proxy, list[Decoded]]:
    upstream = await start_ws_server(nursery, functools.partial(_bridge, port),
                                     subprotocols=["mqtt"], compression=None)
    proxy = await _proxy(nursery, upstream)
    received = await trio.to_thread.run_sync(_session, proxy.port, version)
    assert sorted(received) == [("sensors/0", b"20.5"), ("sensors/1", b"21.0"),
                                ("sensors/2", b"\xff\x00\x7f")]
    await proxy.sink.wait_for(Closed)
    opened = proxy.sink.of(ConnectionOpened)[0]
    decoding = Decoding()
    assert decoding.opened(opened.conn, opened.path, opened.subprotocol) is not None
    decoded = []
    for seen in proxy.sink.of(MessageSeen):
        d = decoding.message(seen.conn, seen.direction, seen.message.opcode, seen.message.payload)
        assert d is not None
        decoded.append((seen.direction, d))
    assert opened.subprotocol == "mqtt"
    assert all(d.error is None for _, d in decoded), [d for _, d in decoded if d.error]
    return proxy, [d for _, d in decoded]


def _packets(decoded: list[Decoded]) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    for d in decoded:
        out += d.body if isinstance(d.body, list) else [d.body] if d.body else []
    return out


@pytest.mark.parametrize("version", ["v3.1.1", "v5"])
async def test_a_paho_session_through_the_proxy_decodes_packet_by_packet(
    nursery: trio.Nursery, broker: int, version: str
) -> None:
    level = mqtt.MQTTv5 if version == "v5" else mqtt.MQTTv311
    with trio.fail_after(20):
        _, decoded = await _run(nursery, broker, level)
    packets = _packets(decoded)
    kinds = [p["type"] for p in packets]
    for kind in ("CONNECT", "CONNACK", "SUBSCRIBE", "SUBACK", "PUBACK", "PUBREC", "PUBREL",
                 "PUBCOMP", "UNSUBSCRIBE", "UNSUBACK", "DISCONNECT"):
        assert kind in kinds, (kind, kinds)
    assert kinds[0] == "CONNECT"
    connect = decoded[0]
    assert connect.summary == f"mqtt CONNECT client_id=wsi-{level} {version} keepalive=30 clean " \
                              "user=alice password=***"
    assert connect.fields == {"type": "CONNECT", "client_id": f"wsi-{level}"}
    assert "s3cret" not in json.dumps([d.to_dict() for d in decoded])
    publishes = [p for p in packets if p["type"] == "PUBLISH"]
    assert len(publishes) == 6  # three sent by the client, three delivered by the broker
    assert {(p["topic"], p["qos"]) for p in publishes} == {(f"sensors/{q}", q) for q in range(3)}
    assert {p.get("payload", p.get("payload_hex")) for p in publishes} == {"20.5", "21.0", "ff007f"}
    sub = next(d for d in decoded if d.kind == "SUBSCRIBE")
    assert sub.summary.startswith("mqtt SUBSCRIBE id=") and sub.summary.endswith("sensors/# qos=2")
    assert sub.fields["topic"] == "sensors/#"
    qos1 = next(d for d in decoded if d.kind == "PUBLISH" and d.fields["qos"] == 1)
    assert qos1.summary.startswith(f"mqtt PUBLISH topic=sensors/1 qos=1 id={qos1.fields['packet_id']}")
    qos2 = next(d for d in decoded if d.kind == "PUBLISH" and d.fields["qos"] == 2)
    assert qos2.summary.endswith(" 3 bytes ff007f")
    assert MqttDecoder().field_matches(qos1, "topic", "sensors/#")
    assert MqttDecoder().field_matches(qos1, "topic", "+/1")
    assert not MqttDecoder().field_matches(qos1, "topic", "other/#")
    if version == "v5":
        assert all(p["properties"]["content_type"] == "text/plain" for p in publishes)
        assert all(p["properties"]["user"] == [["unit", "C"]] for p in publishes)
        assert "properties" in packets[0]
    else:
        assert all("properties" not in p for p in publishes)
