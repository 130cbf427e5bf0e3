"""The TUI's bounded store, its views and the filter language (no Textual involved)."""

from __future__ import annotations

import subprocess
import sys

import pytest
from tui_sample import KEY, T0

from wsinspect.events import Event, FrameSeen
from wsinspect.tui.store import EventStore, FilterError, FrameFilter, FrameView, Rates
from wsinspect.wire.frames import encode_frame
from wsinspect.wire.inspector import Inspector


def text_frames(n: int, conn: int = 1, direction: str = "s2c") -> list[FrameSeen]:
    inspector = Inspector(direction)
    key = KEY if direction == "c2s" else None
    data = b"".join(encode_frame(1, f"m{i}".encode(), mask_key=key) for i in range(n))
    return [FrameSeen(conn, i + 1, direction, T0 + i, f) for i, f in enumerate(inspector.feed(data))]


def test_store_keeps_at_most_max_frames_and_counts_the_dropped() -> None:
    store = EventStore(max_frames=100)
    for event in text_frames(1000):
        store.publish(event)
        store.drain()
    assert store.total == 1000
    assert store.total - store.base <= 100 + store._slack
    assert store.dropped == store.base > 0
    assert store.frame(999).frame.payload == b"m999"
    with pytest.raises(IndexError):
        store.frame(0)


def test_publish_does_not_apply_until_drained() -> None:
    store = EventStore()
    store.publish(text_frames(1)[0])
    assert store.total == 0 and store.pending == 1
    assert store.drain() == 1
    assert store.total == 1 and store.pending == 0


def test_drain_budget_limits_the_work_of_one_tick() -> None:
    store = EventStore()
    for event in text_frames(50):
        store.publish(event)
    assert store.drain(budget=20) == 20
    assert store.total == 20 and store.pending == 30


def test_connection_counters_follow_frames_and_messages(events: list[Event]) -> None:
    store = EventStore(live=False)
    store.load(events)
    one = store.connections[1]
    assert one.state == "closed" and one.close_code == 1000
    assert one.subprotocol == "chat"
    assert one.frames == {"c2s": 9, "s2c": 5}
    assert one.messages["c2s"] == 5  # hello, json, binary, fragmented, bad utf-8
    assert store.connections[2].state == "open"
    assert store.now() == events[-1].ts  # a recording's "now" is its last event


def test_view_survives_eviction_without_losing_its_place() -> None:
    store = EventStore(max_frames=100)
    view = FrameView()
    for event in text_frames(500):
        store.publish(event)
        store.drain()
        view.update(store)
    assert len(view) == store.total - store.base
    assert view.indices[0] == store.base
    assert view.indices[-1] == 499


def test_view_for_one_connection_uses_only_its_frames() -> None:
    store = EventStore()
    store.load([*text_frames(10, conn=1), *text_frames(5, conn=2)])
    view = FrameView()
    view.rebuild(store, FrameFilter(conn=2))
    assert [store.frame(i).conn for i in view.indices] == [2] * 5
    store.load(text_frames(3, conn=2))
    added, pruned = view.update(store)
    assert (added, pruned) == (3, 0)


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        ("dir:c2s", 9),
        (">", 9),
        ("<", 35),
        ("op:ping,pong", 2),
        ("op:close", 2),
        ("#1", 14),
        ("conn:2", 30),
        ("frag", 3),
        ("FRAG-TWO", 3),  # text search covers the whole message: all its fragments match
        ("re:^frag-one frag-two", 3),
        ("re:^frag-two", 0),
        ("is:bad", 2),
        ("op:text dir:s2c #2 re:tick.:2\\d", 10),
    ],
)
def test_filter_query_selects_the_frames_a_user_asked_for(events: list[Event], query: str, expected: int) -> None:
    store = EventStore(live=False)
    store.load(events)
    view = FrameView()
    view.rebuild(store, FrameFilter.parse(query))
    assert len(view) == expected


@pytest.mark.parametrize("query", ["re:(", "dir:up", "op:nosuch", "conn:x"])
def test_bad_filter_query_says_which_word_is_wrong(query: str) -> None:
    with pytest.raises(FilterError, match=query.split(":")[0]):
        FrameFilter.parse(query)


def test_core_packages_do_not_import_textual() -> None:
    code = (
        "import sys, wsinspect.wire, wsinspect.events, wsinspect.relay, wsinspect.render,"
        " wsinspect.tui.store;"
        "import wsinspect.relay.server;"
        "print(sorted(m for m in sys.modules if m.split('.')[0] in ('textual', 'rich')))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=True)
    assert out.stdout.strip() == "[]"


def test_rates_are_per_second_in_total_and_per_connection() -> None:
    store = EventStore()
    rates = Rates()
    store.load([*text_frames(10, conn=1), *text_frames(30, conn=2)])
    rates.sample(store, now=100.0)
    store.load([*text_frames(20, conn=1), *text_frames(40, conn=2)])
    rates.sample(store, now=102.0)
    assert rates.total[0] == 30.0  # 60 frames in 2 s
    assert rates.per_conn[1][0] == 10.0
    assert rates.per_conn[2][0] == 20.0
    assert rates.per_conn[1][1] == sum(len(f"m{i}") for i in range(20)) / 2
