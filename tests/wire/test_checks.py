"""Each protocol violation is detected, with its rule, RFC section, side at fault and close code."""

from __future__ import annotations

import pytest

from wsinspect.wire.checks import RULES, Checker, Violation
from wsinspect.wire.frames import Frame, Opcode, encode_frame
from wsinspect.wire.inspector import Inspector

KEY = b"\x01\x02\x03\x04"


def feed(direction: str, data: bytes, **kw: object) -> list[Frame]:
    inspector = Inspector(direction, **kw)  # type: ignore[arg-type]
    return inspector.feed(data)


def rules(frames: list[Frame]) -> list[list[str]]:
    return [[v.rule for v in f.violations] for f in frames]


def client(opcode: int, payload: bytes = b"", **kw: object) -> bytes:
    return encode_frame(opcode, payload, mask_key=KEY, **kw)  # type: ignore[arg-type]


def only(frames: list[Frame], index: int = -1) -> Violation:
    (v,) = frames[index].violations
    return v


def test_clean_traffic_has_no_violations() -> None:
    data = (
        client(Opcode.TEXT, "héllo".encode())
        + client(Opcode.TEXT, b"a", fin=False)
        + client(Opcode.PING, b"x")
        + client(Opcode.CONTINUATION, b"b")
        + client(Opcode.BINARY, bytes(70000))
        + client(Opcode.CLOSE, (1000).to_bytes(2, "big") + b"done")
    )
    assert rules(feed("c2s", data)) == [[]] * 6


def test_unmasked_client_frame_is_the_clients_fault() -> None:
    v = only(feed("c2s", encode_frame(Opcode.TEXT, b"hi")))
    assert (v.rule, v.section, v.side, v.close_code) == (
        "unmasked-client-frame",
        "RFC 6455 §5.1",
        "client",
        1002,
    )


def test_masked_server_frame_is_the_servers_fault() -> None:
    v = only(feed("s2c", client(Opcode.TEXT, b"hi")))
    assert (v.rule, v.section, v.side) == ("masked-server-frame", "RFC 6455 §5.1", "server")


def test_rsv1_without_negotiated_extension() -> None:
    v = only(feed("s2c", encode_frame(Opcode.TEXT, b"hi", rsv1=True)))
    assert (v.rule, v.section, v.side) == ("rsv-without-extension", "RFC 6455 §5.2", "server")


def test_rsv2_and_rsv3_are_violations_even_with_deflate() -> None:
    frames = feed(
        "s2c",
        encode_frame(Opcode.BINARY, b"x", rsv2=True, rsv3=True),
        extensions="permessage-deflate",
    )
    v = only(frames)
    assert (v.rule, v.section) == ("rsv-without-extension", "RFC 6455 §5.2")
    assert "RSV2+RSV3" in v.message


def test_rsv1_on_control_frame_with_deflate() -> None:
    v = only(
        feed("s2c", encode_frame(Opcode.PING, b"", rsv1=True), extensions="permessage-deflate")
    )
    assert (v.rule, v.section, v.side) == ("rsv1-on-control-frame", "RFC 7692 §6", "server")


def test_rsv1_on_continuation_frame_with_deflate() -> None:
    data = encode_frame(Opcode.TEXT, b"a", fin=False) + encode_frame(
        Opcode.CONTINUATION, b"b", rsv1=True
    )
    frames = feed("s2c", data, extensions="permessage-deflate")
    assert rules(frames) == [[], ["rsv1-on-continuation"]]
    assert frames[1].violations[0].section == "RFC 7692 §6"


def test_reserved_opcode() -> None:
    frames = feed("c2s", client(0x3, b"?") + client(0xB, b"?"))
    assert rules(frames) == [["reserved-opcode"], ["reserved-opcode"]]
    assert frames[0].violations[0].section == "RFC 6455 §5.2"
    assert frames[0].message_no == 0


def test_non_minimal_16_bit_length() -> None:
    v = only(feed("s2c", b"\x82\x7e\x00\x05hello"))
    assert (v.rule, v.section, v.side) == ("non-minimal-length", "RFC 6455 §5.2", "server")


