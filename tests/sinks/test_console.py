"""The console sink: one line per event, text or JSON, written in batches off the hot path."""

from __future__ import annotations

import io
import json

import pytest
import trio

from wsinspect.events import FrameSeen, Notice
from wsinspect.recording.format import event_from_dict, to_dict
from wsinspect.render import render_event
from wsinspect.sinks.console import ConsoleSink
from wsinspect.wire.frames import encode_frame
from wsinspect.wire.inspector import Inspector


def _frame_event(payload: bytes = b"hello") -> FrameSeen:
    # Through the Inspector, as the relay does: it decides that the payload is text.
    frame = Inspector("c2s").feed(encode_frame(1, payload, mask_key=b"\x1a\x2b\x3c\x4d"))[0]
    return FrameSeen(conn=3, seq=1, direction="c2s", ts=1_700_000_000.0, frame=frame)


def test_text_lines_come_from_the_one_renderer() -> None:
    out = io.StringIO()
    sink = ConsoleSink(out)
    event = _frame_event()
    sink.publish(event)
    sink.flush()
    assert out.getvalue() == render_event(event) + "\n"
    assert "→ text FIN mask=1a2b3c4d len=5" in out.getvalue()


def test_json_lines_are_the_event_dict_form() -> None:
    out = io.StringIO()
    sink = ConsoleSink(out, fmt="json")
    event = _frame_event()
    sink.publish(event)
    sink.publish(Notice(1.0, "info", "listening"))
    sink.flush()
    lines = out.getvalue().splitlines()
    assert [json.loads(line) for line in lines] == [to_dict(event), to_dict(Notice(1.0, "info", "listening"))]
    back = event_from_dict(json.loads(lines[0]))
    assert isinstance(back, FrameSeen) and back.frame.payload == b"hello"


def test_publish_only_queues_nothing_is_written_until_the_batch() -> None:
    out = io.StringIO()
    sink = ConsoleSink(out)
    sink.publish(_frame_event())
    assert out.getvalue() == ""


def test_an_output_that_cannot_keep_up_drops_and_says_how_many() -> None:
    out = io.StringIO()
    sink = ConsoleSink(out, max_pending=2)
    for _ in range(5):
        sink.publish(_frame_event())
    sink.flush()
    lines = out.getvalue().splitlines()
    assert len(lines) == 3 and "3 events not printed" in lines[-1]


@pytest.mark.trio
async def test_the_background_task_writes_batches_on_its_timer() -> None:
    out = io.StringIO()
    sink = ConsoleSink(out, interval=0.01)
    with trio.fail_after(5):
        async with trio.open_nursery() as nursery:
            await nursery.start(sink.run)
            sink.publish(_frame_event(b"one"))
            sink.publish(_frame_event(b"two"))
            while out.getvalue().count("\n") < 2:  # noqa: ASYNC110 (bounded by fail_after)
                await trio.sleep(0.01)
            nursery.cancel_scope.cancel()
    assert '"one"' in out.getvalue() and '"two"' in out.getvalue()


def test_text_mode_prints_message_lines_only_when_they_add_something() -> None:
    from wsinspect.events import MessageSeen
    from wsinspect.wire.messages import Message

    out = io.StringIO()
    sink = ConsoleSink(out)
    single = MessageSeen(1, "c2s", 1.0, Message(1, b"hi", 2, 2, 1), 1)
    joined = MessageSeen(1, "c2s", 1.0, Message(1, b"hello", 5, 5, 2), 2)
    sink.publish(single)
    sink.publish(joined)
    sink.flush()
    assert out.getvalue() == render_event(joined) + "\n"
