"""The recorder (``recording.writer``): format v1 lines on disk, redaction, batching, the
writer thread, backpressure and write failures."""

from __future__ import annotations

import base64
import json
import os
from pathlib import Path

import pytest
import trio
from recording_samples import big_messages, every_kind, session

from wsinspect.events import ConnectionOpened, Event, Notice
from wsinspect.hub import Hub
from wsinspect.recording.format import REDACTED, to_dict
from wsinspect.recording.reader import read_events
from wsinspect.recording.writer import Recorder, open_recorder
from wsinspect.settings import ConfigError, Settings

pytestmark = pytest.mark.trio


def record(path: Path, events: list[Event], *, redact: bool = True) -> None:
    rec = Recorder.create(str(path), redact=redact)
    for event in events:
        rec.publish(event)
    rec.close()


def lines(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text("utf-8").splitlines()]


async def test_every_record_type_round_trips(tmp_path: Path) -> None:
    events = every_kind()
    path = tmp_path / "rec.jsonl"
    record(path, events, redact=False)
    back = list(read_events(str(path)))
    assert [to_dict(e) for e in back] == [to_dict(e) for e in events]
    kinds = {e.type for e in back}
    assert kinds == {"open", "frame", "message", "close", "rejected", "http", "fault", "action",
                     "notice"}


async def test_header_line_comes_first(tmp_path: Path) -> None:
    path = tmp_path / "rec.jsonl"
    record(path, session())
    header = lines(path)[0]
    assert header["type"] == "header"
    assert header["format"] == "wsinspect-recording"
    assert header["version"] == 2
    assert header["wsinspect"]
    assert header["started"].endswith("+00:00")


async def test_text_stored_as_text_and_binary_as_base64(tmp_path: Path) -> None:
    path = tmp_path / "rec.jsonl"
    record(path, session())
    frames = [d for d in lines(path) if d["type"] == "frame"]
    # v2: the opcode is the header's first byte's low nibble; the key says the encoding.
    text = next(d for d in frames if int(d["hdr"][1], 16) == 1 and d["dir"] == "c2s")
    assert text["text"] == "héllo" and "b64" not in text
    binary = next(d for d in frames if int(d["hdr"][1], 16) == 2 and d["dir"] == "s2c")
    assert binary["b64"] == "//4A" and "text" not in binary
    close = next(d for d in frames if int(d["hdr"][1], 16) == 8 and d["dir"] == "c2s")
    assert close["b64"] == "A+hieWU="  # 1000, "bye": read back as close_code/close_reason
    assert close["hdr"][2] in "89abcdef" and len(close["hdr"]) == 12  # masked, its key in it


async def test_a_one_frame_message_is_its_frame_line(tmp_path: Path) -> None:
    path = tmp_path / "rec.jsonl"
    record(path, session())
    rows = lines(path)
    assert not any(d["type"] == "message" for d in rows)
    ends = [d for d in rows if "end" in d]
    assert sum(d["end"] == {} for d in ends) >= 2  # one-frame messages: nothing to add


async def test_credentials_are_redacted_by_default(tmp_path: Path) -> None:
    path = tmp_path / "rec.jsonl"
    record(path, every_kind())
    text = path.read_text("utf-8")
    assert "s3cr3t" not in text and "tok3n" not in text and "n3w" not in text
    opened = next(e for e in read_events(str(path)) if isinstance(e, ConnectionOpened))
    assert dict(opened.request_headers)["Cookie"] == REDACTED
    assert dict(opened.request_headers)["Authorization"] == REDACTED
    assert dict(opened.response_headers)["Set-Cookie"] == REDACTED
    assert dict(opened.request_headers)["Origin"] == "http://localhost"


async def test_no_redact_keeps_credentials(tmp_path: Path) -> None:
    path = tmp_path / "rec.jsonl"
    record(path, every_kind(), redact=False)
    opened = next(e for e in read_events(str(path)) if isinstance(e, ConnectionOpened))
    assert dict(opened.request_headers)["Cookie"] == "session=s3cr3t; theme=dark"
    assert lines(path)[0]["redacted"] is False


