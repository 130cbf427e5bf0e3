"""Decoded messages in the TUI, live and in ``view``: the summary in the frames table, the
decoded detail mode (``y``), filters on decoded fields (``tl:event=chat``), choosing a decoder
at run time (``p``); with the tests' own decoder and with the real Socket.IO one."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import pytest
from decoding_helpers import Traffic, tally_traffic, use_tally
from textual.widgets import Input, OptionList
from tui_helpers import detail, lines, settle

from wsinspect.events import Event
from wsinspect.recording.index import open_index
from wsinspect.recording.writer import Recorder
from wsinspect.sinks.decoded import new_decoding
from wsinspect.tui.app import InspectorApp
from wsinspect.tui.decoding import ChooseDecoderScreen
from wsinspect.tui.paged import PagedStore, PagedView
from wsinspect.tui.store import EventStore, FilterError, FrameFilter, FrameView

SIZE = (140, 40)


@pytest.fixture(autouse=True)
def _tally() -> None:
    use_tally()


def live_store(events: list[Event], *, rules: tuple[str, ...] = (), auto: bool = True) -> EventStore:
    store = EventStore(10_000, live=False)
    store.use_decoding(new_decoding(rules, auto))
    store.load(events)
    return store


def shown(store: EventStore, query: str) -> list[str]:
    """The payloads (as text) of the frames a filter shows."""
    view = FrameView()
    view.rebuild(store, FrameFilter.parse(query))
    return [store.frame(i).frame.payload.decode() for i in view.indices]


async def type_filter(app: InspectorApp, pilot: Any, query: str) -> None:
    await pilot.press("slash")
    app.query_one("#filter", Input).value = query
    await pilot.press("enter")
    await settle(app, pilot)


def table_text(app: InspectorApp) -> str:
    return "\n".join(lines(app.frames))


# -- the store and the filter words (no app) -----------------------------------------------


def test_the_store_decodes_only_connections_with_a_decoder() -> None:
    store = live_store(tally_traffic())
    assert store.decoded is not None
    assert store.decoded.decoder_name(1) == "tally" and store.decoded.decoder_name(2) is None
    first = store.decoded.get((1, "c2s", 1))
    assert first is not None and first.summary == 'tally event "chat" n=1'
    assert store.decoded.get((2, "c2s", 1)) is None
    ack = store.decoded.get((1, "s2c", 1))
    assert ack is not None and ack.fields["of"] == "chat"  # state: the connection's events


def test_decoded_filter_words() -> None:
    store = live_store(tally_traffic())
    assert shown(store, "tl:event=chat") == ["EV chat hello", "EV chat other", "EV chat again"]
    assert shown(store, "tl:event=chat #3") == ["EV chat other"]
    assert shown(store, "tl:ack") == ["ACK 1", "ACK 1"]
    assert shown(store, "tl:kind=error") == ["garbage"]
    assert len(shown(store, "tl:")) == 7
    assert shown(store, "tl:event=chat again") == ["EV chat again"]  # with a text word
    assert shown(store, "dir:s2c tl:n=1") == ["ACK 1", "ACK 1"]


def test_an_unknown_prefix_with_a_field_is_an_error_and_other_colons_are_text() -> None:
    with pytest.raises(FilterError, match="no decoder has the filter prefix 'zz'"):
        FrameFilter.parse("zz:event=chat")
    assert FrameFilter.parse("http://x").text == "http://x"


def test_no_decoding_matches_no_decoded_word() -> None:
    store = EventStore(10_000, live=False)
    store.load(tally_traffic())
    assert shown(store, "tl:event=chat") == []


def test_choosing_a_decoder_decodes_the_held_messages_again() -> None:
    store = live_store(tally_traffic())
    store.choose_decoder(2, "tally")
    assert store.decoded is not None and store.decoded.decoder_name(2) == "tally"
    assert shown(store, "tl:event=chat #2") == ["EV chat not tally"]
    store.choose_decoder(1, None)
    assert shown(store, "tl: #1") == []
    store.choose_decoder(1, "auto")
    assert len(shown(store, "tl: #1")) == 5


def test_real_socketio_traffic_filters_by_event_name() -> None:
    t = Traffic().open(1, "/socket.io/?EIO=4&transport=websocket")
    t.send(1, "s2c", '0{"sid":"abc","upgrades":[],"pingInterval":25000,"pingTimeout":20000}')
    t.send(1, "c2s", "40").send(1, "s2c", '40{"sid":"def"}')
    t.send(1, "c2s", '42["chat",{"text":"hi"}]').send(1, "c2s", '421["join","room"]')
    t.send(1, "s2c", '431["ok"]').send(1, "s2c", "2").send(1, "c2s", "3")
    store = live_store(t.events)
    assert shown(store, "sio:event=chat") == ['42["chat",{"text":"hi"}]']
    assert shown(store, "sio:event") == ['42["chat",{"text":"hi"}]', '421["join","room"]']


# -- the app, live store -------------------------------------------------------------------


def make_app(events: list[Event]) -> InspectorApp:
    return InspectorApp(live_store(events), source_name="sample.jsonl")


@pytest.mark.asyncio
async def test_the_frames_table_shows_summaries_of_decoded_messages() -> None:
    app = make_app(tally_traffic())
    async with app.run_test(size=SIZE) as pilot:
        await settle(app, pilot)
        text = table_text(app)
        assert '≡ tally event "chat" n=1' in text
        assert "≡ tally ack 1 (chat)" in text
        assert "≠ tally: not a tally message" in text
        assert '"EV chat not tally"' in text or "EV chat not tally" in text  # #2: raw preview


@pytest.mark.asyncio
async def test_y_shows_the_decoded_message_and_the_raw_one_when_it_did_not_parse() -> None:
    app = make_app(tally_traffic())
    async with app.run_test(size=SIZE) as pilot:
        await type_filter(app, pilot, "tl:event=join")
        await pilot.press("y")
        await settle(app, pilot)
        text = detail(app)
        assert "Decoded message #2 of connection #1" in text and "(tally)" in text
        assert 'summary    tally event "join" n=2' in text
        assert '"data": "room"' in text  # the body, pretty JSON
        await type_filter(app, pilot, "tl:kind=error")
        text = detail(app)
        assert "error      unknown word 'garbage'" in text
        assert "garbage" in text.split("error")[-1]  # and the raw payload below
        await type_filter(app, pilot, "#2")
        assert "Its connection has no decoder: p chooses one" in detail(app)
        await pilot.press("y")
        await settle(app, pilot)
        assert "Decoded message" not in detail(app)


@pytest.mark.asyncio
async def test_the_handshake_view_names_the_decoder() -> None:
    app = make_app(tally_traffic())
    async with app.run_test(size=SIZE) as pilot:
        await type_filter(app, pilot, "#3")
        await pilot.press("h")
        await settle(app, pilot)
        assert "decoder    tally (p chooses another" in detail(app)
        await type_filter(app, pilot, "#2")
        assert "decoder    none" in detail(app)


def test_the_live_app_decodes_as_its_settings_say() -> None:
    from wsinspect.settings import Settings, Upstream
    from wsinspect.tui.live import build_live_app

    app = build_live_app(Settings(upstream=Upstream.parse("ws://127.0.0.1:9"),
                                  decode=("tally:^/plain",), auto_decode=False), max_frames=100)
    store = app.ui.store
    store.load(tally_traffic())
    assert store.decoded is not None
    assert [store.decoded.decoder_name(c) for c in (1, 2, 3)] == [None, "tally", None]
    copy = store.decoding_copy()  # what H gives the recording's view
    assert copy is not None and not copy.auto and [r.name for r in copy.rules] == ["tally"]
    off = build_live_app(Settings(upstream=Upstream.parse("ws://127.0.0.1:9"), auto_decode=False),
                         max_frames=100)
    assert off.ui.store.decoded is None


@pytest.mark.asyncio
async def test_the_filter_bar_takes_decoded_words() -> None:
    app = make_app(tally_traffic())
    async with app.run_test(size=SIZE) as pilot:
        await type_filter(app, pilot, "tl:event=chat")
        assert len(app.ui.view) == 3
        assert all("tally event" in line for line in lines(app.frames)[1:4])
        await type_filter(app, pilot, "soi:event=chat")
        assert app.query_one("#filter", Input).has_class("error")


@pytest.mark.asyncio
async def test_p_chooses_the_selected_connections_decoder() -> None:
    app = make_app(tally_traffic())
    async with app.run_test(size=SIZE) as pilot:
        await type_filter(app, pilot, "#2")
        await pilot.press("p")
        await settle(app, pilot)
        screen = app.screen
        assert isinstance(screen, ChooseDecoderScreen)
        options = screen.query_one(OptionList)
        ids = [options.get_option_at_index(i).id for i in range(options.option_count)]
        assert ids[0] == "auto" and ids[-1] == "none" and "tally" in ids and "socketio" in ids
        options.highlighted = ids.index("tally")
        await pilot.press("enter")
        await settle(app, pilot)
        assert '≡ tally event "chat" n=1' in table_text(app)
        await type_filter(app, pilot, "tl:event=chat")
        assert len(app.ui.view) == 4


# -- wsinspect view: over the recording's index ---------------------------------------------


def write(path: Path, events: list[Event]) -> None:
    rec = Recorder.create(str(path))
    for e in events:
        rec.publish(e)
    rec.close()


@asynccontextmanager
async def viewer(path: Path) -> AsyncIterator[tuple[InspectorApp, PagedStore, PagedView, Any]]:
    index = open_index(str(path), warn=pytest.fail)
    index.update()
    store = PagedStore(index, 500)
    store.use_decoding(new_decoding())
    view = PagedView(index)
    app = InspectorApp(store, view=view, source_name=str(path), progress=store.index_progress)
    try:
        async with app.run_test(size=SIZE) as pilot:
            await settle(app, pilot)
            yield app, store, view, pilot
    finally:
        view.close()
        store.close()
        index.close()


async def wait_filter(app: InspectorApp, view: PagedView, pilot: Any, query: str) -> None:
    await type_filter(app, pilot, query)
    for _ in range(400):
        if view.progress is None and not view.pending:
            break
        await pilot.pause(0.02)
    await settle(app, pilot)


def many(n: int) -> list[Event]:
    """#1 (tally) with n events and acks, #2 (plain) between them."""
    t = Traffic().open(1, "/t", "tally.v1").open(2, "/plain")
    for i in range(n):
        t.send(1, "c2s", f"EV {'chat' if i % 10 == 0 else 'tick'} {i}").send(1, "s2c", f"ACK {i + 1}")
        t.send(2, "c2s", f"EV chat plain {i}")
    return t.close(1).close(2).events


