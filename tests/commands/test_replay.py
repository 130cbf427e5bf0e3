"""``wsinspect replay`` against real ``websockets`` servers on loopback."""

from __future__ import annotations

import argparse
import math
import os
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
import trio
from websockets.sync.server import ServerConnection, serve

from wsinspect.commands import replay as replay_cmd
from wsinspect.events import ConnectionOpened, Event, FrameSeen, MessageSeen
from wsinspect.hub import Hub
from wsinspect.recording.reader import read_events
from wsinspect.recording.writer import Recorder
from wsinspect.wire.frames import encode_frame
from wsinspect.wire.inspector import Inspector

pytestmark = pytest.mark.trio

T0 = 1_700_000_000.0


@contextmanager
def server(transform: Callable[[str | bytes], str | bytes]) -> Iterator[str]:
    """A websockets server that answers each message with ``transform(message)``; yields its URL."""
    seen: list[object] = []

    def handler(ws: ServerConnection) -> None:
        seen.append(ws.request.path if ws.request else None)
        for message in ws:
            ws.send(transform(message))

    with serve(handler, "127.0.0.1", 0, subprotocols=["chat"]) as srv:
        thread = threading.Thread(target=srv.serve_forever, daemon=True)
        thread.start()
        host, port = srv.socket.getsockname()[:2]
        try:
            yield f"ws://{host}:{port}"
        finally:
            srv.shutdown()
            thread.join(10)


def echo(message: str | bytes) -> str | bytes:
    return message


def recording(tmp_path: Path) -> Path:
    """A recorded echo session: text, a fragmented text, binary, then the client closes."""
    c2s = Inspector("c2s")
    s2c = Inspector("s2c")
    events: list[Event] = [
        ConnectionOpened(1, T0, "127.0.0.1:50000", "/echo?x=1", "ws://127.0.0.1:9000",
                         (("Host", "127.0.0.1:8080"), ("Sec-WebSocket-Protocol", "chat"),
                          ("Cookie", "[redacted]"), ("X-Trace", "42")), 101,
                         (("Sec-WebSocket-Protocol", "chat"),), "chat"),
    ]
    k = os.urandom
    sends = [
        encode_frame(1, b"hello", mask_key=k(4)),
        encode_frame(1, b"frag", fin=False, mask_key=k(4)) + encode_frame(0, b"mented", mask_key=k(4)),
        encode_frame(2, b"\x00\x01\xff", mask_key=k(4)),
    ]
    answers = [encode_frame(1, b"hello"), encode_frame(1, b"fragmented"), encode_frame(2, b"\x00\x01\xff")]
    ts = T0
    seq = 0
    for out, back in zip(sends, answers, strict=True):
        for direction, inspector, data in (("c2s", c2s, out), ("s2c", s2c, back)):
            for f in inspector.feed(data):
                ts += 0.01
                seq += 1
                events.append(FrameSeen(1, seq, direction, ts, f))
                if f.message is not None:
                    events.append(MessageSeen(1, direction, ts, f.message, f.message_no))
    for f in c2s.feed(encode_frame(8, (1000).to_bytes(2, "big"), mask_key=k(4))):
        events.append(FrameSeen(1, seq + 1, "c2s", ts + 0.01, f))
    path = tmp_path / "rec.jsonl"
    rec = Recorder.create(str(path))
    for event in events:
        rec.publish(event)
    rec.close()
    return path


def plan(path: Path) -> replay_cmd.ReplayPlan:
    return replay_cmd.plan_replay(list(read_events(str(path))), None)


class Collect:
    def __init__(self) -> None:
        self.events: list[Event] = []

    def publish(self, event: Event) -> None:
        self.events.append(event)