async def test_unwritable_path_is_refused_at_start(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"--record .*missing.*cannot write"):
        Recorder.create(str(tmp_path / "missing" / "rec.jsonl"))
    with pytest.raises(ConfigError, match="cannot write"):
        Recorder.create(str(tmp_path))


async def test_run_writes_and_flushes_within_100ms(tmp_path: Path) -> None:
    path = tmp_path / "rec.jsonl"
    rec = Recorder.create(str(path))
    with trio.fail_after(5):
        async with trio.open_nursery() as nursery:
            nursery.start_soon(rec.run)
            for event in session():
                rec.publish(event)
            await trio.sleep(0.25)
            # Read while the file is still open: the events must already be on disk.
            assert len(list(read_events(str(path)))) == len(session())
            nursery.cancel_scope.cancel()
    assert rec.pending == 0


async def test_cancelling_run_writes_the_rest_and_closes(tmp_path: Path) -> None:
    path = tmp_path / "rec.jsonl"
    rec = Recorder.create(str(path), interval=3600)
    with trio.fail_after(5):
        async with trio.open_nursery() as nursery:
            nursery.start_soon(rec.run)
            await trio.testing.wait_all_tasks_blocked()
            for event in session():
                rec.publish(event)
            nursery.cancel_scope.cancel()
    assert len(list(read_events(str(path)))) == len(session())
    assert path.read_text("utf-8").endswith("\n")


async def test_write_failure_is_reported_and_publishing_goes_on(tmp_path: Path) -> None:
    if not os.path.exists("/dev/full"):  # noqa: ASYNC240
        pytest.skip("needs /dev/full to simulate a full disk")
    hub = Hub()
    notices: list[Event] = []

    class Collect:
        def publish(self, event: Event) -> None:
            notices.append(event)

    hub.subscribe(Collect())
    full = open("/dev/full", "wb", buffering=0)  # noqa: ASYNC230, SIM115 - closed by rec
    rec = Recorder(full, "/dev/full", hub=hub, interval=0.01)
    with trio.fail_after(5):
        async with trio.open_nursery() as nursery:
            nursery.start_soon(rec.run)
            for event in session():
                rec.publish(event)  # never raises
            await trio.sleep(0.2)
            rec.publish(session()[0])
            await trio.sleep(0.1)
            nursery.cancel_scope.cancel()
    errors = [n for n in notices if isinstance(n, Notice) and n.level == "error"]
    assert len(errors) == 1  # reported once, not once per batch
    assert "No space left on device" in errors[0].text
    assert rec.failed


async def test_open_recorder_records_hub_events_when_settings_ask(tmp_path: Path) -> None:
    path = tmp_path / "rec.jsonl"
    hub = Hub()
    with trio.fail_after(5):
        async with open_recorder(Settings(record=str(path)), hub) as rec:
            assert rec is not None
            for event in session():
                hub.publish(event)
    assert len(list(read_events(str(path)))) == len(session())
    assert lines(path)[0]["listen"] == "127.0.0.1:8080"


async def test_open_recorder_does_nothing_without_record(tmp_path: Path) -> None:
    hub = Hub()
    async with open_recorder(Settings(), hub) as rec:
        assert rec is None
    assert not hub.wants_frames


async def test_message_with_a_note_keeps_it(tmp_path: Path) -> None:
    from wsinspect.events import MessageSeen
    from wsinspect.wire.messages import Message

    event = MessageSeen(1, "s2c", 1.0, Message(1, b"", 9, 5, 1, compressed=True,
                                               note="inflate error: invalid block"))
    path = tmp_path / "rec.jsonl"
    record(path, [event])
    assert lines(path)[1]["note"] == "inflate error: invalid block"
    back = next(iter(read_events(str(path))))
    assert to_dict(back) == to_dict(event)


