"""The MQTT decoder, sans-IO: transcripts recorded from paho-mqtt and Mosquitto (see
tests/decoders/test_mqtt_live.py), every packet type, split and coalesced packets, v3.1.1 and
v5, bad input."""

from __future__ import annotations

import itertools
import json

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from wsinspect.wire.decoders import Decoded, Decoding, get_decoder
from wsinspect.wire.decoders.mqtt import MAX_PACKET, MqttConnection, MqttDecoder, topic_matches
from wsinspect.wire.sides import Direction

BINARY, TEXT = 2, 1

# paho-mqtt 2.2 (client "wsi-4", user alice, password s3cret) and Mosquitto 2.0, one
# WebSocket message each: connect, subscribe sensors/# QoS 2, publish QoS 0/1/2, unsubscribe,
# disconnect.
V311: list[tuple[Direction, str]] = [
    ("c2s", "102000044d51545404c2001e00057773692d340005616c6963650006733363726574"),
    ("s2c", "20020000"),
    ("c2s", "820e0001000973656e736f72732f2302"),
    ("s2c", "9003000102"),
    ("c2s", "300f000973656e736f72732f3032302e35"),
    ("s2c", "300f000973656e736f72732f3032302e35"),
    ("c2s", "3211000973656e736f72732f31000332312e30"),
    ("s2c", "3211000973656e736f72732f31000132312e30"),
    ("c2s", "40020001"),
    ("s2c", "40020003"),
    ("c2s", "3410000973656e736f72732f320004ff007f"),
    ("s2c", "50020004"),
    ("c2s", "62020004"),
    ("s2c", "3410000973656e736f72732f320002ff007f"),
    ("c2s", "50020002"),
    ("s2c", "70020004"),
    ("s2c", "62020002"),
    ("c2s", "70020002"),
    ("c2s", "a20d0005000973656e736f72732f23"),
    ("s2c", "b0020005"),
    ("c2s", "e000"),
]
# The same session at MQTT 5.0, publishing with content type and a user property.
V5: list[tuple[Direction, str]] = [
    ("c2s", "102100044d51545405c2001e0000057773692d350005616c6963650006733363726574"),
    ("s2c", "200900000622000a210014"),
    ("c2s", "820f000100000973656e736f72732f2302"),
    ("s2c", "900400010002"),
    ("c2s", "3027000973656e736f72732f301703000a746578742f706c61696e260004756e697400014332302e35"),
    ("s2c", "3027000973656e736f72732f301703000a746578742f706c61696e260004756e697400014332302e35"),
    ("c2s", "3229000973656e736f72732f3100031703000a746578742f706c61696e260004756e697400014332312e30"),
    ("s2c", "3229000973656e736f72732f3100011703000a746578742f706c61696e260004756e697400014332312e30"),
    ("c2s", "40020001"),
    ("s2c", "40020003"),
    ("c2s", "3428000973656e736f72732f3200041703000a746578742f706c61696e260004756e6974000143ff007f"),
    ("s2c", "50020004"),
    ("c2s", "62020004"),
    ("s2c", "3428000973656e736f72732f3200021703000a746578742f706c61696e260004756e6974000143ff007f"),
    ("c2s", "50020002"),
    ("s2c", "70020004"),
    ("s2c", "62020002"),
    ("c2s", "70020002"),
    ("c2s", "a20e000500000973656e736f72732f23"),
    ("s2c", "b00400050000"),
    ("c2s", "e000"),
]


def _varint(n: int) -> bytes:
    out = bytearray()
    while True:
        b, n = n & 0x7F, n >> 7
        out.append(b | (0x80 if n else 0))
        if not n:
            return bytes(out)


def packet(first: int, body: bytes) -> bytes:
    return bytes([first]) + _varint(len(body)) + body


def s(text: str) -> bytes:
    raw = text.encode()
    return len(raw).to_bytes(2, "big") + raw


def u16(n: int) -> bytes:
    return n.to_bytes(2, "big")


