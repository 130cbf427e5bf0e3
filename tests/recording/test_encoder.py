"""The recording's line encoder (``recording.encoder``) writes exactly the format
(``recording.format``): for every kind of event, ``json_line`` and the fast frame and message
lines are byte for byte ``dumps(to_dict(event))``, with the C helpers and with the pure-Python
ones; the C and Python ``scan_lines`` write the same lines as the encoder for the frames they
take; and a golden recording keeps the format itself from drifting silently."""

from __future__ import annotations

import hashlib
import json
import os
import random
import zlib
from dataclasses import fields
from pathlib import Path

import pytest
from recording_samples import T0, big_messages, every_kind, frames_for

from wsinspect import speedups
from wsinspect.events import (
    ConnectionClosed,
    ConnectionOpened,
    Event,
    FaultInjected,
    FrameSeen,
    HandshakeRejected,
    HttpExchange,
    MessageSeen,
    Notice,
)
from wsinspect.recording import encoder
from wsinspect.recording.encoder import (
    BIG,
    FAST_LINE_FIELDS,
    encode_lines_v2,
    frame_line,
    frame_line_v2,
    json_line,
    line_text,
    message_line,
    piece_bytes,
)
from wsinspect.recording.format import dumps, event_from_dict, to_dict
from wsinspect.recording.format_v2 import events_from_dict, line_dict, merges, to_line_dict
from wsinspect.recording.reader import read_events
from wsinspect.recording.writer import Recorder
from wsinspect.wire.checks import Violation
from wsinspect.wire.frames import Frame, encode_frame
from wsinspect.wire.messages import Message

GOLDEN = Path(__file__).with_name("golden_v1.jsonl")
GOLDEN_V2 = Path(__file__).with_name("golden_v2.jsonl")
REQUIRED = bool(os.environ.get("WSINSPECT_REQUIRE_SPEEDUPS"))


