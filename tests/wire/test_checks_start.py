"""``Checker.check_start``: what the header of a frame still arriving already shows, so that a
``--strict`` relay can act before a byte of its payload goes on (issue #11)."""

from __future__ import annotations

from wsinspect.wire.checks import Checker
from wsinspect.wire.frames import Opcode, encode_frame
from wsinspect.wire.inspector import Inspector

KEY = b"\x01\x02\x03\x04"
HUGE = (1 << 63) - 1


def huge_header(opcode: int = Opcode.BINARY, *, fin: bool = True, masked: bool = True,
                rsv1: bool = False) -> bytes:
    """The 14-byte header of a client frame declaring 2**63 - 1 bytes (no payload after it)."""
    b0 = (0x80 if fin else 0) | (0x40 if rsv1 else 0) | opcode
    return bytes([b0, 0xFF if masked else 0x7F]) + HUGE.to_bytes(8, "big") + (KEY if masked else b"")


def start(inspector: Inspector, data: bytes) -> list[str]:
    """Feed ``data`` (ending inside a frame) and return the rules ``check_start`` finds."""
    inspector.feed(data)
    frame = inspector.parser.current
    assert frame is not None, "the data must end inside a frame"
    return [v.rule for v in inspector.checker.check_start(frame)]


def client(opcode: int, payload: bytes = b"", **kw: object) -> bytes:
    return encode_frame(opcode, payload, mask_key=KEY, **kw)  # type: ignore[arg-type]


def test_a_frame_declaring_2_63_minus_1_bytes_is_too_big_from_its_header() -> None:
    inspector = Inspector("c2s", max_message_size=64 << 20)
    assert start(inspector, huge_header()) == ["message-too-big"]
    (v,) = inspector.checker.check_start(inspector.parser.current)  # type: ignore[arg-type]
    assert (v.section, v.side, v.close_code) == ("RFC 6455 §7.4.1", "client", 1009)


def test_without_a_limit_a_huge_data_frame_is_not_stopped_at_its_header() -> None:
    assert start(Inspector("c2s"), huge_header()) == []


def test_the_message_so_far_counts_for_a_continuation() -> None:
    inspector = Inspector("c2s", max_message_size=100)
    data = client(Opcode.TEXT, b"a" * 60, fin=False) + client(Opcode.CONTINUATION, b"b" * 41)
    assert start(inspector, data[:-1]) == ["message-too-big"]
    at_limit = Inspector("c2s", max_message_size=100)
    data = client(Opcode.TEXT, b"a" * 60, fin=False) + client(Opcode.CONTINUATION, b"b" * 40)
    assert start(at_limit, data[:-1]) == []


def test_check_start_changes_no_state_and_check_agrees_when_the_frame_completes() -> None:
    inspector = Inspector("c2s", max_message_size=100)
    data = client(Opcode.BINARY, bytes(101))
    assert start(inspector, data[:-1]) == ["message-too-big"]
    assert start(inspector, b"") == ["message-too-big"]  # asked again: the same answer
    (frame,) = inspector.feed(data[-1:])
    assert [v.rule for v in frame.violations] == ["message-too-big"]


def test_a_compressed_frame_longer_than_the_limit_on_the_wire_is_too_big() -> None:
    inspector = Inspector("c2s", extensions="permessage-deflate", max_message_size=1000)
    assert start(inspector, huge_header(rsv1=True)) == ["message-too-big"]
    checker = Checker("c2s", deflate=True, max_message_size=10)
    frame = Inspector("c2s").feed(client(Opcode.BINARY, bytes(11), rsv1=True))[0]
    assert [v.rule for v in checker.check(frame)] == ["message-too-big"]


def test_anything_after_a_close_frame_is_stopped_at_its_header() -> None:
    inspector = Inspector("c2s", max_message_size=1 << 20)
    data = client(Opcode.CLOSE, (1000).to_bytes(2, "big")) + client(Opcode.TEXT, b"late")
    assert start(inspector, data[:-1]) == ["frame-after-close"]


def test_a_huge_control_frame_is_stopped_at_its_header_with_or_without_a_limit() -> None:
    assert start(Inspector("c2s"), huge_header(Opcode.PING)) == ["control-frame-too-long"]


def test_a_length_with_its_top_bit_set_is_stopped_at_its_header() -> None:
    header = b"\x82\x7f" + ((1 << 63) + 1).to_bytes(8, "big")
    assert start(Inspector("s2c"), header) == ["length-msb-set"]


def test_other_header_rules_are_left_to_check() -> None:
    unmasked = huge_header(masked=False)
    assert start(Inspector("c2s"), unmasked) == []  # unmasked-client-frame: check() flags it


