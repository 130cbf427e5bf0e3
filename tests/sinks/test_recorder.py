"""Recorder sink: format v1 lines, redaction, batching, failures; and reading recordings."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
import trio
from recording_samples import every_kind, session

from wsinspect.events import ConnectionOpened, Event, Notice
from wsinspect.hub import Hub
from wsinspect.settings import ConfigError, Settings
from wsinspect.sinks.reader import RecordingError, read_events, read_recording
from wsinspect.sinks.recorder import REDACTED, Recorder, open_recorder

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
    assert [e.to_dict() for e in back] == [e.to_dict() for e in events]
    kinds = {e.type for e in back}
    assert kinds == {"open", "frame", "message", "close", "rejected", "http", "fault", "notice"}


async def test_header_line_comes_first(tmp_path: Path) -> None:
    path = tmp_path / "rec.jsonl"
    record(path, session())
    header = lines(path)[0]
    assert header["type"] == "header"
    assert header["format"] == "wsinspect-recording"
    assert header["version"] == 1
    assert header["wsinspect"]
    assert header["started"].endswith("+00:00")


async def test_text_stored_as_text_and_binary_as_base64(tmp_path: Path) -> None:
    path = tmp_path / "rec.jsonl"
    record(path, session())
    frames = [d for d in lines(path) if d["type"] == "frame"]
    text = next(d for d in frames if d["opcode"] == 1 and d["dir"] == "c2s")
    assert (text["payload"], text["encoding"]) == ("héllo", "text")
    binary = next(d for d in frames if d["opcode"] == 2 and d["dir"] == "s2c")
    assert (binary["payload"], binary["encoding"]) == ("//4A", "base64")
    close = next(d for d in frames if d["opcode"] == 8 and d["dir"] == "c2s")
    assert (close["close_code"], close["close_reason"]) == (1000, "bye")
    assert len(close["mask"]) == 8


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


async def test_torn_last_line_is_skipped_with_a_warning(tmp_path: Path) -> None:
    path = tmp_path / "rec.jsonl"
    record(path, session())
    whole = len(list(read_events(str(path))))
    with path.open("a", encoding="utf-8") as f:
        f.write('{"type":"frame","conn":1,"seq":9,"dir":"c2s","ts":1.0,"fin":tr')
    warnings: list[str] = []
    back = list(read_events(str(path), warn=warnings.append))
    assert len(back) == whole
    assert len(warnings) == 1 and "incomplete" in warnings[0]


async def test_damaged_middle_line_is_skipped_and_reading_goes_on(tmp_path: Path) -> None:
    path = tmp_path / "rec.jsonl"
    record(path, session())
    rows = path.read_text("utf-8").splitlines()
    rows.insert(3, "{not json")
    path.write_text("\n".join(rows) + "\n", "utf-8")
    warnings: list[str] = []
    back = list(read_events(str(path), warn=warnings.append))
    assert len(back) == len(rows) - 2
    assert warnings == [f"{path}:4: unreadable line skipped"]


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ("", "empty file"),
        ("\n\n", "empty file"),
        ("hello world\n", "not a wsinspect recording or HAR"),
        ('{"a": 1}\n', "not a wsinspect recording or HAR"),
        ('{"type":"header","format":"wsinspect-recording","version":2}\n', "version 2 is not supported"),
        ('{"type":"header","format":"other","version":1}\n', "not a wsinspect recording"),
    ],
)
async def test_non_recordings_get_a_one_line_error(tmp_path: Path, content: str, message: str) -> None:
    path = tmp_path / "file"
    path.write_text(content, "utf-8")
    with pytest.raises(RecordingError, match=message) as info:
        read_recording(str(path))
    assert "\n" not in str(info.value)


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


async def test_fast_lines_are_the_same_text_as_the_general_path(tmp_path: Path) -> None:
    # The recorder builds frame and message lines directly for speed; they must be exactly
    # what encoding ``to_dict()`` gives, for every kind of frame and message in the samples.
    from wsinspect.events import FrameSeen, MessageSeen
    from wsinspect.sinks.recorder import _dumps, _frame_line, _message_line

    checked = 0
    for event in every_kind():
        if isinstance(event, FrameSeen):
            line = _frame_line(event)
            if line is None:
                continue
        elif isinstance(event, MessageSeen):
            line = _message_line(event)
        else:
            continue
        assert line == _dumps(event.to_dict())
        checked += 1
    assert checked >= 15


async def test_fast_lines_know_every_field_of_the_event_types() -> None:
    # If this fails, an event type gained a field: teach _frame_line/_message_line (and
    # _KNOWN_FIELDS) about it. Until then the recorder uses the general path, correct but slower.
    from wsinspect.sinks import recorder

    assert recorder._FAST


async def test_message_with_a_note_keeps_it(tmp_path: Path) -> None:
    from wsinspect.events import MessageSeen
    from wsinspect.wire.messages import Message

    event = MessageSeen(1, "s2c", 1.0, Message(1, b"", 9, 5, 1, compressed=True,
                                               note="inflate error: invalid block"))  # fmt: skip
    path = tmp_path / "rec.jsonl"
    record(path, [event])
    assert lines(path)[1]["note"] == "inflate error: invalid block"
    back = next(iter(read_events(str(path))))
    assert back.to_dict() == event.to_dict()


def big_messages() -> list[Event]:
    """Frame and message events of big payloads: a 1 MiB binary message in two fragments, a
    single-frame 1 MiB binary message, a big text message with non-ASCII text, and small
    frames between them."""
    from recording_samples import frames_for

    from wsinspect.wire.frames import encode_frame

    blob = os.urandom(1 << 20)
    text = ("héllo \"wörld\"\n" * 5000).encode()
    wire = b"".join(
        [
            encode_frame(2, blob[:300_000], fin=False),
            encode_frame(1, b"small"),  # a §5.4 violation, recorded all the same
            encode_frame(0, blob[300_000:]),
            encode_frame(2, blob),
            encode_frame(1, text),
            encode_frame(9, b"p"),
        ]
    )
    return frames_for("s2c", wire, capture_limit=2 << 20)


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
    assert [e.to_dict() for e in read_events(str(path))] == [e.to_dict() for e in events]


async def test_big_payload_fast_lines_are_the_same_text_as_the_general_path() -> None:
    from wsinspect.events import FrameSeen, MessageSeen
    from wsinspect.sinks.recorder import _dumps, _frame_line, _line_text, _message_line

    checked = 0
    for event in big_messages():
        if isinstance(event, FrameSeen):
            line = _frame_line(event)
        elif isinstance(event, MessageSeen):
            line = _message_line(event)
        if line is None:
            continue  # the frame with a violation takes the general path
        assert _line_text(line) == _dumps(event.to_dict())
        checked += not isinstance(line, str)
    assert checked >= 5  # frames and messages written as pieces


async def test_a_backlog_beyond_the_bound_is_on_disk_before_the_relay_goes_on(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A disk that cannot keep up: handing over a backlog over the bound blocks (holding the
    # relay back) until the writer thread has it on disk, instead of letting it grow.
    from wsinspect.sinks import recorder

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
        assert [e.to_dict() for e in read_events(str(path))] == [e.to_dict() for e in events]
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


async def test_partial_writes_are_finished_in_order(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:  # fmt: skip
    """A write may take fewer bytes than asked (a signal, a nearly full disk): the rest
    follows, nothing is doubled or lost."""
    from wsinspect.sinks import recorder as module

    def short_writev(fd: int, buffers: list[bytes]) -> int:
        return os.write(fd, b"".join(buffers)[:777])  # takes at most 777 bytes a call

    monkeypatch.setattr(module.os, "writev", short_writev)
    chunks = [bytes([65 + i % 26]) * (i * 37 % 500 + 1) for i in range(3000)]
    path = tmp_path / "out"
    with open(path, "wb", buffering=0) as f:  # noqa: ASYNC230 - the sync writer under test
        module._write_all(f, chunks)
    assert path.read_bytes() == b"".join(chunks)