CONNECT_V5 = packet(0x10, s("MQTT") + bytes([5, 0x02]) + u16(60) + b"\x00" + s("dev"))


def run(transcript: list[tuple[Direction, bytes]], conn: MqttConnection | None = None) -> list[Decoded]:
    conn = conn or MqttConnection()
    return [conn.decode(d, BINARY, p) for d, p in transcript]


def flat(decoded: list[Decoded]) -> list[dict[str, object]]:
    out: list[dict[str, object]] = []
    for d in decoded:
        out += d.body if isinstance(d.body, list) else [d.body] if d.body is not None else []
    return out


def recorded(transcript: list[tuple[Direction, str]]) -> list[tuple[Direction, bytes]]:
    return [(d, bytes.fromhex(h)) for d, h in transcript]


def test_a_recorded_v311_session_reads_as_its_packets() -> None:
    summaries = [d.summary for d in run(recorded(V311))]
    assert summaries[:6] == [
        "mqtt CONNECT client_id=wsi-4 v3.1.1 keepalive=30 clean user=alice password=***",
        "mqtt CONNACK rc=0 (accepted)",
        "mqtt SUBSCRIBE id=1 sensors/# qos=2",
        "mqtt SUBACK id=1 codes=[2]",
        'mqtt PUBLISH topic=sensors/0 qos=0 "20.5"',
        'mqtt PUBLISH topic=sensors/0 qos=0 "20.5"',
    ]
    assert summaries[6] == 'mqtt PUBLISH topic=sensors/1 qos=1 id=3 "21.0"'
    assert summaries[10] == "mqtt PUBLISH topic=sensors/2 qos=2 id=4 3 bytes ff007f"
    assert summaries[11:13] == ["mqtt PUBREC id=4", "mqtt PUBREL id=4"]
    assert summaries[-3:] == ["mqtt UNSUBSCRIBE id=5 sensors/#", "mqtt UNSUBACK id=5", "mqtt DISCONNECT"]


def test_fields_are_what_filters_match() -> None:
    decoded = run(recorded(V311))
    assert decoded[0].fields == {"type": "CONNECT", "client_id": "wsi-4"}
    assert decoded[6].fields == {"type": "PUBLISH", "topic": "sensors/1", "qos": 1, "retain": False,
                                 "packet_id": 3}
    assert decoded[2].fields == {"type": "SUBSCRIBE", "packet_id": 1, "topic": "sensors/#", "qos": 2}
    assert decoded[0].kind == "CONNECT" and decoded[6].kind == "PUBLISH"


def test_the_password_is_never_shown() -> None:
    decoded = run(recorded(V311) + recorded(V5))
    text = json.dumps([d.to_dict() for d in decoded])
    assert "s3cret" not in text and "733363726574" not in text
    assert decoded[0].body["password"] == "***" and decoded[0].body["username"] == "alice"


def test_a_recorded_v5_session_shows_properties_and_reason_codes() -> None:
    decoded = run(recorded(V5))
    assert decoded[0].summary == "mqtt CONNECT client_id=wsi-5 v5 keepalive=30 clean user=alice password=***"
    assert decoded[1].summary == "mqtt CONNACK rc=0 (success)"
    assert decoded[1].body["properties"] == {"topic_alias_maximum": 10, "receive_maximum": 20}
    assert decoded[4].body["properties"] == {"content_type": "text/plain", "user": [["unit", "C"]]}
    assert decoded[4].summary == 'mqtt PUBLISH topic=sensors/0 qos=0 "20.5"'
    assert decoded[-2].summary == "mqtt UNSUBACK id=5 codes=[0]"
    assert all(d.error is None for d in decoded)


def test_v5_packets_misparse_without_the_connect_that_says_v5() -> None:
    conn = MqttConnection()  # joined mid-connection: 3.1.1 assumed
    d = conn.decode("c2s", BINARY, bytes.fromhex(V5[4][1]))
    assert d.body["payload"] != "20.5"  # the properties are read as payload
    assert run(recorded(V5))[4].body["payload"] == "20.5"


