"""Snapshots of the main screens, fed from fixed events (UTC, fixed timestamps), so they are the
same on every machine. Update with ``pytest tests/tui/test_snapshots.py --snapshot-update``
after a deliberate change, and look at the report before committing."""

from __future__ import annotations

from typing import Any

from tui_helpers import make_app
from tui_sample import sample_events

SIZE = (120, 40)


def test_main_screen(snap_compare: Any) -> None:
    assert snap_compare(make_app(sample_events()), terminal_size=SIZE)


def test_frame_with_violation_selected(snap_compare: Any) -> None:
    keys = ["slash", *"is:bad", "enter", "down"]
    assert snap_compare(make_app(sample_events()), press=keys, terminal_size=SIZE)


def test_json_payload_pretty_printed(snap_compare: Any) -> None:
    keys = ["slash", *"subscribe", "enter", "j"]
    assert snap_compare(make_app(sample_events()), press=keys, terminal_size=SIZE)


def test_hex_dump_of_a_binary_frame(snap_compare: Any) -> None:
    keys = ["slash", *"op:binary", "enter", "x"]
    assert snap_compare(make_app(sample_events()), press=keys, terminal_size=SIZE)


def test_handshake_view(snap_compare: Any) -> None:
    assert snap_compare(make_app(sample_events()), press=["home", "h"], terminal_size=SIZE)


def test_one_connection_selected(snap_compare: Any) -> None:
    async def select_first(pilot: Any) -> None:
        pilot.app.conns.focus()
        await pilot.press("down")

    assert snap_compare(make_app(sample_events()), run_before=select_first, terminal_size=SIZE)


def test_help_screen(snap_compare: Any) -> None:
    assert snap_compare(make_app(sample_events()), press=["question_mark"], terminal_size=SIZE)