def test_non_minimal_64_bit_length() -> None:
    data = b"\x82\xff" + (300).to_bytes(8, "big") + KEY + bytes(300)
    v = only(feed("c2s", data))
    assert (v.rule, v.side) == ("non-minimal-length", "client")


def test_64_bit_length_with_top_bit_set_is_reported_while_the_frame_is_pending() -> None:
    inspector = Inspector("s2c")
    assert inspector.feed(b"\x82\x7f" + ((1 << 63) + 1).to_bytes(8, "big") + b"abc") == []
    pending = inspector.pending()
    assert pending is not None
    frame, violations = pending
    assert frame.length == (1 << 63) + 1
    assert [(v.rule, v.section, v.side) for v in violations] == [
        ("length-msb-set", "RFC 6455 §5.2", "server")
    ]


def test_control_frame_over_125_bytes() -> None:
    v = only(feed("c2s", client(Opcode.PING, bytes(126))))
    assert (v.rule, v.section, v.side) == ("control-frame-too-long", "RFC 6455 §5.5", "client")


def test_fragmented_control_frame() -> None:
    v = only(feed("s2c", encode_frame(Opcode.PONG, b"", fin=False)))
    assert (v.rule, v.section) == ("fragmented-control-frame", "RFC 6455 §5.5")


def test_continuation_without_a_started_message() -> None:
    data = client(Opcode.CONTINUATION, b"a", fin=False) + client(Opcode.CONTINUATION, b"b")
    frames = feed("c2s", data)
    # Flagged once: the orphan starts a message of its own, which its follower continues.
    assert rules(frames) == [["continuation-without-message"], []]
    assert frames[0].violations[0].section == "RFC 6455 §5.4"
    assert frames[0].violations[0].side == "client"


def test_new_data_frame_inside_a_fragmented_message() -> None:
    data = client(Opcode.TEXT, b"a", fin=False) + client(Opcode.BINARY, b"b")
    frames = feed("c2s", data)
    assert rules(frames) == [[], ["data-frame-inside-message"]]
    assert frames[1].violations[0].section == "RFC 6455 §5.4"
    assert frames[1].message_no == 2


def test_control_frame_inside_a_fragmented_message_is_fine() -> None:
    data = client(Opcode.TEXT, b"a", fin=False) + client(Opcode.PING) + client(Opcode.CONTINUATION)
    assert rules(feed("c2s", data)) == [[], [], []]


def test_invalid_utf8_in_an_unfragmented_text_message() -> None:
    v = only(feed("s2c", encode_frame(Opcode.TEXT, b"ok \xff")))
    assert (v.rule, v.section, v.side, v.close_code) == (
        "invalid-utf8",
        "RFC 6455 §8.1",
        "server",
        1007,
    )


def test_utf8_character_split_across_fragments_is_valid() -> None:
    euro = "€".encode()
    data = client(Opcode.TEXT, euro[:1], fin=False) + client(Opcode.CONTINUATION, euro[1:])
    assert rules(feed("c2s", data)) == [[], []]


def test_invalid_utf8_is_found_in_the_fragment_that_breaks_it() -> None:
    data = (
        client(Opcode.TEXT, b"ok", fin=False)
        + client(Opcode.CONTINUATION, b"\xc3", fin=False)
        + client(Opcode.CONTINUATION, b"(")
    )
    assert rules(feed("c2s", data)) == [[], [], ["invalid-utf8"]]


def test_text_ending_inside_a_character_is_invalid() -> None:
    data = client(Opcode.TEXT, b"ok", fin=False) + client(Opcode.CONTINUATION, b"\xe2\x82")
    assert rules(feed("c2s", data)) == [[], ["invalid-utf8"]]


def test_binary_messages_are_not_utf8_checked() -> None:
    assert rules(feed("s2c", encode_frame(Opcode.BINARY, b"\xff\xfe"))) == [[]]


def test_text_cut_at_the_capture_limit_is_not_blamed_for_the_cut_character() -> None:
    payload = "€".encode() * 100  # the 1-KiB... 300 bytes; a cut at 100 splits a character
    frames = feed("s2c", encode_frame(Opcode.TEXT, payload), capture_limit=100)
    assert rules(frames) == [[]]


