"""The recording tier (``relay.observers.LinesObserver`` and the C ``scan_lines`` behind
``wsinspect.speedups``): the lines it writes are exactly the lines the Python path writes for
the same bytes, however they are chunked, and what it does not take goes through the inspector as before."""

from __future__ import annotations

import base64
import json
import os
import random
from pathlib import Path

import pytest
import trio
from hypothesis import given, settings
from hypothesis import strategies as st
from loopback import Collector, echo, start_ws_server
from websockets.trio.client import connect

from wsinspect.compose import serve_proxy
from wsinspect.events import FrameSeen, MessageSeen
from wsinspect.hub import Hub
from wsinspect.recording.writer import Recorder
from wsinspect.relay.observers import LINES_AVAILABLE, LinesObserver, Traffic
from wsinspect.settings import Settings, Upstream
from wsinspect.wire.frames import encode_frame
from wsinspect.wire.inspector import Inspector

if not LINES_AVAILABLE:
    if os.environ.get("WSINSPECT_REQUIRE_SPEEDUPS"):
        raise RuntimeError("wsinspect._speedups was not built (WSINSPECT_REQUIRE_SPEEDUPS is set)")
    pytest.skip("wsinspect._speedups is not built (no C compiler at install)", allow_module_level=True)

from wsinspect.recording.format import dumps as _dumps
from wsinspect.recording.format import to_dict
from wsinspect.recording.format_v2 import line_dict
from wsinspect.recording.reader import read_events
from wsinspect.speedups import unmask_py

TS = 1795298313.2083018


class LineList:
    """A line sink that keeps what it is given."""

    def __init__(self) -> None:
        self.lines: list[str] = []
        self.calls = 0

    def publish(self, event: object) -> None:  # pragma: no cover - the tier only writes lines
        raise AssertionError("the tier publishes lines, not events")

    def publish_lines(self, lines: bytes, count: int) -> None:
        self.calls += 1
        text = lines.decode("utf-8")
        assert text.endswith("\n")
        self.lines.extend(text[:-1].split("\n"))
        # ``count`` is the events the lines carry (format v2: a frame, and its message's
        # fields on the same line when it ends one).
        assert text.count("\n") + text.count(',"end":{') == count


def event_lines(direction: str, frames: list, seq: int) -> tuple[list[str], int]:
    """The lines the full tier writes for ``frames`` (as the session publishes them)."""
    out = []
    for f in frames:
        seq += 1
        message = None
        if f.opcode < 8 and f.message is not None:
            message = MessageSeen(7, direction, TS, f.message, f.message_no)
        out.append(_dumps(line_dict(FrameSeen(7, seq, direction, TS, f), message)))
    return out, seq


def python_lines(direction: str, chunks: list[bytes], **kw: int) -> list[str]:
    insp = Inspector(direction, **kw)  # type: ignore[arg-type]
    seq = 0
    out: list[str] = []
    for chunk in chunks:
        lines, seq = event_lines(direction, insp.feed(chunk), seq)
        out += lines
    return out


def tier_lines(direction: str, chunks: list[bytes], limit: int = 1 << 20, **kw: int) -> tuple[list[str], LineList]:
    insp = Inspector(direction, **kw)  # type: ignore[arg-type]
    sink = LineList()
    traffic = Traffic(0.0)
    tier = LinesObserver(direction, 7, Hub(), traffic, insp, sink, limit)  # type: ignore[arg-type]
    out: list[str] = []
    for chunk in chunks:
        frames = tier.feed(chunk, TS, 0.0, as_lines=True)
        out += sink.lines  # the C lines come first: they are the chunk's first frames
        sink.lines = []
        lines, traffic.seq = event_lines(direction, frames, traffic.seq)
        out += lines
    return out, sink


def split(data: bytes, cuts: list[int]) -> list[bytes]:
    points = sorted({c % (len(data) + 1) for c in cuts})
    return [data[a:b] for a, b in zip([0, *points], [*points, len(data)], strict=True) if b > a]


