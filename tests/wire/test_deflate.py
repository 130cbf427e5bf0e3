"""permessage-deflate: negotiation parsing, offer stripping and the display-only inflater,
checked against real compressors (zlib and the ``websockets`` extension)."""

from __future__ import annotations

import hashlib
import json
import os
import time
import tracemalloc
import zlib

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from websockets.extensions.permessage_deflate import PerMessageDeflate
from websockets.frames import Frame as WsFrame
from websockets.frames import Opcode as WsOpcode

from wsinspect.wire.deflate import (
    DeflateParams,
    ExtensionError,
    Inflater,
    negotiated_deflate,
    parse_extensions,
    strip_permessage_deflate,
)
from wsinspect.wire.frames import Frame, Opcode, encode_frame
from wsinspect.wire.inspector import Inspector
from wsinspect.wire.messages import Message

# --- negotiation -------------------------------------------------------------------------------


def test_extension_header_parses_names_params_and_quoted_values() -> None:
    assert parse_extensions('permessage-deflate; client_max_window_bits="10"; x, foo ; a=b') == [
        ("permessage-deflate", [("client_max_window_bits", "10"), ("x", None)]),
        ("foo", [("a", "b")]),
    ]


def test_negotiated_parameters_are_read() -> None:
    value = (
        "permessage-deflate; server_no_context_takeover; client_no_context_takeover; "
        "server_max_window_bits=10; client_max_window_bits=9"
    )
    assert negotiated_deflate(value) == DeflateParams(True, True, 10, 9)


def test_no_permessage_deflate_in_the_answer_means_none() -> None:
    assert negotiated_deflate(None) is None
    assert negotiated_deflate("x-webkit-deflate-frame") is None


def test_each_direction_uses_its_senders_parameters() -> None:
    params = DeflateParams(server_no_context_takeover=True, client_max_window_bits=9)
    assert params.for_direction("s2c") == (15, True)
    assert params.for_direction("c2s") == (9, False)


@pytest.mark.parametrize(
    "value",
    [
        "permessage-deflate; unknown=1",
        "permessage-deflate; server_no_context_takeover; server_no_context_takeover",
        "permessage-deflate; client_no_context_takeover=yes",
        "permessage-deflate; server_max_window_bits=16",
        "permessage-deflate; server_max_window_bits=7",
        "permessage-deflate; server_max_window_bits=010",
        "permessage-deflate; client_max_window_bits",  # a server's answer must give a value
        "permessage-deflate, permessage-deflate",
        'permessage-deflate; server_max_window_bits="10',
    ],
)
def test_invalid_answers_are_rejected(value: str) -> None:
    with pytest.raises(ExtensionError):
        negotiated_deflate(value)


def test_stripping_a_browser_offer_leaves_no_header() -> None:
    assert strip_permessage_deflate("permessage-deflate; client_max_window_bits") is None


def test_stripping_keeps_other_extensions_in_order() -> None:
    value = 'x-a; q="1,2", permessage-deflate; server_no_context_takeover, permessage-deflate, x-b'
    assert strip_permessage_deflate(value) == 'x-a; q="1,2", x-b'


def test_stripping_nothing() -> None:
    assert strip_permessage_deflate(None) is None
    assert strip_permessage_deflate("x-foo") == "x-foo"


# --- helpers: frames compressed by websockets' own permessage-deflate ---------------------------


def encoder(bits: int = 15, no_context_takeover: bool = False) -> PerMessageDeflate:
    """websockets' extension object; its ``encode`` compresses our outgoing frames."""
    return PerMessageDeflate(False, no_context_takeover, 15, bits)


def compressed(
    ext: PerMessageDeflate,
    data: bytes,
    *,
    opcode: WsOpcode = WsOpcode.TEXT,
    fin: bool = True,
    mask: bool = False,
) -> bytes:
    return WsFrame(opcode, data, fin).serialize(mask=mask, extensions=[ext])


def inflated(frames: list[Frame]) -> list[bytes]:
    return [f.message.payload for f in frames if f.message is not None]


def chat(n: int) -> list[bytes]:
    return [
        json.dumps({"seq": i, "user": "ada", "text": f"message number {i} — héllo " * 3}).encode()
        for i in range(n)
    ]


# --- inflating ---------------------------------------------------------------------------------