@pytest.fixture(params=["c", "python"])
def helpers(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> str:
    """Run a test with the encoder's C helpers (where built) and with the pure-Python ones."""
    if request.param == "c":
        if not speedups.HAVE_C:
            if REQUIRED:
                pytest.fail("wsinspect._speedups was not built (WSINSPECT_REQUIRE_SPEEDUPS is set)")
            pytest.skip("wsinspect._speedups is not built (no C compiler at install)")
        assert encoder._base64 is speedups.b64encode
    else:
        monkeypatch.setattr(encoder, "_base64", speedups.b64encode_py)
    return str(request.param)


TEXTS = [
    "",
    "a",
    "héllo wörld",
    'quote " backslash \\ slash /',
    "controls \x00\x01\x07\x08\t\n\x0b\x0c\r\x1b\x1f and DEL \x7f",
    "line separators \u2028\u2029, BOM \ufeff, astral 😀𝄞",
    "ascii " * 40,
    "é" * (BIG // 2 + 3),  # a big text payload, written as pieces
    "\n" * BIG,
]
BINARIES = [b"", b"\x00", b"\xff\xfe", bytes(range(256)), os.urandom(BIG - 1), os.urandom(BIG),
            os.urandom(3 * BIG + 1)]


def wire_variety(direction: str) -> bytes:
    """Frames of every shape, masked as ``direction`` demands (and a few that break rules)."""
    rng = random.Random(10)
    key = (lambda: rng.randbytes(4)) if direction == "c2s" else (lambda: None)
    parts = [encode_frame(1, t.encode(), mask_key=key()) for t in TEXTS]
    parts += [encode_frame(2, b, mask_key=key()) for b in BINARIES]
    parts += [
        encode_frame(1, b"frag", fin=False, mask_key=key()),  # a fragmented text message
        encode_frame(9, b"ping in between", mask_key=key()),
        encode_frame(0, "mént\xe9".encode(), mask_key=key()),
        encode_frame(0, b"ed", mask_key=key()),
        encode_frame(1, b"\xe2\x82", fin=False, mask_key=key()),  # a character cut between fragments
        encode_frame(0, b"\xac", mask_key=key()),
        encode_frame(2, b"bin", fin=False, mask_key=key()),
        encode_frame(0, b"text-like", mask_key=key()),
        encode_frame(1, b"\xff not utf-8", mask_key=key()),  # a violation
        encode_frame(1, b"rsv2", rsv2=True, mask_key=key()),  # a violation
        encode_frame(3, b"reserved opcode", mask_key=key()),
        encode_frame(10, b"pong", mask_key=key()),
        encode_frame(9, "ping text é".encode(), mask_key=key()),
        encode_frame(1, b"wrong mask", mask_key=None if direction == "c2s" else b"abcd"),
        encode_frame(8, (1000).to_bytes(2, "big") + "bye é".encode(), mask_key=key()),
        encode_frame(1, b"after close", mask_key=key()),
    ]
    return b"".join(parts)


def compressed_events() -> list[Event]:
    """A permessage-deflate connection: compressed text and binary messages (RSV1)."""
    out: list[Event] = []
    for n, (opcode, payload) in enumerate([(1, "compressé " * 50), (2, bytes(300)), (1, "")]):
        data = payload.encode() if isinstance(payload, str) else payload
        c = zlib.compressobj(wbits=-15)
        body = (c.compress(data) + c.flush(zlib.Z_SYNC_FLUSH))[:-4]
        wire = encode_frame(opcode, body, rsv1=True)
        out += frames_for("s2c", wire, conn=5, seq0=10 * n, ts=T0 + n,
                         extensions="permessage-deflate")
    assert any(isinstance(e, MessageSeen) and e.message.compressed for e in out)
    return out


def hand_made_events() -> list[Event]:
    """Events the relay makes rarely or not from bytes: undelivered, truncated, notes, unusual
    numbers."""
    frame = Frame(True, False, False, False, 2, True, None, 3, b"\x82\x83", b"abc")  # masked, key unknown
    weird = Frame(True, False, False, False, 1, False, None, 2, b"\x81\x02", b"hi", text=True,
                  message_no=7, fragment_index=0)
    truncated = Frame(True, False, False, False, 2, False, None, 5000, b"\x82\x7e\x13\x88",
                      b"x" * 10, sha256="ab" * 32)
    violating = Frame(True, False, False, False, 1, False, None, 1, b"\x81\x01", b"x", text=True,
                      violations=(Violation("rule", "RFC 6455 §5.2", "server", "what"),))
    return [
        FrameSeen(1, 1, "c2s", 0.0, frame),
        FrameSeen(1, 2, "s2c", T0, weird, delivered=False),
        FrameSeen(1, 3, "c2s", 1e22, weird),
        FrameSeen(2**40, 2**33, "c2s", 1.5e-7, weird),
        FrameSeen(1, 4, "s2c", T0, truncated),
        FrameSeen(1, 5, "s2c", T0, violating),
        FrameSeen(1, 6, "s2c", T0, Frame(True, False, False, False, 1, False, None, 0, b"", b"")),
        MessageSeen(1, "s2c", T0, Message(1, "é".encode(), 2, 2, 1), 1),
        MessageSeen(1, "s2c", T0, Message(2, b"", 0, 0, 3, truncated=True), 2),
        MessageSeen(1, "s2c", T0, Message(1, b"\xff", 1, 9, 1, compressed=True,
                                          note="inflate error: invalid block"), 3),
        MessageSeen(1, "c2s", 12345, Message(1, b"t", 1, 1, 1), 4),
        ConnectionOpened(1, T0, "[::1]:5000", "/p?q=é", "wss://h", (("A", "b\"c"),), 101, (),
                         "chat", "permessage-deflate"),
        ConnectionClosed(1, T0, "client", "close-handshake", 1000, "bye", (1000, "bye"),
                         (None, ""), 1.25, {"c2s": 1}, {"c2s": 2}, "detail"),
        HandshakeRejected(1, T0, "c", "/", 502, "upstream down", None, None, "upstream"),
        HttpExchange(1, T0, "c", "GET", "/", 200, 0, 0.0),
        FaultInjected(1, T0, "latency", "delayed", None, {"ms": [1, 2]}),
        FaultInjected(1, T0, "latency", "delayed"),
        Notice(T0, "error", "é \x00 \"", 3),
    ]


def broad_events() -> list[Event]:
    return [
        *every_kind(),
        *big_messages(),
        *frames_for("c2s", wire_variety("c2s"), capture_limit=2 * BIG),
        *frames_for("s2c", wire_variety("s2c"), capture_limit=2 * BIG, conn=3),
        *frames_for("s2c", wire_variety("s2c"), capture_limit=100, conn=4),  # truncated ones
        *compressed_events(),
        *hand_made_events(),
    ]


def test_fast_lines_know_every_field_of_the_event_types() -> None:
    # If this fails, an event type gained (or lost) a field: teach ``frame_line`` and
    # ``message_line`` about it (and ``FAST_LINE_FIELDS``), or their lines would miss it.
    for cls, names in FAST_LINE_FIELDS.items():
        assert tuple(f.name for f in fields(cls)) == names, cls.__name__


def test_fast_lines_are_the_same_text_as_the_general_path(helpers: str) -> None:
    # The recorder builds frame and message lines directly for speed; they must be exactly
    # what encoding ``to_dict()`` gives, for every kind of frame and message in the samples.
    checked = 0
    for event in every_kind():
        if isinstance(event, FrameSeen):
            line = frame_line(event)
            if line is None:
                continue
        elif isinstance(event, MessageSeen):
            line = message_line(event)
        else:
            continue
        assert line == dumps(to_dict(event))
        checked += 1
    assert checked >= 15


def test_big_payload_fast_lines_are_the_same_text_as_the_general_path(helpers: str) -> None:
    checked = 0
    for event in big_messages():
        if isinstance(event, FrameSeen):
            line = frame_line(event)
        elif isinstance(event, MessageSeen):
            line = message_line(event)
        if line is None:
            continue  # the frame with a violation takes the general path
        assert line_text(line) == dumps(to_dict(event))
        checked += not isinstance(line, str)
    assert checked >= 5  # frames and messages written as pieces


def test_every_event_is_encoded_as_its_dict_form(helpers: str) -> None:
    events = broad_events()
    kinds = set()
    fast = pieces = 0
    for event in events:
        expected = dumps(to_dict(event))
        assert json_line(event) == expected, event
        builder = {FrameSeen: frame_line, MessageSeen: message_line}.get(event.__class__)
        line = builder(event) if builder is not None else None  # type: ignore[operator]
        if line is not None:
            assert line_text(line) == expected, event
            fast += 1
            pieces += not isinstance(line, str)
        kinds.add(event.type)
    assert kinds == {"open", "frame", "message", "close", "rejected", "http", "fault", "action",
                     "notice"}
    assert fast >= 80 and pieces >= 10  # the fast lines were really tried, big payloads too


def test_a_message_line_right_after_its_frame_line_reuses_nothing_wrong(helpers: str) -> None:
    # A one-frame message reuses its frame's payload JSON: only for the very same bytes object.
    text = Frame(True, False, False, False, 1, False, None, 2, b"\x81\x02", b"hi", text=True,
                 message_no=1)
    text.message = Message(1, text.payload, 2, 2, 1)
    other = Message(2, b"hi", 2, 2, 1)  # same bytes value, binary: base64, not text
    for event in [FrameSeen(1, 1, "s2c", 1.0, text), MessageSeen(1, "s2c", 1.0, other, 1),
                  FrameSeen(1, 2, "s2c", 1.0, text), MessageSeen(1, "s2c", 1.0, text.message, 1)]:
        assert json_line(event) == dumps(to_dict(event))


def test_records_read_back_as_the_same_dict_forms() -> None:
    for event in broad_events():
        d = to_dict(event)
        back = event_from_dict(json.loads(dumps(d)))
        assert to_dict(back) == d


@pytest.mark.parametrize("which", ["c", "python"])
@pytest.mark.parametrize("direction", ["c2s", "s2c"])
def test_scan_lines_writes_the_encoders_lines(which: str, direction: str) -> None:
    if which == "c" and not speedups.HAVE_C:
        if REQUIRED:
            pytest.fail("wsinspect._speedups was not built (WSINSPECT_REQUIRE_SPEEDUPS is set)")
        pytest.skip("wsinspect._speedups is not built")
    scan = speedups.scan_lines if which == "c" else speedups.scan_lines_py
    rng = random.Random(3)
    key = (lambda: rng.randbytes(4)) if direction == "c2s" else (lambda: None)
    payloads = [(1, t.encode()) for t in TEXTS] + [(2, b) for b in BINARIES]
    wire = b"".join(encode_frame(op, p, mask_key=key()) for op, p in payloads)
    pos, seq, message_no, lines = scan(wire, 0, direction == "c2s", 1 << 20, 9, direction, T0, 0, 0)
    assert pos == len(wire) and seq == message_no == len(payloads)
    events = frames_for(direction, wire, conn=9, ts=T0, step=0)
    assert lines is not None
    expected = [dumps(line_dict(f, m)) + "\n" for f, m in zip(events[::2], events[1::2], strict=True)
                if isinstance(f, FrameSeen) and isinstance(m, MessageSeen) and merges(f, m)]
    assert len(expected) == len(payloads)
    assert lines.decode("utf-8") == "".join(expected)


# ---- format v2 -----------------------------------------------------------------------------


def v2_lines(events: list[Event]) -> list[tuple[Event, MessageSeen | None]]:
    """``events`` as the v2 writer groups them: a frame and the message it completes."""
    out: list[tuple[Event, MessageSeen | None]] = []
    i = 0
    while i < len(events):
        e = events[i]
        m = events[i + 1] if i + 1 < len(events) else None
        if isinstance(e, FrameSeen) and m is not None and merges(e, m):
            out.append((e, m))  # type: ignore[arg-type]
            i += 2
        else:
            out.append((e, None))
            i += 1
    return out


def test_v2_fast_frame_lines_are_the_same_text_as_the_general_path(helpers: str) -> None:
    fast = merged = pieces = 0
    for e, m in v2_lines(broad_events()):
        if e.__class__ is not FrameSeen:
            continue
        line = frame_line_v2(e, m)  # type: ignore[arg-type]
        if line is None:
            continue
        assert line_text(line) == dumps(line_dict(e, m)), e  # type: ignore[arg-type]
        fast += 1
        merged += m is not None
        pieces += not isinstance(line, str)
    assert fast >= 60 and merged >= 30 and pieces >= 5


def test_v2_lines_read_back_as_the_same_events(helpers: str) -> None:
    events = broad_events()
    back: list[Event] = []
    for e, m in v2_lines(events):
        d = line_dict(e, m) if isinstance(e, FrameSeen) else to_line_dict(e)  # type: ignore[arg-type]
        back += events_from_dict(json.loads(dumps(d)))
    assert [to_dict(e) for e in back] == [to_dict(e) for e in events]


def test_v2_stores_a_one_frame_message_once(helpers: str) -> None:
    payload = os.urandom(3 * BIG)
    events = frames_for("s2c", encode_frame(2, payload), conn=1)
    chunks, pos, count = encode_lines_v2(lambda e, m: pytest.fail("general path"),
                                         list(events), 0, len(events))
    text = b"".join(map(piece_bytes, chunks))
    assert pos == count == 2 and text.count(b"\n") == 1
    assert len(text) < 4 / 3 * len(payload) + 200
    assert [to_dict(e) for e in events_from_dict(json.loads(text))] == [to_dict(e) for e in events]


# ---- the golden recording ------------------------------------------------------------------


def golden_events() -> list[Event]:
    """A small fixed session (fixed mask keys and times): every event type, text with escapes,
    binary, fragments, control frames, a violation, a truncated and an undelivered frame, a
    compressed message."""
    keys = iter(bytes([i, 2 * i, 3 * i, 255 - i]) for i in range(1, 100))
    c2s = b"".join([
        encode_frame(1, 'héllo "wörld"\n\t\\ \x01'.encode(), mask_key=next(keys)),
        encode_frame(1, b"frag", fin=False, mask_key=next(keys)),
        encode_frame(9, b"ping", mask_key=next(keys)),
        encode_frame(0, b"mented", mask_key=next(keys)),
        encode_frame(2, bytes(range(0, 256, 7)), mask_key=next(keys)),
        encode_frame(8, (1000).to_bytes(2, "big") + b"bye", mask_key=next(keys)),
    ])
    s2c = b"".join([
        encode_frame(1, "😀 ok".encode()),
        encode_frame(2, b"\xff\xfe\x00"),
        encode_frame(1, b"masked by server", mask_key=b"abcd"),
        encode_frame(2, b"y" * 300),
        encode_frame(10, b"pong"),
        encode_frame(8, (1000).to_bytes(2, "big")),
    ])
    events: list[Event] = [
        ConnectionOpened(1, T0, "127.0.0.1:5000", "/chat", "ws://127.0.0.1:9000",
                         (("Host", "x"), ("Cookie", "c=1")), 101, (("Upgrade", "websocket"),),
                         "chat", None),
        *frames_for("c2s", c2s, ts=T0 + 0.25, step=0.125),
        *frames_for("s2c", s2c, seq0=50, ts=T0 + 0.5, step=0.125, capture_limit=200),
    ]
    first = events[-1]
    assert isinstance(first, FrameSeen)
    events[-1] = FrameSeen(first.conn, first.seq, first.direction, first.ts, first.frame,
                           delivered=False)
    c = zlib.compressobj(wbits=-15)
    body = (c.compress(b"compressed " * 20) + c.flush(zlib.Z_SYNC_FLUSH))[:-4]
    events += frames_for("s2c", encode_frame(1, body, rsv1=True), conn=2, ts=T0 + 1,
                         extensions="permessage-deflate")
    events += [
        ConnectionClosed(1, T0 + 2, "client", "close-handshake", 1000, "bye", (1000, "bye"),
                         (1000, ""), 2.0, {"c2s": 6, "s2c": 6}, {"c2s": 90, "s2c": 350}),
        HandshakeRejected(3, T0 + 3, "127.0.0.1:5001", "/no", 403, "Origin not allowed",
                          "http://evil", "origin", "proxy", (("Authorization", "x"),)),
        HttpExchange(4, T0 + 4, "127.0.0.1:5002", "GET", "/", 200, 12, 0.5),
        FaultInjected(1, T0 + 1.5, "latency", "delayed 10 ms", "c2s", {"ms": 10}),
        Notice(T0 + 5, "info", "listening"),
    ]
    return events


def without_header(text: str) -> str:
    return text.split("\n", 1)[1]


def recorded_lines(tmp_path: Path, events: list[Event], redact: bool, version: int = 1) -> str:
    """The event lines the recorder writes for ``events`` (the header varies: time, version)."""
    path = tmp_path / "golden.jsonl"
    rec = Recorder.create(str(path), redact=redact, version=version)
    for event in events:
        rec.publish(event)
    rec.close()
    text = path.read_text("utf-8")
    header = json.loads(text.split("\n", 1)[0])
    golden_header = json.loads(GOLDEN.read_text("utf-8").split("\n", 1)[0])
    assert list(header) == list(golden_header)  # the same fields, in the same order
    return without_header(text)


def test_the_golden_recording_is_written_byte_for_byte(tmp_path: Path, helpers: str) -> None:
    # If this fails, the recording format changed. If that was meant, it is a format change:
    # docs/recording-format.md says what may change (fields added, never renamed); regenerate
    # with ``WSINSPECT_REGENERATE_GOLDEN=1`` and say so in the change.
    text = recorded_lines(tmp_path, golden_events(), redact=True)
    golden = GOLDEN.read_text("utf-8")
    if os.environ.get("WSINSPECT_REGENERATE_GOLDEN"):
        golden = golden.split("\n", 1)[0] + "\n" + text
        GOLDEN.write_text(golden, "utf-8")
    assert text == without_header(golden)
    assert hashlib.sha256(golden.encode()).hexdigest() == GOLDEN_SHA256


def test_the_golden_recording_reads_back_as_its_events(tmp_path: Path) -> None:
    events = list(read_events(str(GOLDEN), warn=pytest.fail))
    golden = without_header(GOLDEN.read_text("utf-8"))
    assert recorded_lines(tmp_path, events, redact=False) == golden  # redacted values stay so
    assert [json_line(e) for e in events] == golden.splitlines()


def test_the_golden_v2_recording_is_written_byte_for_byte(tmp_path: Path, helpers: str) -> None:
    # As the v1 golden test, for format v2 (docs/recording-format-v2.md).
    text = recorded_lines(tmp_path, golden_events(), redact=True, version=2)
    if os.environ.get("WSINSPECT_REGENERATE_GOLDEN"):
        header = GOLDEN.read_text("utf-8").split("\n", 1)[0].replace('"version":1', '"version":2')
        GOLDEN_V2.write_text(header + "\n" + text, "utf-8")
    golden = GOLDEN_V2.read_text("utf-8")
    assert text == without_header(golden)
    assert hashlib.sha256(golden.encode()).hexdigest() == GOLDEN_V2_SHA256


def test_the_golden_v1_and_v2_recordings_read_back_as_the_same_events() -> None:
    v1 = [to_dict(e) for e in read_events(str(GOLDEN), warn=pytest.fail)]
    v2 = [to_dict(e) for e in read_events(str(GOLDEN_V2), warn=pytest.fail)]
    assert v1 == v2 and len(v1) > 20


GOLDEN_SHA256 = "80de9852bfdcafe7ceb7e25e978ded2781379d40ae097a7f36db41f677d5432d"
GOLDEN_V2_SHA256 = "82dfabe45911e714ad59826734cab7b75b37c728baec8017dbab8b39db209e55"
