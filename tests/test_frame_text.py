"""A frame's payload is shown as text only when it really is text (``Frame.text``).

Real frames go through the ``Inspector``; the same flag decides the recording's ``encoding``
(``FrameSeen.to_dict`` and the recorder's fast line), the rendered log line and the TUI row.
Compressed frames come from the ``websockets`` permessage-deflate extension (RFC 7692).
"""

from __future__ import annotations

import json
from pathlib import Path

from websockets.extensions.permessage_deflate import PerMessageDeflate
from websockets.frames import Frame as WsFrame
from websockets.frames import Opcode as WsOpcode

from wsinspect.events import FrameSeen, MessageSeen
from wsinspect.recording.encoder import frame_line as _frame_line
from wsinspect.recording.encoder import message_line as _message_line
from wsinspect.recording.format import dumps as _dumps
from wsinspect.recording.format import event_from_dict, to_dict
from wsinspect.recording.reader import read_events
from wsinspect.recording.writer import Recorder
from wsinspect.render import render_event, render_frame
from wsinspect.tui.rows import frame_cells
from wsinspect.wire.frames import Frame, encode_frame
from wsinspect.wire.inspector import Inspector

KEY = b"\x01\x02\x03\x04"


def inspect(wire: bytes, *, direction: str = "c2s", extensions: str | None = None) -> list[Frame]:
    return Inspector(direction, extensions=extensions).feed(wire)


def c(opcode: int, payload: bytes, *, fin: bool = True, rsv1: bool = False) -> bytes:
    return encode_frame(opcode, payload, fin=fin, rsv1=rsv1, mask_key=KEY)


def compressed(fragments: list[bytes], opcode: WsOpcode = WsOpcode.TEXT) -> bytes:
    """One message deflated by websockets, one wire frame per fragment (server side)."""
    ext = PerMessageDeflate(False, False, 15, 15)
    out = []
    for i, data in enumerate(fragments):
        frame = ext.encode(WsFrame(opcode if i == 0 else WsOpcode.CONT, data,
                                   fin=i == len(fragments) - 1))
        out.append(encode_frame(int(frame.opcode), frame.data, fin=frame.fin, rsv1=frame.rsv1))
    return b"".join(out)


def encodings(frames: list[Frame], direction: str = "c2s") -> list[str]:
    return [to_dict(FrameSeen(1, i, direction, 1.0, f))["encoding"] for i, f in enumerate(frames)]


def tail(frame: Frame, direction: str = "c2s") -> str:
    """The rendered line after the time and connection: ``→ cont FIN ... len=1 0x00``."""
    return render_frame(FrameSeen(1, 1, direction, 1.0, frame)).split(" ", 2)[2]


def test_fragments_of_a_binary_message_are_recorded_as_base64() -> None:
    frames = inspect(c(2, b"hi", fin=False) + c(0, b"there", fin=False) + c(0, b"\x00"))
    assert encodings(frames) == ["base64", "base64", "base64"]
    assert to_dict(FrameSeen(1, 1, "c2s", 1.0, frames[2]))["payload"] == "AA=="


def test_last_fragment_of_a_binary_message_renders_as_hex() -> None:
    frames = inspect(c(2, b"hi", fin=False) + c(0, b"\x00"))
    assert tail(frames[1]) == "→ cont FIN mask=01020304 len=1 0x00"


def test_fragments_of_a_text_message_are_recorded_as_text() -> None:
    frames = inspect(c(1, b"Hel", fin=False) + c(9, b"!") + c(0, b"lo", fin=False) + c(0, b"!"))
    dicts = [to_dict(FrameSeen(1, i, "c2s", 1.0, f)) for i, f in enumerate(frames)]
    assert [(d["payload"], d["encoding"]) for d in dicts] == [
        ("Hel", "text"), ("IQ==", "base64"), ("lo", "text"), ("!", "text"),  # ping: base64
    ]
    assert tail(frames[2]) == '→ cont - mask=01020304 len=2 "lo"'


def test_text_fragment_that_splits_a_character_falls_back_to_base64() -> None:
    e_acute = "é".encode()
    frames = inspect(c(1, b"caf" + e_acute[:1], fin=False) + c(0, e_acute[1:]))
    assert encodings(frames) == ["base64", "base64"]
    assert frames[-1].message is not None and frames[-1].message.payload == "café".encode()


def test_compressed_frame_is_base64_and_its_message_is_the_inflated_text() -> None:
    frames = inspect(compressed([b"a"]), direction="s2c", extensions="permessage-deflate")
    frame = to_dict(FrameSeen(1, 1, "s2c", 1.0, frames[0]))
    assert (frame["encoding"], frame["rsv1"]) == ("base64", True)
    m = frames[0].message
    assert m is not None
    message = to_dict(MessageSeen(1, "s2c", 1.0, m, 1))
    assert (message["payload"], message["encoding"]) == ("a", "text")