def test_coalesced_packets_are_all_decoded_and_the_first_gives_the_fields() -> None:
    stream = b"".join(p for d, p in recorded(V311) if d == "c2s")
    [d] = run([("c2s", stream)])
    assert len(d.body) == 11 and d.kind == "CONNECT" and d.fields["client_id"] == "wsi-4"
    assert d.summary.endswith("(+10 more: SUBSCRIBE, PUBLISH, PUBLISH, …)")
    assert not d.continued and d.error is None


def test_a_packet_split_across_messages_is_continued_until_it_completes() -> None:
    raw = bytes.fromhex(V311[0][1])
    decoded = run([("c2s", raw[i:i + 1]) for i in range(len(raw))])
    assert all(d.continued and d.kind == "continued" for d in decoded[:-1])
    assert decoded[-2].summary == f"mqtt (part of a packet, {len(raw) - 1} bytes so far)"
    assert decoded[-1].summary.startswith("mqtt CONNECT client_id=wsi-4") and not decoded[-1].continued


def test_a_message_ending_inside_the_next_packet_is_continued_and_says_so() -> None:
    one, two = bytes.fromhex(V311[4][1]), bytes.fromhex(V311[6][1])
    conn = MqttConnection()
    first = conn.decode("c2s", BINARY, one + two[:5])
    assert first.continued and first.kind == "PUBLISH"
    assert first.summary == 'mqtt PUBLISH topic=sensors/0 qos=0 "20.5" (+ part of the next packet)'
    second = conn.decode("c2s", BINARY, two[5:])
    assert second.summary == 'mqtt PUBLISH topic=sensors/1 qos=1 id=3 "21.0"' and not second.continued


def test_the_directions_keep_separate_buffers() -> None:
    conn = MqttConnection()
    c2s, s2c = bytes.fromhex(V311[2][1]), bytes.fromhex(V311[3][1])
    assert conn.decode("c2s", BINARY, c2s[:3]).continued
    assert conn.decode("s2c", BINARY, s2c).summary == "mqtt SUBACK id=1 codes=[2]"
    assert conn.decode("c2s", BINARY, c2s[3:]).summary == "mqtt SUBSCRIBE id=1 sensors/# qos=2"


@settings(max_examples=60, deadline=None)
@given(st.lists(st.integers(min_value=0, max_value=600), max_size=12))
def test_any_chunking_gives_the_same_packets(cuts: list[int]) -> None:
    transcript = recorded(V5)
    stream = b"".join(p for d, p in transcript if d == "c2s")
    whole = flat(run([("c2s", stream)]))
    bounds = sorted({0, len(stream), *(c % (len(stream) + 1) for c in cuts)})
    pieces = [stream[a:b] for a, b in itertools.pairwise(bounds)]
    assert flat(run([("c2s", p) for p in pieces])) == whole