async def test_replay_sends_the_recorded_frames_with_their_fragmentation(tmp_path: Path) -> None:
    hub, got = Hub(), Collect()
    hub.subscribe(got)
    with server(echo) as url:
        with trio.fail_after(20):
            await replay_cmd.replay(plan(recording(tmp_path)), url, hub, speed=math.inf, patience=2)
    sent = [e.frame for e in got.events if isinstance(e, FrameSeen) and e.direction == "c2s"]
    assert [(f.opcode, f.fin, f.payload) for f in sent] == [
        (1, True, b"hello"), (1, False, b"frag"), (0, True, b"mented"), (2, True, b"\x00\x01\xff"),
        (8, True, (1000).to_bytes(2, "big")),
    ]
    assert all(f.masked for f in sent)
    opened = next(e for e in got.events if isinstance(e, ConnectionOpened))
    assert opened.subprotocol == "chat"
    assert opened.path == "/echo?x=1"
    sent_headers = dict(opened.request_headers)
    assert sent_headers["X-Trace"] == "42"
    assert "Cookie" not in sent_headers  # redacted in the recording: left out


async def test_diff_passes_against_the_same_server(tmp_path: Path) -> None:
    with server(echo) as url, trio.fail_after(20):
        replayed = await replay_cmd.replay(plan(recording(tmp_path)), url, Hub(),
                                           speed=math.inf, patience=2)
    assert replay_cmd.diff_messages(plan(recording(tmp_path)).server_messages, replayed) == []


def run_replay(argv: list[str]) -> int:
    parser = argparse.ArgumentParser()
    replay_cmd.configure(parser)
    return replay_cmd.run(parser.parse_args(argv))


async def test_diff_exits_1_and_shows_the_first_difference_against_a_changed_server(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    def shout(message: str | bytes) -> str | bytes:
        return message.upper() if isinstance(message, str) else message

    path = recording(tmp_path)
    with server(shout) as url, trio.fail_after(30):
        code = await trio.to_thread.run_sync(
            run_replay, [str(path), "--upstream", url, "--fast", "--diff", "-q", "--timeout", "2"]
        )
    out = capsys.readouterr().out
    assert code == 1
    assert "server message 1 differs:" in out
    assert 'recorded: text len=5 "hello"' in out
    assert 'replayed: text len=5 "HELLO"' in out
    assert "first difference at byte 0" in out


async def test_diff_exits_0_against_the_same_server_and_can_record(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = recording(tmp_path)
    again = tmp_path / "again.jsonl"
    with server(echo) as url, trio.fail_after(30):
        code = await trio.to_thread.run_sync(
            run_replay,
            [str(path), "--upstream", url, "--speed", "10", "--diff", "-w", str(again), "--timeout", "2"],
        )
    out = capsys.readouterr().out
    assert code == 0
    assert "no difference: 3 server messages match the recording" in out
    assert '← text FIN len=10 "fragmented"' in out  # what came back, with the live renderer
    # The replay's own recording replays with no difference too.
    replayed = [e for e in read_events(str(again)) if isinstance(e, MessageSeen) and e.direction == "s2c"]
    assert [m.message.payload for m in replayed] == [b"hello", b"fragmented", b"\x00\x01\xff"]


async def test_missing_message_is_reported() -> None:
    a = plan_messages([b"one", b"two"])
    b = plan_messages([b"one"])
    out = replay_cmd.diff_messages(a, b)
    assert out == ['the recording has 2 server messages, the replay got 1: server message 2 '
                   '(text len=3 "two") never came']


def plan_messages(payloads: list[bytes]) -> list:  # type: ignore[type-arg]
    from wsinspect.wire.messages import Message

    return [Message(1, p, len(p), len(p), 1) for p in payloads]


async def test_unreachable_server_exits_2(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = recording(tmp_path)
    with trio.socket.socket() as sock:
        await sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]  # bound, not listening: connections are refused
        with trio.fail_after(20):
            code = await trio.to_thread.run_sync(
                run_replay, [str(path), "--upstream", f"ws://127.0.0.1:{port}", "--fast", "-q"]
            )
    assert code == 2
    assert "cannot open" in capsys.readouterr().err


async def test_unknown_connection_exits_2(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code = run_replay([str(recording(tmp_path)), "--upstream", "ws://127.0.0.1:1", "--conn", "7"])
    assert code == 2
    assert "no connection #7 in the recording (connections: 1)" in capsys.readouterr().err