def test_fragmented_compressed_message_frames_are_all_base64() -> None:
    frames = inspect(
        compressed([b"hello hello hello", b" world", b""]),
        direction="s2c",
        extensions="permessage-deflate",
    )
    assert [f.opcode for f in frames] == [1, 0, 0]
    assert encodings(frames, "s2c") == ["base64", "base64", "base64"]
    # The final frame of a fragmented compressed message is the one-byte empty deflate block.
    assert tail(frames[2], "s2c") == "← cont FIN len=1 0x00"


def test_compressed_text_frame_renders_as_hex_and_its_message_as_text() -> None:
    frames = inspect(compressed([b"a"]), direction="s2c", extensions="permessage-deflate")
    assert tail(frames[0], "s2c").startswith("← text FIN RSV1 len=3 0x")
    m = frames[0].message
    assert m is not None
    assert render_event(MessageSeen(1, "s2c", 1.0, m, 1)).endswith('frames=1 "a"')


def test_rsv1_text_frame_without_negotiated_compression_is_not_shown_as_text() -> None:
    frames = inspect(c(1, b"J\x04\x00", rsv1=True))
    assert encodings(frames) == ["base64"]


def test_tui_row_of_a_binary_fragment_previews_hex() -> None:
    frames = inspect(c(2, b"hi", fin=False) + c(0, b"\x00"))
    cells = frame_cells(FrameSeen(1, 2, "c2s", 1.0, frames[1]), width=100)
    assert cells[-1][0] == "0x00"


def test_ping_payload_is_shown_as_text_but_recorded_base64() -> None:
    frames = inspect(c(9, b"keepalive") + c(10, b"\xff"))
    assert encodings(frames) == ["base64", "base64"]
    assert tail(frames[0], "c2s").endswith('"keepalive"')
    assert tail(frames[1], "c2s").endswith("0xff")


def test_close_frame_payload_is_base64_with_its_code_and_reason_beside_it() -> None:
    frames = inspect(c(8, (1000).to_bytes(2, "big") + b"bye"))
    d = to_dict(FrameSeen(1, 1, "c2s", 1.0, frames[0]))
    assert (d["encoding"], d["close_code"], d["close_reason"]) == ("base64", 1000, "bye")


def test_frame_built_outside_the_inspector_is_shown_as_bytes() -> None:
    frame = Frame(True, False, False, False, 1, False, None, 2, b"\x81\x02", b"hi")
    assert to_dict(FrameSeen(1, 1, "s2c", 1.0, frame))["encoding"] == "base64"
    assert tail(frame, "s2c") == "← text FIN len=2 0x6869"


def test_reading_back_rebuilds_the_text_flag_from_the_recorded_encoding() -> None:
    wire = c(1, b"hi", fin=False) + c(0, b"!") + c(2, b"x", fin=False) + c(0, b"\x00")
    for frame in inspect(wire):
        d = to_dict(FrameSeen(1, 1, "c2s", 1.0, frame))
        back = event_from_dict(json.loads(json.dumps(d)))
        assert isinstance(back, FrameSeen)
        assert back.frame.text == frame.text
        assert to_dict(back) == d


def test_old_recording_of_a_compressed_frame_as_text_reads_back_as_bytes() -> None:
    # Before Frame.text, compressed frames that happened to decode were recorded as text.
    frames = inspect(compressed([b"a"]), direction="s2c", extensions="permessage-deflate")
    d = to_dict(FrameSeen(1, 1, "s2c", 1.0, frames[0]))
    d["payload"], d["encoding"] = frames[0].payload.decode(), "text"
    back = event_from_dict(d)
    assert isinstance(back, FrameSeen)
    assert not back.frame.text
    assert to_dict(back)["encoding"] == "base64"


def test_recording_fast_lines_agree_with_the_dict_form_for_every_case(tmp_path: Path) -> None:
    wire = (
        c(2, b"hi", fin=False) + c(0, b"\x00") + c(1, b"Hel", fin=False) + c(0, b"lo")
        + c(9, b"p") + c(1, b"caf\xc3", fin=False) + c(0, b"\xa9")
    )
    frames = inspect(wire) + inspect(
        compressed([b"hello", b" world", b""]) + compressed([b"a"]),
        direction="s2c",
        extensions="permessage-deflate",
    )
    events: list[FrameSeen | MessageSeen] = []
    for i, f in enumerate(frames):
        direction = "c2s" if f.mask_key else "s2c"
        events.append(FrameSeen(1, i, direction, 1.0, f))
        if f.message is not None:
            events.append(MessageSeen(1, direction, 1.0, f.message, f.message_no))
    for event in events:
        line = _frame_line(event) if isinstance(event, FrameSeen) else _message_line(event)
        assert line == _dumps(to_dict(event))
    path = tmp_path / "rec.jsonl"
    rec = Recorder.create(str(path))
    for event in events:
        rec.publish(event)
    rec.close()
    assert [to_dict(e) for e in read_events(str(path))] == [to_dict(e) for e in events]