def test_every_packet_type_of_v5() -> None:
    auth_props = _varint(9) + b"\x15" + s("PLAIN") + b"\x16" + s("xy")
    transcript: list[tuple[Direction, bytes]] = [
        ("c2s", CONNECT_V5),
        ("s2c", packet(0x20, b"\x01\x87\x00")),
        ("c2s", packet(0xF0, b"\x18" + auth_props)),
        ("c2s", packet(0xC0, b"")),
        ("s2c", packet(0xD0, b"")),
        ("c2s", packet(0x82, u16(7) + b"\x00" + s("a/+") + b"\x2d" + s("b") + b"\x00")),
        ("s2c", packet(0x90, u16(7) + b"\x00\x01\x80")),
        ("s2c", packet(0x40, u16(9) + b"\x10\x00")),
        ("s2c", packet(0x50, u16(9))),
        ("c2s", packet(0x62, u16(9) + b"\x92")),
        ("c2s", packet(0xA2, u16(8) + b"\x00" + s("a/+") + s("b"))),
        ("s2c", packet(0xB0, u16(8) + b"\x00\x00\x11")),
        ("c2s", packet(0xE0, b"\x04\x00")),
    ]
    summaries = [d.summary for d in run(transcript)]
    assert summaries == [
        "mqtt CONNECT client_id=dev v5 keepalive=60 clean",
        "mqtt CONNACK rc=135 (not authorized) session_present",
        "mqtt AUTH rc=24 (continue auth)",
        "mqtt PINGREQ",
        "mqtt PINGRESP",
        "mqtt SUBSCRIBE id=7 a/+ qos=1, b qos=0",
        "mqtt SUBACK id=7 codes=[1, 0x80]",
        "mqtt PUBACK id=9 rc=16 (no matching subscribers)",
        "mqtt PUBREC id=9",
        "mqtt PUBREL id=9 rc=146 (packet id not found)",
        "mqtt UNSUBSCRIBE id=8 a/+, b",
        "mqtt UNSUBACK id=8 codes=[0, 17]",
        "mqtt DISCONNECT rc=4 (disconnect with will)",
    ]
    decoded = run(transcript)
    assert decoded[2].body["properties"] == {"auth_method": "PLAIN", "auth_data": "*** (2 bytes)"}
    assert decoded[5].body["filters"][0] == {"topic": "a/+", "qos": 1, "no_local": True,
                                             "retain_as_published": True, "retain_handling": 2}


def test_a_v311_connect_with_a_will_and_a_refusal() -> None:
    connect = packet(0x10, s("MQTT") + bytes([4, 0b11101110]) + u16(10) + s("c1") + s("last/will")
                     + s("gone") + s("bob") + s("pw"))
    decoded = run([("c2s", connect), ("s2c", packet(0x20, b"\x00\x05"))])
    assert decoded[0].summary == ("mqtt CONNECT client_id=c1 v3.1.1 keepalive=10 clean "
                                  "will=last/will user=bob password=***")
    assert decoded[0].body["will"] == {"qos": 1, "retain": True, "topic": "last/will", "payload_len": 4}
    assert decoded[1].summary == "mqtt CONNACK rc=5 (not authorized)"


def test_an_mqtt31_connect_sets_level_3() -> None:
    connect = packet(0x10, s("MQIsdp") + bytes([3, 0]) + u16(0) + s("old"))
    assert run([("c2s", connect)])[0].summary == "mqtt CONNECT client_id=old v3.1 keepalive=0"


def test_v5_topic_aliases_resolve_per_direction() -> None:
    alias = _varint(3) + b"\x23" + u16(4)
    first = packet(0x30, s("long/topic/name") + alias + b"x")
    again = packet(0x31, s("") + alias + b"y")
    decoded = run([("c2s", CONNECT_V5), ("c2s", first), ("c2s", again)])
    assert decoded[2].summary == 'mqtt PUBLISH topic=long/topic/name qos=0 retain alias=4 "y"'
    assert decoded[2].fields["topic"] == "long/topic/name"


def test_a_packet_larger_than_the_buffer_limit_is_decoded_from_its_start_and_skipped() -> None:
    size = MAX_PACKET + 1000
    body = s("big/one") + b"z" * (size - 9)
    raw = packet(0x30, body)
    conn = MqttConnection()
    first = conn.decode("c2s", BINARY, raw[:4096])
    assert first.kind == "PUBLISH" and first.continued
    assert first.fields["topic"] == "big/one"
    assert f"(first {4096 - 13} of {size - 9} bytes)" in first.summary
    assert len(conn.sides["c2s"].buf) == 0  # nothing of it is kept
    middle = conn.decode("c2s", BINARY, raw[4096:-10])
    assert middle.continued and middle.summary == "mqtt (rest of a large packet, 10 bytes to come)"
    last = conn.decode("c2s", BINARY, raw[-10:] + packet(0xC0, b""))
    assert last.summary == "mqtt PINGREQ" and not last.continued


