"""Engine.IO / Socket.IO decoding, as transcripts: messages in, summaries and fields out."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from wsinspect.wire.decoders import Decoded, Decoding, Handshake, get_decoder
from wsinspect.wire.decoders.socketio import SocketIOConnection
from wsinspect.wire.sides import Direction

TEXT, BINARY = 1, 2
PATH = "/socket.io/?EIO=4&transport=websocket"


def decode_all(transcript: list[tuple[Direction, int, bytes]], path: str = PATH) -> list[Decoded]:
    decoding = Decoding()
    assert decoding.opened(1, path, None) is get_decoder("socketio")
    out = [decoding.message(1, d, op, p) for d, op, p in transcript]
    assert all(x is not None for x in out)
    return [x for x in out if x is not None]


def test_recognised_by_eio_in_the_query_only() -> None:
    sio = get_decoder("socketio")
    assert sio.recognises(Handshake("/socket.io/?EIO=4&transport=websocket"))
    assert sio.recognises(Handshake("/x?EIO=3"))
    assert not sio.recognises(Handshake("/socket.io/"))
    assert not sio.recognises(Handshake("/chat?eio=4"))
    assert Decoding().select(Handshake("/ws")) is None


def test_engine_packets() -> None:
    open_, ping, pong, probe, noop, close = decode_all([
        ("s2c", TEXT, b'0{"sid":"abc","upgrades":[],"pingInterval":25000,"pingTimeout":20000}'),
        ("s2c", TEXT, b"2"), ("c2s", TEXT, b"3"), ("c2s", TEXT, b"2probe"),
        ("s2c", TEXT, b"6"), ("c2s", TEXT, b"1"),
    ])
    assert open_.summary == "engine.io open sid=abc"
    assert open_.body["data"]["pingInterval"] == 25000
    assert [x.fields["eio"] for x in (ping, pong, probe, noop, close)] == [
        "ping", "pong", "ping", "noop", "close"]
    assert probe.summary == "engine.io ping probe"
    assert "type" not in ping.fields


def test_event_with_namespace_and_ack_then_its_ack() -> None:
    event, ack = decode_all([("c2s", TEXT, b'42/chat,3["chat",{"text":"hi"},2]'),
                             ("s2c", TEXT, b'43/chat,3["ok"]')])
    assert event.summary == 'socket.io event "chat" ns=/chat ack=3'
    assert event.fields == {"eio": "message", "type": "event", "ns": "/chat", "event": "chat",
                            "ack": 3}
    assert event.body["args"] == [{"text": "hi"}, 2]
    assert ack.summary == "socket.io ack ns=/chat ack=3"
    assert ack.kind == "ack"


def test_default_namespace_and_no_ack() -> None:
    (event,) = decode_all([("c2s", TEXT, b'42["chat","hello"]')])
    assert event.summary == 'socket.io event "chat" ns=/'
    assert "ack" not in event.fields
    assert get_decoder("socketio").field_matches(event, "event", "chat")
    assert not get_decoder("socketio").field_matches(event, "event", "chatter")


def test_connect_disconnect_and_connect_error() -> None:
    c, ok, err, dis = decode_all([
        ("c2s", TEXT, b"40/admin,"), ("s2c", TEXT, b'40/admin,{"sid":"s1"}'),
        ("s2c", TEXT, b'44/admin,{"message":"Not authorized"}'), ("c2s", TEXT, b"41/admin,"),
    ])
    assert c.summary == "socket.io connect ns=/admin"
    assert ok.summary == "socket.io connect ns=/admin sid=s1"
    assert err.summary == 'socket.io connect_error ns=/admin "Not authorized"'
    assert dis.fields["type"] == "disconnect"


def test_binary_event_is_reassembled_from_its_attachments() -> None:
    head, first, last = decode_all([
        ("c2s", TEXT, b'452-["upload",{"_placeholder":true,"num":0},{"n":{"_placeholder":true,"num":1}}]'),
        ("c2s", BINARY, b"hello"),
        ("c2s", BINARY, bytes(range(40))),
    ])
    assert head.continued and first.continued and not last.continued
    assert last.summary == 'socket.io event "upload" ns=/ attachments=2'
    assert last.fields["event"] == "upload"
    assert last.body["args"][0] == {"_binary": {"bytes": 5, "hex": "68656c6c6f"}}
    assert last.body["args"][1]["n"]["_binary"]["bytes"] == 40
    assert last.body["args"][1]["n"]["_binary"]["hex"].endswith("…")


def test_attachments_are_kept_per_direction() -> None:
    out = decode_all([
        ("s2c", TEXT, b'451-["file",{"_placeholder":true,"num":0}]'),
        ("c2s", TEXT, b'42["other"]'),
        ("s2c", BINARY, b"\x00\x01"),
    ])
    assert out[1].summary == 'socket.io event "other" ns=/'
    assert not out[2].continued and out[2].body["args"][0]["_binary"]["bytes"] == 2


def test_binary_ack() -> None:
    _, done = decode_all([("s2c", TEXT, b'461-/,5[{"_placeholder":true,"num":0}]'),
                          ("s2c", BINARY, b"abc")])
    assert done.kind == "binary_ack"
    assert done.summary == "socket.io binary_ack ns=/ ack=5 attachments=1"
    assert done.body["data"] == [{"_binary": {"bytes": 3, "hex": "616263"}}]


def test_binary_message_without_a_packet_is_an_engine_message() -> None:
    (out,) = decode_all([("s2c", BINARY, b"\x01\x02\x03")])
    assert out.summary == "engine.io binary message 3 bytes"


def test_engine_io_v3_binary_prefix_is_dropped() -> None:
    _, done = decode_all([("c2s", TEXT, b'451-["up",{"_placeholder":true,"num":0}]'),
                          ("c2s", BINARY, b"\x04xyz")], path="/socket.io/?EIO=3&transport=websocket")
    assert done.body["args"][0]["_binary"]["bytes"] == 3


@pytest.mark.parametrize(("payload", "why"), [
    (b"", "empty message"),
    (b"9", "unknown packet type '9'"),
    (b"\xff\xfe", "not UTF-8"),
    (b"0not json", "bad JSON"),
    (b"4", "empty message packet"),
    (b"47", "unknown packet type '7'"),
    (b'42{"a":1}', "an event's data is not [name, ...args]"),
    (b"42[]", "an event's data is not [name, ...args]"),
    (b'43"x"', "an ack's data is not a list"),
    (b'45["x"]', "no attachment count"),
    (b'451-["x"', "bad JSON"),
    (b"42" + b"9" * 5000 + b'["x"]', "digits"),
])
def test_bad_input_says_why(payload: bytes, why: str) -> None:
    (out,) = decode_all([("c2s", TEXT, payload)])
    assert out.error is not None and why in out.error
    assert out.summary.startswith("socket.io: not ")
    assert out.kind == "error"


@given(st.lists(st.tuples(st.sampled_from(["c2s", "s2c"]), st.sampled_from([TEXT, BINARY]),
                          st.binary(max_size=64) | st.sampled_from(
                              [b'451-["a",{"_placeholder":true,"num":0}]', b"42", b"40/x,"]))))
def test_random_messages_never_raise(messages: list[tuple[Direction, int, bytes]]) -> None:
    conn = SocketIOConnection()
    for direction, opcode, payload in messages:
        out = conn.decode(direction, opcode, payload)
        assert out.protocol == "socket.io" and isinstance(out.summary, str)
        out.to_dict()