async def test_big_payloads_round_trip_through_the_background_task(tmp_path: Path) -> None:
    events = big_messages()
    path = tmp_path / "rec.jsonl"
    rec = Recorder.create(str(path), interval=0.01)
    with trio.fail_after(10):
        async with trio.open_nursery() as nursery:
            nursery.start_soon(rec.run)
            for event in events:
                rec.publish(event)
            while rec.pending:  # noqa: ASYNC110 (bounded by fail_after)
                await trio.sleep(0.01)
            nursery.cancel_scope.cancel()
    assert [to_dict(e) for e in read_events(str(path))] == [to_dict(e) for e in events]


async def test_a_backlog_beyond_the_bound_is_on_disk_before_the_relay_goes_on(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A disk that cannot keep up: handing over a backlog over the bound blocks (holding the
    # relay back) until the writer thread has it on disk, instead of letting it grow.
    from wsinspect.recording import writer as recorder

    monkeypatch.setattr(recorder, "_MAX_BACKLOG", 1)
    events = big_messages()
    path = tmp_path / "rec.jsonl"
    rec = Recorder.create(str(path))
    try:
        for event in events:
            rec.publish(event)
        with trio.fail_after(10):
            await rec._serialise_pending()
            await rec._write_ready()
        # No waiting: the lines are already in the file.
        assert rec.pending == 0
        assert [to_dict(e) for e in read_events(str(path))] == [to_dict(e) for e in events]
    finally:
        rec.close()


async def test_writer_thread_ends_with_the_recording(tmp_path: Path) -> None:
    import threading

    path = tmp_path / "rec.jsonl"
    rec = Recorder.create(str(path), interval=0.01)
    with trio.fail_after(5):
        async with trio.open_nursery() as nursery:
            nursery.start_soon(rec.run)
            for event in session():
                rec.publish(event)
            while rec.pending:  # noqa: ASYNC110 (bounded by fail_after)
                await trio.sleep(0.01)
            assert any(t.name == "wsinspect-recorder" for t in threading.enumerate())
            nursery.cancel_scope.cancel()
    assert not any(t.name == "wsinspect-recorder" for t in threading.enumerate())
    assert len(list(read_events(str(path)))) == len(session())


async def test_partial_writes_are_finished_in_order(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A write may take fewer bytes than asked (a signal, a nearly full disk): the rest
    follows, nothing is doubled or lost."""
    from wsinspect.recording import writer as module

    def short_writev(fd: int, buffers: list[bytes]) -> int:
        return os.write(fd, b"".join(buffers)[:777])  # takes at most 777 bytes a call

    monkeypatch.setattr(module.os, "writev", short_writev)
    chunks = [bytes([65 + i % 26]) * (i * 37 % 500 + 1) for i in range(3000)]
    path = tmp_path / "out"
    with open(path, "wb", buffering=0) as f:  # noqa: ASYNC230 - the sync writer under test
        module._write_all(f, chunks)
    assert path.read_bytes() == b"".join(chunks)


async def test_deferred_base64_pieces_are_written_as_their_base64(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A big binary payload's base64 (``encoder.Base64Of``) is made where it is written, in
    order with the text around it, partial writes included."""
    from wsinspect.recording import writer as module
    from wsinspect.recording.encoder import Base64Of

    def short_writev(fd: int, buffers: list[bytes]) -> int:
        return os.write(fd, b"".join(buffers)[:100_003])

    monkeypatch.setattr(module.os, "writev", short_writev)
    payloads = [os.urandom(n) for n in (1 << 16, 3 << 20, 5, (1 << 20) + 1)]
    chunks: list[bytes | Base64Of] = []
    for i, p in enumerate(payloads):
        chunks += [b'{"b64":"', Base64Of(p), b'"}\n' * (i + 1)]
    expected = b"".join(c if isinstance(c, bytes) else base64.b64encode(c.data) for c in chunks)
    assert [len(Base64Of(p)) for p in payloads] == [len(base64.b64encode(p)) for p in payloads]
    path = tmp_path / "out"
    with open(path, "wb", buffering=0) as f:  # noqa: ASYNC230 - the sync writer under test
        module._write_all(f, chunks)
    assert path.read_bytes() == expected