@pytest.mark.asyncio
async def test_view_shows_summaries_and_filters_on_decoded_fields(tmp_path: Path) -> None:
    path = tmp_path / "rec.jsonl"
    write(path, many(1000))
    async with viewer(path) as (app, store, view, pilot):
        assert "≡ tally ack 1000 (tick)" in table_text(app)
        await wait_filter(app, view, pilot, "tl:event=chat")
        assert len(view) == 100  # every tenth event of #1, none of #2
        await pilot.press("home")
        await settle(app, pilot)
        await pilot.press("y")
        await settle(app, pilot)
        assert 'summary    tally event "chat" n=1' in detail(app)
        await wait_filter(app, view, pilot, "tl:of=chat dir:s2c")
        assert len(view) == 100
        decoded = store.decoded
        assert decoded is not None and decoded.decoder_name(2) is None


@pytest.mark.asyncio
async def test_view_decodes_a_connection_in_order_from_any_row(tmp_path: Path) -> None:
    """The last row first: its connection's earlier messages are decoded to get there."""
    path = tmp_path / "rec.jsonl"
    write(path, many(300))
    async with viewer(path) as (_app, store, _view, pilot):
        decoded = store.decoded
        assert decoded is not None
        last = decoded.get((1, "s2c", 300))
        assert last is not None and last.summary == "tally ack 300 (tick)"
        store.choose_decoder(2, "tally")
        mine = decoded.get((2, "c2s", 3))
        assert mine is not None and mine.fields == {"event": "chat", "n": 3}
        await pilot.pause()


@pytest.mark.asyncio
async def test_view_has_a_worker_decode_a_long_stretch_and_redraws(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The UI never waits for a long decode: the last row shows raw until the worker has
    decoded its connection's earlier messages, then its summary."""
    import wsinspect.tui.decoded as decoded_module

    monkeypatch.setattr(decoded_module, "SYNC_MESSAGES", 50)
    monkeypatch.setattr(decoded_module, "CHUNK", 40)
    path = tmp_path / "rec.jsonl"
    write(path, many(400))
    async with viewer(path) as (app, store, _view, pilot):
        decoded = store.decoded
        assert isinstance(decoded, decoded_module.PagedDecoded)
        for _ in range(200):
            if not decoded.busy:
                break
            await pilot.pause(0.02)
        await settle(app, pilot)
        assert not decoded.busy and decoded.changed > 0  # (the worker did it, in chunks)
        assert "≡ tally ack 400 (tick)" in table_text(app)
        got = decoded.get((1, "s2c", 400))
        assert got is not None and got.summary == "tally ack 400 (tick)"
