"""Regenerate ``docs/screenshot.svg`` (the README's picture of the TUI).

Uses the fixed session the TUI tests use (``tests/tui/tui_sample.py``), so the picture is the
same on every machine:

    python docs/make_screenshot.py
"""

from __future__ import annotations

import asyncio
import os
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests" / "tui"))
os.environ["TZ"] = "UTC"
time.tzset()

from tui_sample import sample_events  # noqa: E402

from wsinspect.tui.app import InspectorApp  # noqa: E402
from wsinspect.tui.store import EventStore  # noqa: E402


async def main() -> None:
    store = EventStore(live=False)
    store.load(sample_events())
    app = InspectorApp(store, source_name="session.jsonl")
    async with app.run_test(size=(120, 40)) as pilot:
        app.conns.focus()
        await pilot.press("down")  # connection #1
        app.frames.focus()
        await pilot.press("home", "down", "down", "j")  # the JSON subscribe frame, pretty
        await pilot.pause()
        svg = app.export_screenshot(title="wsinspect view session.jsonl")
    (ROOT / "docs" / "screenshot.svg").write_text(svg, encoding="utf-8")
    print("wrote docs/screenshot.svg")


if __name__ == "__main__":
    asyncio.run(main())