def test_close_payload_of_one_byte() -> None:
    v = only(feed("c2s", client(Opcode.CLOSE, b"\x03")))
    assert (v.rule, v.section, v.side) == ("close-payload-1-byte", "RFC 6455 §5.5.1", "client")


@pytest.mark.parametrize("code", [0, 999, 1004, 1005, 1006, 1015, 1016, 2999, 5000])
def test_invalid_close_code(code: int) -> None:
    v = only(feed("s2c", encode_frame(Opcode.CLOSE, code.to_bytes(2, "big"))))
    assert (v.rule, v.section, v.side) == ("invalid-close-code", "RFC 6455 §7.4", "server")


@pytest.mark.parametrize("code", [1000, 1001, 1003, 1007, 1011, 1014, 3000, 4999])
def test_valid_close_codes_pass(code: int) -> None:
    assert rules(feed("s2c", encode_frame(Opcode.CLOSE, code.to_bytes(2, "big")))) == [[]]


def test_invalid_utf8_close_reason() -> None:
    v = only(feed("s2c", encode_frame(Opcode.CLOSE, b"\x03\xe8bad \xc0")))
    assert (v.rule, v.section, v.close_code) == ("invalid-close-reason", "RFC 6455 §5.5.1", 1007)


def test_any_frame_after_a_close_frame() -> None:
    data = encode_frame(Opcode.CLOSE, b"\x03\xe8") + encode_frame(Opcode.TEXT, b"late")
    frames = feed("s2c", data)
    assert rules(frames) == [[], ["frame-after-close"]]
    assert frames[1].violations[0].section == "RFC 6455 §5.5.1"


def test_message_over_max_message_size() -> None:
    frames = feed("s2c", encode_frame(Opcode.BINARY, bytes(101)), max_message_size=100)
    v = only(frames)
    assert (v.rule, v.close_code) == ("message-too-big", 1009)


def test_fragmented_message_over_max_message_size_is_flagged_once() -> None:
    data = (
        encode_frame(Opcode.TEXT, b"a" * 60, fin=False)
        + encode_frame(Opcode.CONTINUATION, b"a" * 60, fin=False)
        + encode_frame(Opcode.CONTINUATION, b"a" * 60)
    )
    frames = feed("s2c", data, max_message_size=100)
    assert rules(frames) == [[], ["message-too-big"], []]


def test_message_at_max_message_size_passes() -> None:
    assert rules(feed("s2c", encode_frame(Opcode.BINARY, bytes(100)), max_message_size=100)) == [[]]


def test_several_violations_on_one_frame_are_all_reported() -> None:
    frame = encode_frame(0x4, b"x", rsv3=True, mask_key=KEY)
    assert sorted(rules(feed("s2c", frame))[0]) == [
        "masked-server-frame",
        "reserved-opcode",
        "rsv-without-extension",
    ]


def test_every_rule_has_a_section_and_a_close_code() -> None:
    for rule, (section, code) in RULES.items():
        assert section.startswith("RFC "), rule
        assert code in (1002, 1007, 1009), rule


def test_violation_dict_form_round_trips() -> None:
    v = Violation("not-decodable", "RFC 7692 §7.1.1", "server", "lost", 1002, "notice")
    assert Violation.from_dict(v.to_dict()) == v
    plain = Violation("invalid-utf8", "RFC 6455 §8.1", "client", "bad", 1007)
    assert "severity" not in plain.to_dict()
    assert Violation.from_dict(plain.to_dict()) == plain


def test_checker_keeps_state_between_frames_it_is_fed() -> None:
    checker = Checker("c2s")
    first = Frame(False, False, False, False, 1, True, KEY, 1, b"\x01\x81" + KEY, b"a")
    assert checker.check(first) == []
    assert not checker.idle
    second = Frame(True, False, False, False, 1, True, KEY, 1, b"\x81\x81" + KEY, b"b")
    assert [v.rule for v in checker.check(second)] == ["data-frame-inside-message"]
    assert checker.idle