def test_server_messages_with_context_takeover_inflate_over_a_long_session() -> None:
    ext = encoder()
    msgs = chat(300)
    inspector = Inspector("s2c", extensions="permessage-deflate")
    frames = inspector.feed(b"".join(compressed(ext, m) for m in msgs))
    assert inflated(frames) == msgs
    assert all(not f.violations for f in frames)
    last = frames[-1].message
    assert last is not None and last.compressed
    # Context takeover at work: later messages are much smaller on the wire than inflated.
    assert last.wire_len < last.length // 3
    assert last.length == len(msgs[-1])


def test_frame_events_keep_the_compressed_wire_payload() -> None:
    ext = encoder()
    data = compressed(ext, b"hello hello hello")
    (frame,) = Inspector("s2c", extensions="permessage-deflate").feed(data)
    assert frame.rsv1
    assert frame.payload == data[2:]
    assert frame.message is not None and frame.message.payload == b"hello hello hello"


def test_client_messages_without_context_takeover_and_small_window() -> None:
    ext = encoder(bits=9, no_context_takeover=True)
    msgs = chat(50)
    extensions = "permessage-deflate; client_no_context_takeover; client_max_window_bits=9"
    inspector = Inspector("c2s", extensions=extensions)
    frames = inspector.feed(b"".join(compressed(ext, m, mask=True) for m in msgs))
    assert inflated(frames) == msgs
    assert all(not f.violations for f in frames)


@pytest.mark.parametrize("bits", [9, 10])
def test_small_server_window_bits_with_context_takeover(bits: int) -> None:
    ext = encoder(bits=bits)
    msgs = [os.urandom(300) + m + os.urandom(300) for m in chat(40)]
    extensions = f"permessage-deflate; server_max_window_bits={bits}"
    frames = Inspector("s2c", extensions=extensions).feed(
        b"".join(compressed(ext, m, opcode=WsOpcode.BINARY) for m in msgs)
    )
    assert inflated(frames) == msgs
    assert all(not f.violations for f in frames)


def test_a_peer_using_a_bigger_window_than_negotiated_is_flagged() -> None:
    block = os.urandom(2000)
    ext = encoder(bits=15)  # compresses with a 32 KiB window although 9 (512 bytes) was agreed
    data = compressed(ext, block, opcode=WsOpcode.BINARY) + compressed(
        ext, block, opcode=WsOpcode.BINARY
    )
    frames = Inspector("s2c", extensions="permessage-deflate; server_max_window_bits=9").feed(data)
    # The second message refers 2000 bytes back into the first: beyond a 512-byte window.
    assert frames[0].violations == ()
    assert [(v.rule, v.section, v.side) for v in frames[1].violations] == [
        ("inflate-error", "RFC 7692 §7.2.2", "server")
    ]


def test_fragmented_compressed_message_inflates_whole() -> None:
    ext = encoder()
    parts = [b'{"part": 1, "text": "' + b"a" * 500, b"b" * 500, b'"}']
    data = (
        compressed(ext, parts[0], fin=False)
        + encode_frame(Opcode.PING, b"between")
        + compressed(ext, parts[1], opcode=WsOpcode.CONT, fin=False)
        + compressed(ext, parts[2], opcode=WsOpcode.CONT)
        + compressed(ext, b"next message")
    )
    frames = Inspector("s2c", extensions="permessage-deflate").feed(data)
    assert [f.rsv1 for f in frames] == [True, False, False, False, True]
    assert inflated(frames) == [b"".join(parts), b"next message"]
    assert frames[3].message is not None and frames[3].message.frames == 3
    assert all(not f.violations for f in frames)


@settings(max_examples=60, deadline=None)
@given(st.data())
def test_compressed_stream_split_anywhere_inflates_the_same(data: st.DataObject) -> None:
    stream = SESSION
    splits = sorted(data.draw(st.lists(st.integers(0, len(stream)), max_size=30)))
    inspector = Inspector("c2s", extensions="permessage-deflate")
    frames: list[Frame] = []
    prev = 0
    for cut in [*splits, len(stream)]:
        frames += inspector.feed(stream[prev:cut])
        prev = cut
    assert inflated(frames) == SESSION_MESSAGES


def _session() -> tuple[bytes, list[bytes]]:
    ext = encoder()
    msgs = chat(30)
    out = []
    for i, m in enumerate(msgs):
        if i % 5 == 0:  # some fragmented ones
            out.append(compressed(ext, m[:40], fin=False, mask=True))
            out.append(compressed(ext, m[40:], opcode=WsOpcode.CONT, mask=True))
        else:
            out.append(compressed(ext, m, mask=True))
    return b"".join(out), msgs