KEY = b"\x37\xfa\x21\x3d"


def common_frames(direction: str) -> bytes:
    key = KEY if direction == "c2s" else None
    texts = ["hi", 'quote " and \\ back', "tab\tnew\nline\x00\x1f\x7f", "é ✓ 𝄞 \u2028", "x" * 125, "y" * 126, "z" * 70000]
    out = b"".join(encode_frame(1, t.encode(), mask_key=key) for t in texts)
    out += b"".join(encode_frame(2, bytes(range(n % 256)) * (n // 256 + 1), mask_key=key) for n in (0, 1, 2, 3, 200, 65536))
    return out


@pytest.mark.parametrize("direction", ["c2s", "s2c"])
def test_common_frames_give_the_python_paths_lines_in_one_chunk(direction: str) -> None:
    data = common_frames(direction)
    lines, sink = tier_lines(direction, [data])
    assert sink.calls == 1  # every frame went through C
    assert lines == python_lines(direction, [data])
    assert len(lines) == 13  # one line per frame, its message on it (format v2)


@pytest.mark.parametrize("direction", ["c2s", "s2c"])
def test_common_frames_give_the_same_lines_whatever_the_chunking(direction: str) -> None:
    data = common_frames(direction)
    rng = random.Random(6455)
    for _ in range(20):
        chunks = split(data, [rng.randrange(len(data)) for _ in range(rng.randrange(1, 12))])
        assert tier_lines(direction, chunks)[0] == python_lines(direction, chunks)
    one_byte = [data[i : i + 1] for i in range(min(len(data), 400))]
    assert tier_lines(direction, one_byte)[0] == python_lines(direction, one_byte)


def raw_frame(b0: int, payload: bytes, key: bytes | None, *, long_len: int = 0) -> bytes:
    """A frame with its first byte as given; ``long_len`` forces a 16- or 64-bit length."""
    n = len(payload)
    mbit = 0x80 if key else 0
    if long_len == 16 or (not long_len and 125 < n < 65536):
        head = bytes((b0, mbit | 126)) + n.to_bytes(2, "big")
    elif long_len == 64 or n >= 65536:
        head = bytes((b0, mbit | 127)) + n.to_bytes(8, "big")
    else:
        head = bytes((b0, mbit | n))
    return head + (key + unmask_py(payload, key) if key else payload)


frame_specs = st.tuples(
    st.sampled_from([0x81, 0x82, 0x81, 0x82, 0x01, 0x80, 0x02, 0x88, 0x89, 0x8A, 0x83, 0xC1, 0x91]),
    st.one_of(
        st.text(max_size=40).map(lambda t: t.encode()),
        st.binary(max_size=40),
        st.sampled_from([b"\xff", b"\xc3", b"ok\xed\xa0\x80", b"x" * 126, b"\x03\xe8bye"]),
    ),
    st.sampled_from(["right", "right", "right", "wrong"]),
    st.sampled_from([0, 0, 0, 16, 64]),
)


@settings(max_examples=300, deadline=None)
@given(
    direction=st.sampled_from(["c2s", "s2c"]),
    specs=st.lists(frame_specs, max_size=12),
    cuts=st.lists(st.integers(min_value=0, max_value=10_000), max_size=6),
)
def test_any_frames_any_chunking_give_the_python_paths_lines(direction: str, specs: list, cuts: list[int]) -> None:
    """Fragments, control frames, reserved opcodes, RSV bits, wrong mask bits, non-minimal
    lengths, invalid UTF-8 and close frames: the C pass stops before each one it does not take
    and the inspector says what it always said."""
    data = b""
    for b0, payload, mask_rule, long_len in specs:
        masked = (direction == "c2s") == (mask_rule == "right")
        data += raw_frame(b0, payload, KEY if masked else None, long_len=long_len)
    chunks = split(data, cuts) if data else []
    assert tier_lines(direction, chunks)[0] == python_lines(direction, chunks)


@settings(max_examples=300, deadline=None)
@given(direction=st.sampled_from(["c2s", "s2c"]), chunks=st.lists(st.binary(max_size=64), max_size=8))
def test_arbitrary_bytes_give_the_python_paths_lines(direction: str, chunks: list[bytes]) -> None:
    """Hostile input: whatever the bytes, the C pass neither crashes nor disagrees."""
    assert tier_lines(direction, chunks)[0] == python_lines(direction, chunks)


def test_payloads_over_the_limit_go_to_the_inspector_and_are_cut_there() -> None:
    data = encode_frame(2, b"a" * 100) + encode_frame(1, b"b" * 10)
    lines, sink = tier_lines("s2c", [data], limit=50, capture_limit=50)
    assert lines == python_lines("s2c", [data], capture_limit=50)
    first = json.loads(lines[0])  # v2: truncated is told by the payload kept, shorter than hdr says
    assert base64.b64decode(first["b64"]) == b"a" * 50 and first["hdr"] == "8264"
    assert sink.calls == 0  # the long frame stopped the pass; the rest followed it


def test_message_size_limit_leaves_long_messages_to_the_inspector() -> None:
    data = encode_frame(1, b"a" * 20) + encode_frame(1, b"b" * 5)
    lines, _ = tier_lines("s2c", [data], limit=10, max_message_size=10)
    assert lines == python_lines("s2c", [data], max_message_size=10)
    assert json.loads(lines[0])["violations"][0]["rule"] == "message-too-big"


def test_compressed_connections_take_the_python_path() -> None:
    data = encode_frame(1, b"plain text, not compressed")
    lines, sink = tier_lines("s2c", [data], extensions="permessage-deflate")  # type: ignore[arg-type]
    assert sink.calls == 0
    assert lines == python_lines("s2c", [data], extensions="permessage-deflate")  # type: ignore[arg-type]


def test_nothing_after_a_close_frame_goes_through_c() -> None:
    data = encode_frame(8, b"\x03\xe8") + encode_frame(1, b"late")
    lines, sink = tier_lines("s2c", [data[:4], data[4:]])
    assert sink.calls == 0
    assert json.loads(lines[-1])["violations"]  # data after close, as the inspector says


@pytest.mark.parametrize(
    "payload",
    [b"\xc0\x80", b"\xe0\x80\x80", b"\xf0\x80\x80\x80", b"ok\xed\xa0\x80", b"\xf4\x90\x80\x80",
     b"\xe2\x82", b"\x80", b"\xf5\x80\x80\x80", b"abcdefgh\xff", b"\xc3\xa9" * 9 + b"\xc3"],
)
@pytest.mark.parametrize("direction", ["c2s", "s2c"])
def test_invalid_utf8_text_is_left_to_the_inspector(direction: str, payload: bytes) -> None:
    """Overlong forms, surrogates, code points above U+10FFFF, cut sequences (RFC 3629)."""
    key = KEY if direction == "c2s" else None
    data = encode_frame(1, b"fine", mask_key=key) + encode_frame(1, payload, mask_key=key)
    lines, sink = tier_lines(direction, [data])
    assert lines == python_lines(direction, [data])
    assert json.loads(lines[1])["violations"][0]["rule"] == "invalid-utf8"
    assert sink.calls == 1  # "fine" went through C, the invalid frame did not


class CountingRecorder(Recorder):
    """A recorder that counts the blocks of lines the tier hands it."""

    blocks = 0

    def publish_lines(self, lines: bytes, count: int) -> None:
        CountingRecorder.blocks += 1
        super().publish_lines(lines, count)


def _comparable(path: Path) -> list[dict]:
    """A recording's frames and messages as read back (the dict form of each event), without
    what differs between two runs of the same traffic: times, connection numbers and the
    client's random mask keys."""
    out = []
    for event in read_events(str(path)):
        if not isinstance(event, FrameSeen | MessageSeen):
            continue
        d = to_dict(event)
        d.pop("ts"), d.pop("conn")
        if d.get("mask"):
            d["mask"] = "?"
            d["header"] = d["header"][:-8]
        out.append(d)
    return out


def _raw_lines(path: Path) -> list[dict]:
    """The frame lines as written (format v2), less times, connection numbers and masks."""
    out = []
    for line in path.read_text().splitlines():
        d = json.loads(line)
        if d["type"] != "frame":
            continue
        d.pop("ts"), d.pop("conn")
        if int(d["hdr"][2:4], 16) & 0x80:  # masked: the key is the header's last 4 bytes
            d["hdr"] = d["hdr"][:-8]
        out.append(d)
    return out


@pytest.mark.trio
async def test_a_proxied_session_records_the_same_in_the_recording_and_full_tiers(
    nursery: trio.Nursery, tmp_path: Path
) -> None:
    big = bytes(range(256)) * 1200  # ~300 KiB: spans chunks, so the inspector takes it

    async def session(tier: str) -> Path:
        path = tmp_path / f"{tier}.jsonl"
        hub = Hub()
        recorder = CountingRecorder.create(str(path), hub=hub)
        hub.subscribe(recorder)
        if tier == "full":
            hub.subscribe(Collector())  # a second watcher: no recording tier
        upstream = await start_ws_server(nursery, echo)
        settings = Settings(listen_port=0, upstream=Upstream.parse(upstream))
        relay = await nursery.start(serve_proxy, settings, hub)
        url = f"ws://127.0.0.1:{relay.address[1]}/chat"
        async with connect(url, proxy=None, max_size=None, compression=None) as ws:
            finished = relay.sessions[1].finished
            for text in ["hello", 'a "quoted"\n\ttext ✓', "x" * 300]:
                await ws.send(text)
                assert await ws.recv() == text
            await ws.send(big)
            assert await ws.recv() == big
            await ws.send([b"frag", b"mented", b"!"])
            assert await ws.recv() == b"fragmented!"
            await (await ws.ping(b"p")).wait()
            await ws.send("after the ping")
            assert await ws.recv() == "after the ping"
            await ws.aclose(1000, "bye")
        await finished.wait()
        recorder.close()
        return path

    with trio.fail_after(20):
        CountingRecorder.blocks = 0
        recording = await session("recording")
        assert CountingRecorder.blocks >= 5  # the common frames went through C
        CountingRecorder.blocks = 0
        full = await session("full")
        assert CountingRecorder.blocks == 0
    assert _comparable(recording) == _comparable(full)
    assert _raw_lines(recording) == _raw_lines(full)  # the C lines are the Python lines
    # Frames: c2s 3 texts, big, 3 fragments + an empty final one, ping, text, close; s2c the
    # 6 echoes, pong, close. Messages: 6 each way.
    assert len(_comparable(recording)) == (11 + 8) + (6 + 6)


def test_the_recording_tier_is_only_for_a_recording_that_watches_alone(tmp_path: Path) -> None:
    recorder = Recorder.create(str(tmp_path / "r.jsonl"))
    hub = Hub()
    hub.subscribe(Collector(), frames=False, messages=False)  # connection events only
    hub.subscribe(recorder)
    assert hub.line_sink is recorder
    hub.subscribe(Collector(), frames=False, messages=True)  # a second watcher (messages)
    assert hub.line_sink is None
    only_messages = Hub()
    only_messages.subscribe(recorder, frames=False)
    assert only_messages.line_sink is None  # it would get frame lines it did not ask for
    recorder.close()


@pytest.mark.parametrize("special", ['"', "\\", "\x00", "\n", "\x1f", " ", "\x7f", "é", "\u2028", "𝄞"])
def test_escapes_at_every_position_of_a_word(special: str) -> None:
    """The C escaper looks at eight bytes at a time: a character that needs escaping (or not)
    must be found wherever it falls."""
    data = b"".join(
        encode_frame(1, ("a" * k + special + "b" * (k % 5)).encode()) for k in range(20)
    )
    lines, sink = tier_lines("s2c", [data])
    assert sink.calls == 1
    assert lines == python_lines("s2c", [data])
