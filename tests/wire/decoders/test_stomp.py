"""STOMP frames over WebSocket: commands, headers and their escapes, bodies, heart-beats."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from wsinspect.wire.decoders import Decoded, Decoding, Handshake, get_decoder
from wsinspect.wire.decoders.stomp import StompConnection
from wsinspect.wire.sides import Direction


def decode_all(transcript: list[tuple[Direction, bytes]], subprotocol: str = "v12.stomp") -> list[Decoded]:
    decoding = Decoding()
    assert decoding.opened(1, "/stomp", subprotocol) is get_decoder("stomp")
    out = [decoding.message(1, d, 1, p) for d, p in transcript]
    return [x for x in out if x is not None]


def test_chosen_by_the_stomp_subprotocols() -> None:
    for sub in ("v10.stomp", "v11.stomp", "v12.stomp"):
        assert Decoding().select(Handshake("/ws", sub)) is get_decoder("stomp")
    assert Decoding().select(Handshake("/stomp")) is None


def test_session_transcript() -> None:
    out = decode_all([
        ("c2s", b"CONNECT\naccept-version:1.2\nhost:/\nheart-beat:10000,10000\n\n\x00"),
        ("s2c", b"CONNECTED\nversion:1.2\nheart-beat:0,0\n\n\x00"),
        ("c2s", b"SUBSCRIBE\nid:sub-0\ndestination:/queue/a\nack:auto\n\n\x00"),
        ("c2s", b"SEND\ndestination:/queue/a\ncontent-type:text/plain\nreceipt:r1\n\nhello\x00"),
        ("s2c", b"RECEIPT\nreceipt-id:r1\n\n\x00"),
        ("s2c", b"MESSAGE\nsubscription:sub-0\nmessage-id:m1\ndestination:/queue/a\n\nhello\x00\n"),
        ("c2s", b"\n"),
        ("c2s", b"DISCONNECT\r\nreceipt:77\r\n\r\n\x00"),
    ])
    assert [x.summary for x in out] == [
        "stomp CONNECT", "stomp CONNECTED version=1.2", "stomp SUBSCRIBE /queue/a id=sub-0",
        "stomp SEND /queue/a receipt=r1", "stomp RECEIPT receipt=r1",
        "stomp MESSAGE /queue/a sub=sub-0", "stomp heart-beat", "stomp DISCONNECT receipt=77"]
    assert out[3].fields == {"command": "SEND", "dest": "/queue/a", "receipt": "r1"}
    assert out[3].body["frames"][0]["body"] == "hello"
    assert out[5].fields["subscription"] == "sub-0"
    assert get_decoder("stomp").field_matches(out[3], "dest", "/queue/a")


def test_header_escapes_by_version_and_not_in_connect() -> None:
    frame = b"SEND\ndestination:/a\\cb\\nc\\\\d\\re\n\n\x00"
    (v12,) = decode_all([("c2s", frame)])
    assert v12.fields["dest"] == "/a:b\nc\\d\re"
    (v11,) = decode_all([("c2s", frame)], "v11.stomp")
    assert v11.error == "undefined escape \\r in a header"
    (v10,) = decode_all([("c2s", frame)], "v10.stomp")
    assert v10.fields["dest"] == "/a\\cb\\nc\\\\d\\re"
    (connect,) = decode_all([("c2s", b"CONNECT\nlogin:a\\cb\n\n\x00")])
    assert connect.body["frames"][0]["headers"]["login"] == "a\\cb"


def test_repeated_header_keeps_the_first_value() -> None:
    (out,) = decode_all([("s2c", b"MESSAGE\ndestination:/x\ndestination:/y\n\n\x00")])
    assert out.fields["dest"] == "/x"


def test_content_length_body_may_hold_nuls_and_binary_is_described() -> None:
    (out,) = decode_all([("c2s", b"SEND\ndestination:/b\ncontent-length:4\n\n\x00\xff\x00\x01\x00")])
    assert out.body["frames"][0]["body"] == {"bytes": 4, "hex": "00ff0001"}


def test_several_frames_in_one_message_and_filters_see_each() -> None:
    (out,) = decode_all([("c2s", b"SEND\ndestination:/a\n\n1\x00SEND\ndestination:/b\n\n2\x00\n\n")])
    assert out.summary == "stomp SEND /a (+1 frame)"
    assert out.fields["frames"] == 2
    assert get_decoder("stomp").field_matches(out, "dest", "/b")
    assert not get_decoder("stomp").field_matches(out, "dest", "/c")


def test_frame_split_across_messages_is_joined() -> None:
    a, b, c = decode_all([("c2s", b"SEND\ndestina"), ("c2s", b"tion:/q\n\nhel"), ("c2s", b"lo\x00")])
    assert a.continued and b.continued and not c.continued
    assert c.summary == "stomp SEND /q"
    assert c.body["frames"][0]["body"] == "hello"


@pytest.mark.parametrize(("payload", "why"), [
    (b"hello world", "unknown command"),
    (b"PUBLISH\n\n\x00", "unknown command 'PUBLISH'"),
    (b"SEND\nno colon here\n\n\x00", "header line without ':'"),
    (b"SEND\ncontent-length:2\n\nabc\x00", "no NUL after content-length"),
    (b"SEND\nx:\xff\n\n\x00", "not UTF-8"),
])
def test_bad_input_says_why(payload: bytes, why: str) -> None:
    (out,) = decode_all([("c2s", payload)])
    assert out.error is not None and why in out.error
    assert out.summary.startswith("stomp: not a STOMP frame (")


def test_a_frame_that_never_ends_is_bounded() -> None:
    conn = StompConnection()
    outs = [conn.decode("c2s", 1, b"SEND\n\n")]
    outs += [conn.decode("c2s", 1, b"x" * 65536) for _ in range(16)]
    assert all(x.continued for x in outs[:-1])
    assert outs[-1].error is not None and "without its NUL" in outs[-1].error
    assert conn.decode("c2s", 1, b"SEND\n\n\x00").summary == "stomp SEND"


@given(st.lists(st.binary(max_size=60) | st.sampled_from(
    [b"SEND\n", b"destination:/a\\c\n", b"\n", b"\x00", b"content-length:3\n", b"MESSAGE\n\n"])))
def test_random_messages_never_raise(messages: list[bytes]) -> None:
    conn = StompConnection("1.1")
    for payload in messages:
        out = conn.decode("s2c", 1, payload)
        assert out.protocol == "stomp"
        out.to_dict()