SESSION, SESSION_MESSAGES = _session()


def test_one_byte_reads_inflate_the_same() -> None:
    inspector = Inspector("c2s", extensions="permessage-deflate")
    frames: list[Frame] = []
    for i in range(len(SESSION)):
        frames += inspector.feed(SESSION[i : i + 1])
    assert inflated(frames) == SESSION_MESSAGES


def test_uncompressed_messages_between_compressed_ones_keep_the_context() -> None:
    ext = encoder()
    data = (
        compressed(ext, b"first first first")
        + encode_frame(Opcode.TEXT, b"injected, RSV1 clear")
        + compressed(ext, b"first first first again")
    )
    frames = Inspector("s2c", extensions="permessage-deflate").feed(data)
    assert inflated(frames) == [
        b"first first first",
        b"injected, RSV1 clear",
        b"first first first again",
    ]
    assert [f.message.compressed for f in frames if f.message] == [True, False, True]


def test_raw_zlib_stream_with_sync_flush_inflates() -> None:
    comp = zlib.compressobj(wbits=-10)
    payload = comp.compress(b"plain zlib") + comp.flush(zlib.Z_SYNC_FLUSH)
    assert payload.endswith(b"\x00\x00\xff\xff")
    frames = Inspector("s2c", extensions="permessage-deflate; server_max_window_bits=10").feed(
        encode_frame(Opcode.TEXT, payload[:-4], rsv1=True)
    )
    assert inflated(frames) == [b"plain zlib"]


def test_text_is_utf8_checked_after_inflating() -> None:
    ext = encoder()
    data = compressed(ext, "naïve ✓".encode()) + compressed(ext, b"bad \xff byte")
    frames = Inspector("s2c", extensions="permessage-deflate").feed(data)
    assert [[(v.rule, v.section, v.close_code) for v in f.violations] for f in frames] == [
        [],
        [("invalid-utf8", "RFC 6455 §8.1", 1007)],
    ]


def test_utf8_split_across_compressed_fragments_is_valid() -> None:
    ext = encoder()
    text = "€" * 10
    raw = text.encode()
    data = compressed(ext, raw[:4], fin=False) + compressed(ext, raw[4:], opcode=WsOpcode.CONT)
    frames = Inspector("s2c", extensions="permessage-deflate").feed(data)
    assert all(not f.violations for f in frames)
    assert inflated(frames) == [raw]


def test_inflated_size_counts_against_max_message_size() -> None:
    ext = encoder()
    frames = Inspector("s2c", extensions="permessage-deflate", max_message_size=1000).feed(
        compressed(ext, b"a" * 5000)
    )
    assert frames[0].length < 1000
    assert [v.rule for v in frames[0].violations] == ["message-too-big"]


HELLO = b"hello world, hello world, the same words again and again " * 4


def test_inflate_error_is_a_violation_and_a_message_needing_the_lost_context_is_a_notice() -> None:
    ext = encoder()
    data = (
        compressed(ext, HELLO)
        + encode_frame(Opcode.TEXT, b"\xff\xff\xff\xff garbage", rsv1=True)
        + compressed(ext, HELLO + b"and more")  # refers back to the first message
    )
    frames = Inspector("s2c", extensions="permessage-deflate").feed(data)
    assert [[v.rule for v in f.violations] for f in frames] == [
        [],
        ["inflate-error"],
        ["not-decodable"],
    ]
    assert frames[1].violations[0].section == "RFC 7692 §7.2.2"
    assert frames[2].violations[0].is_notice
    after = frames[2].message
    assert after is not None and after.note is not None and after.sha256 is None
    assert HELLO.startswith(after.payload)  # what inflated before the reference is right


def test_after_a_bad_message_a_message_not_needing_the_context_reads() -> None:
    ext = encoder()
    novel = os.urandom(600).hex().encode()  # nothing in it refers to earlier messages
    data = (
        compressed(ext, HELLO)
        + encode_frame(Opcode.TEXT, b"\xff\xff\xff\xff garbage", rsv1=True)
        + compressed(ext, novel)
        + compressed(ext, novel[:500] + novel[700:800])  # refers to the previous one only
    )
    frames = Inspector("s2c", extensions="permessage-deflate").feed(data)
    assert [[v.rule for v in f.violations] for f in frames] == [[], ["inflate-error"], [], []]
    assert inflated(frames)[2:] == [novel, novel[:500] + novel[700:800]]