@pytest.mark.parametrize(("payload", "error"), [
    (b"\x00\x00", "reserved packet type 0"),
    (b"\x30\xff\xff\xff\xff\x01", "remaining length longer than 4 bytes"),
    (packet(0x30, b"\x00\x02\xff\xfe"), "a string is not UTF-8"),
    (packet(0x36, s("t")), "QoS 3"),
    (packet(0xC0, b"\x00"), "1 bytes after the packet's end"),
    (packet(0x82, u16(1)), "no topic filter"),
    (packet(0x10, s("HTTP") + b"\x04\x00\x00\x00" + s("x")), "protocol 'HTTP' level 4"),
    (packet(0x40, b"\x01"), "packet ends 1 bytes early"),
    (packet(0xF0, b""), "reserved packet type 15"),
])
def test_malformed_packets_give_the_reason(payload: bytes, error: str) -> None:
    d = MqttConnection().decode("c2s", BINARY, payload)
    assert d.error is not None and error in d.error, d


def test_a_text_message_is_not_mqtt() -> None:
    d = MqttConnection().decode("c2s", TEXT, b"hello")
    assert d.error == "MQTT over WebSocket uses binary messages (MQTT 3.1.1 §6)"


def test_after_a_malformed_packet_of_known_length_the_next_one_decodes() -> None:
    conn = MqttConnection()
    d = conn.decode("c2s", BINARY, packet(0x36, s("t")) + packet(0xC0, b""))
    assert d.error == "PUBLISH: QoS 3" and d.body[1]["type"] == "PINGREQ"


@settings(max_examples=300, deadline=None)
@given(st.lists(st.tuples(st.sampled_from(["c2s", "s2c"]), st.binary(max_size=64)), max_size=8),
       st.booleans())
def test_random_bytes_never_raise(messages: list[tuple[Direction, bytes]], v5: bool) -> None:
    conn = MqttConnection()
    if v5:
        conn.decode("c2s", BINARY, CONNECT_V5)
    for direction, payload in messages:
        d = conn.decode(direction, BINARY, payload)
        json.dumps(d.to_dict())


@pytest.mark.parametrize(("pattern", "topic", "matches"), [
    ("sensors/#", "sensors/1", True),
    ("sensors/#", "sensors", True),
    ("sensors/#", "sensors/a/b", True),
    ("sensors/#", "other/1", False),
    ("+/temp", "kitchen/temp", True),
    ("+/temp", "kitchen/hall/temp", False),
    ("a/+/c", "a/b/c", True),
    ("+", "a", True),
    ("+", "a/b", False),
    ("#", "$SYS/uptime", False),
    ("+/uptime", "$SYS/uptime", False),
    ("$SYS/#", "$SYS/uptime", True),
    ("a/b", "a/b", True),
    ("a/b", "a/b/c", False),
])
def test_topic_wildcards(pattern: str, topic: str, matches: bool) -> None:
    assert topic_matches(pattern, topic) is matches


def test_topic_filters_use_wildcards_and_other_fields_equality() -> None:
    decoder = MqttDecoder()
    publish = run(recorded(V311))[6]
    assert decoder.field_matches(publish, "topic", "sensors/+")
    assert decoder.field_matches(publish, "topic", "sensors/1")
    assert not decoder.field_matches(publish, "topic", "sensors")
    assert decoder.field_matches(publish, "qos", "1") and decoder.field_matches(publish, "retain", "false")
    assert not decoder.field_matches(publish, "client_id", "x")
    subscribe = run(recorded(V311))[2]
    assert decoder.field_matches(subscribe, "topic", "sensors/#")  # the filter itself


@pytest.mark.parametrize("subprotocol", ["mqtt", "MQTT", "mqttv3.1"])
def test_the_subprotocol_selects_the_decoder(subprotocol: str) -> None:
    decoding = Decoding()
    decoder = decoding.opened(1, "/mqtt", subprotocol)
    assert decoder is get_decoder("mqtt") and decoder.filter_prefix == "mqtt"
    d = decoding.message(1, "c2s", BINARY, bytes.fromhex(V311[0][1]))
    assert d is not None and d.kind == "CONNECT"