def test_context_is_whole_again_after_a_window_of_output() -> None:
    inflater = Inflater(9)
    comp = zlib.compressobj(wbits=-9)

    def message(data: bytes) -> bytes:
        return (comp.compress(data) + comp.flush(zlib.Z_SYNC_FLUSH))[:-4]

    inflater.begin()
    inflater.feed(b"\xff\xff garbage", final=True)
    assert inflater.status == "error" and inflater.context_lost is not None
    comp.compress(b"lost")  # pretend the sender compressed it
    inflater.begin()
    inflater.feed(message(os.urandom(100)), final=True)
    assert inflater.status == "ok" and inflater.context_lost is not None
    inflater.begin()
    inflater.feed(message(os.urandom(600)), final=True)  # more than the 512-byte window
    assert inflater.status == "ok" and inflater.context_lost is None


def test_a_message_after_bfinal_inflates_unless_it_refers_to_the_old_window() -> None:
    first = zlib.compressobj(wbits=-15)
    ended = first.compress(HELLO) + first.flush(zlib.Z_FINISH)  # BFINAL: the stream ends
    with_dict = zlib.compressobj(wbits=-15, zdict=HELLO)  # goes on from the old window
    refers = (with_dict.compress(HELLO) + with_dict.flush(zlib.Z_SYNC_FLUSH))[:-4]
    fresh = zlib.compressobj(wbits=-15)  # starts anew
    anew = (fresh.compress(b"a new start") + fresh.flush(zlib.Z_SYNC_FLUSH))[:-4]
    data = b"".join(encode_frame(Opcode.TEXT, p, rsv1=True) for p in (ended, refers, anew))
    frames = Inspector("s2c", extensions="permessage-deflate").feed(data)
    assert [[v.rule for v in f.violations] for f in frames] == [[], ["not-decodable"], []]
    assert inflated(frames)[0] == HELLO
    assert inflated(frames)[2] == b"a new start"


def test_without_context_takeover_a_bad_message_does_not_spoil_the_next() -> None:
    ext = encoder(no_context_takeover=True)
    data = encode_frame(Opcode.BINARY, b"\xff\xff garbage", rsv1=True) + compressed(ext, b"fine")
    frames = Inspector("s2c", extensions="permessage-deflate; server_no_context_takeover").feed(
        data
    )
    assert [[v.rule for v in f.violations] for f in frames] == [["inflate-error"], []]
    assert inflated(frames)[1] == b"fine"


def test_invalid_negotiation_is_reported_and_inflated_leniently() -> None:
    inspector = Inspector("s2c", extensions="permessage-deflate; bogus")
    assert inspector.extension_error is not None and "bogus" in inspector.extension_error
    assert inflated(inspector.feed(compressed(encoder(), b"still shown"))) == [b"still shown"]


def test_a_similar_extension_name_does_not_enable_inflating() -> None:
    inspector = Inspector("s2c", extensions="x-permessage-deflate-draft")
    assert not inspector.compressed
    frames = inspector.feed(encode_frame(Opcode.TEXT, b"x", rsv1=True))
    assert [v.rule for v in frames[0].violations] == ["rsv-without-extension"]


def test_compressed_frame_longer_than_the_capture_limit_inflates_whole() -> None:
    ext = encoder()
    big = os.urandom(3000)
    data = compressed(ext, big, opcode=WsOpcode.BINARY) + compressed(ext, b"then short")
    frames = Inspector("s2c", extensions="permessage-deflate", capture_limit=1000).feed(data)
    assert frames[0].truncated and all(not f.violations for f in frames)
    m = frames[0].message
    assert m is not None and m.truncated and m.note is None
    assert (m.payload, m.length, m.sha256) == (big[:1000], 3000, sha(big))
    assert inflated(frames)[1] == b"then short"


def sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _long_session() -> tuple[bytes, list[bytes]]:
    """Masked, context takeover: long messages (compressible and not, some fragmented, one
    with a long continuation) between short ones."""
    ext = encoder()
    rnd = os.urandom(6000)
    msgs = [
        b"short one",
        b"compressible " * 800,
        os.urandom(5000),
        b"short two, compressible " * 2,
        rnd + rnd,
        b"fragmented: " + os.urandom(3000) + b" end",
        b"short three",
    ]
    out = []
    for i, m in enumerate(msgs):
        op = WsOpcode.TEXT if i % 2 == 0 and _is_text(m) else WsOpcode.BINARY
        if m.startswith(b"fragmented"):
            out.append(compressed(ext, m[:10], opcode=op, fin=False, mask=True))
            out.append(encode_frame(Opcode.PING, b"ping between", mask_key=b"abcd"))
            out.append(compressed(ext, m[10:-4], opcode=WsOpcode.CONT, fin=False, mask=True))
            out.append(compressed(ext, m[-4:], opcode=WsOpcode.CONT, mask=True))
        else:
            out.append(compressed(ext, m, opcode=op, mask=True))
    return b"".join(out), msgs


def _is_text(data: bytes) -> bool:
    try:
        data.decode()
    except UnicodeDecodeError:
        return False
    return True


LONG_SESSION, LONG_MESSAGES = _long_session()
LONG_LIMIT = 200


def _expected(msgs: list[bytes], limit: int) -> list[tuple[bytes, int, str | None]]:
    return [(m[:limit], len(m), sha(m) if len(m) > limit else None) for m in msgs]


def _read(frames: list[Frame]) -> list[tuple[bytes, int, str | None]]:
    return [(f.message.payload, f.message.length, f.message.sha256) for f in frames if f.message]


@settings(max_examples=60, deadline=None)
@given(st.data())
def test_long_compressed_messages_split_anywhere_inflate_whole(data: st.DataObject) -> None:
    stream = LONG_SESSION
    splits = sorted(data.draw(st.lists(st.integers(0, len(stream)), max_size=40)))
    inspector = Inspector("c2s", extensions="permessage-deflate", capture_limit=LONG_LIMIT)
    frames: list[Frame] = []
    prev = 0
    for cut in [*splits, len(stream)]:
        frames += inspector.feed(stream[prev:cut])
        prev = cut
    assert _read(frames) == _expected(LONG_MESSAGES, LONG_LIMIT)
    assert all(not f.violations for f in frames)
    assert [f.message_no for f in frames if f.message] == list(range(1, len(LONG_MESSAGES) + 1))


def test_long_compressed_messages_fed_one_byte_at_a_time_inflate_whole() -> None:
    inspector = Inspector("c2s", extensions="permessage-deflate", capture_limit=LONG_LIMIT)
    frames: list[Frame] = []
    for i in range(len(LONG_SESSION)):
        frames += inspector.feed(LONG_SESSION[i : i + 1])
    assert _read(frames) == _expected(LONG_MESSAGES, LONG_LIMIT)
    assert all(not f.violations for f in frames)


@pytest.mark.parametrize("limit", [1, 125, 126, 4096, 1 << 20])
def test_long_compressed_messages_inflate_whole_at_any_capture_limit(limit: int) -> None:
    inspector = Inspector("c2s", extensions="permessage-deflate", capture_limit=limit)
    frames = inspector.feed(LONG_SESSION)
    assert _read(frames) == _expected(LONG_MESSAGES, limit)
    assert all(not f.violations for f in frames)


def test_long_uncompressed_frame_between_compressed_ones_is_one_message() -> None:
    ext = encoder()
    plain = os.urandom(5000)
    data = (
        compressed(ext, HELLO)
        + encode_frame(Opcode.BINARY, plain)
        + compressed(ext, HELLO + b"!")
    )
    frames = Inspector("s2c", extensions="permessage-deflate", capture_limit=100).feed(data)
    assert [f.message_no for f in frames] == [1, 2, 3]
    assert all(not f.violations for f in frames)
    second, third = frames[1].message, frames[2].message
    assert second is not None and not second.compressed and second.length == 5000
    assert third is not None and (third.length, third.payload) == (len(HELLO) + 1, HELLO[:100])


def test_long_compressed_text_is_utf8_checked_over_its_kept_part() -> None:
    ext = encoder()
    text = "héllo wörld ".encode() * 1000
    frames = Inspector("s2c", extensions="permessage-deflate", capture_limit=1001).feed(
        compressed(ext, text) + compressed(ext, b"\xff not utf-8")
    )
    assert [[v.rule for v in f.violations] for f in frames] == [[], ["invalid-utf8"]]
    assert frames[0].message is not None and frames[0].message.sha256 == sha(text)


# --- decompression bombs -----------------------------------------------------------------------

BOMB_SIZE = 200 << 20


def _bomb() -> bytes:
    comp = zlib.compressobj(9, zlib.DEFLATED, -15)
    zeros = bytes(1 << 20)
    out = [comp.compress(zeros) for _ in range(BOMB_SIZE >> 20)]
    out.append(comp.flush(zlib.Z_SYNC_FLUSH))
    return b"".join(out)[:-4]


def _zeros_sha256(n: int) -> str:
    h = hashlib.sha256()
    zeros = bytes(1 << 20)
    for _ in range(n >> 20):
        h.update(zeros)
    return h.hexdigest()


@pytest.fixture(scope="module")
def bomb() -> bytes:
    return _bomb()


@pytest.mark.parametrize("limit", [1 << 20, 1024])
def test_bomb_is_inflated_to_its_end_with_flat_memory(bomb: bytes, limit: int) -> None:
    assert len(bomb) < 256 << 10  # ~200 KiB on the wire for 200 MiB inflated
    inspector = Inspector("s2c", extensions="permessage-deflate", capture_limit=limit)
    data = encode_frame(Opcode.BINARY, bomb, rsv1=True)
    tracemalloc.start()
    t0 = time.monotonic()
    try:
        frames: list[Frame] = []
        for i in range(0, len(data), 64 << 10):  # the relay reads up to 256 KiB
            frames += inspector.feed(data[i : i + (64 << 10)])
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    elapsed = time.monotonic() - t0
    (frame,) = frames
    m = frame.message
    assert isinstance(m, Message)
    assert m.payload == bytes(limit)  # the capture limit
    assert m.truncated and m.compressed and m.note is None and frame.violations == ()
    assert (m.length, m.sha256) == (BOMB_SIZE, _zeros_sha256(BOMB_SIZE))
    # Memory: the captured wire payload, the capture-limited output and zlib's steps only.
    assert peak < 8 << 20, peak
    assert elapsed < 30  # CPU time in proportion to the inflated size (well under a second)


def test_after_a_bomb_with_context_takeover_the_next_message_decodes(bomb: bytes) -> None:
    ext = encoder()
    inspector = Inspector("s2c", extensions="permessage-deflate", capture_limit=1024)
    frames = inspector.feed(encode_frame(Opcode.BINARY, bomb, rsv1=True) + compressed(ext, b"x"))
    assert all(not f.violations for f in frames)
    assert inflated(frames)[1] == b"x"


def test_after_a_bomb_without_context_takeover_the_next_message_decodes(bomb: bytes) -> None:
    ext = encoder(no_context_takeover=True)
    inspector = Inspector("s2c", extensions="permessage-deflate; server_no_context_takeover")
    frames = inspector.feed(encode_frame(Opcode.BINARY, bomb, rsv1=True) + compressed(ext, b"ok"))
    assert frames[1].violations == ()
    assert inflated(frames)[1] == b"ok"


def test_message_over_the_capture_limit_keeps_the_context() -> None:
    ext = encoder()
    big = os.urandom(1000) * 200  # compresses well: far below the capture limit on the wire
    frames = Inspector("s2c", extensions="permessage-deflate", capture_limit=100_000).feed(
        compressed(ext, big, opcode=WsOpcode.BINARY) + compressed(ext, b"then this")
    )
    assert frames[0].length < 100_000
    first, second = (f.message for f in frames)
    assert first is not None and first.length == 200_000 and first.truncated
    assert first.payload == big[:100_000] and first.sha256 == sha(big)
    assert first.note is None and frames[0].violations == ()
    assert second is not None and second.payload == b"then this" and second.sha256 is None


def test_inflater_alone_inflates_everything_keeping_the_capture_limit() -> None:
    inflater = Inflater(15, capture_limit=10)
    comp = zlib.compressobj(wbits=-15)
    inflater.begin()
    data = comp.compress(bytes(8 << 20)) + comp.flush(zlib.Z_SYNC_FLUSH)[:-4]
    piece = inflater.feed(data[:1000], final=False) + inflater.feed(data[1000:], final=True)
    assert piece == bytes(10) and inflater.payload() == bytes(10)
    assert inflater.status == "ok" and inflater.truncated
    assert (inflater.length, inflater.sha256) == (8 << 20, _zeros_sha256(8 << 20))


def test_inflater_keeps_no_digest_for_a_message_within_the_capture_limit() -> None:
    inflater = Inflater(15, capture_limit=10)
    comp = zlib.compressobj(wbits=-15)
    inflater.begin()
    assert inflater.feed(comp.compress(bytes(10)) + comp.flush(zlib.Z_SYNC_FLUSH), final=True)
    assert (inflater.length, inflater.sha256, inflater.truncated) == (10, None, False)
