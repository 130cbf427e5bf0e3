"""How much traffic the TUI absorbs, how quickly it answers keys meanwhile, and how long a
1,000,000-frame recording takes to open.

Not a test: a bounded measurement (about a minute) run headless with Textual's Pilot:

1. *Absorb*: publish frames into the store as fast as the UI drains them for a few seconds and
   report frames/s through the whole UI path (drain, filter view, redraw).
2. *Keys under load*: feed 5,000 frames/s (in 10 ms batches, as the relay would) and time
   keypress → screen updated (``pilot.press`` then ``pilot.pause``, which waits for the refresh)
   for moves in the frames table; report median, p95 and max.
3. *1M recording*: write a 1,000,000-frame JSON Lines recording, open it like ``wsinspect view``
   does, and report time to the first frames on screen, time until all are loaded, paging
   latency afterwards, and peak memory.

    python benchmarks/tui_bench.py [--frames 1000000] [--skip-recording]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import resource
import statistics
import tempfile
import time

from textual import events

from wsinspect.events import ConnectionOpened, FrameSeen
from wsinspect.recording.format import to_dict
from wsinspect.recording.reader import read_recording
from wsinspect.tui.app import InspectorApp
from wsinspect.tui.store import EventStore
from wsinspect.wire.frames import encode_frame
from wsinspect.wire.inspector import Inspector

SIZE = (120, 40)
T0 = 1_700_000_000.0


def make_frames(n: int, conn: int = 1) -> list[FrameSeen]:
    inspector = Inspector("c2s")
    key = b"\x01\x02\x03\x04"
    data = b"".join(
        encode_frame(1, f'{{"tick":{i},"price":{i * 0.25:.2f}}}'.encode(), mask_key=key)
        for i in range(n)
    )
    frames = inspector.feed(data)
    return [FrameSeen(conn, i + 1, "c2s", T0 + i * 0.0002, f) for i, f in enumerate(frames)]


async def bench_absorb(seconds: float = 4.0) -> float:
    """Frames/s the UI takes in when the store always has work waiting."""
    pool = make_frames(20_000)
    store = EventStore(100_000)
    app = InspectorApp(store)
    async with app.run_test(size=SIZE) as pilot:
        await pilot.pause()
        start = time.perf_counter()
        published = 0
        while time.perf_counter() - start < seconds:
            if store.pending < 40_000:  # keep the inbox full, not unbounded
                for event in pool:
                    store.publish(event)
                published += len(pool)
            await asyncio.sleep(0.005)
        while store.pending:  # noqa: ASYNC110 (polling is what is measured)
            await asyncio.sleep(0.005)
        await pilot.pause()
        elapsed = time.perf_counter() - start
        return store.total / elapsed


class KeyTimer:
    """Keypress → redraw latency without Pilot's idle waits (under load the process is never
    idle, so ``pilot.press`` would wait its full second): send the key through the driver as a
    terminal would, then wait for the cursor to move and for the next screen update
    (``App._display``, which the headless driver calls without writing)."""

    def __init__(self, app: InspectorApp) -> None:
        self.app = app
        self.displays: list[float] = []
        original = app._display

        def display(screen: object, renderable: object) -> None:
            if renderable is not None:
                self.displays.append(time.perf_counter())
            original(screen, renderable)  # type: ignore[arg-type]

        app._display = display  # type: ignore[method-assign]

    async def press(self, key: str) -> float:
        table = self.app.frames
        before = table.cursor_row
        start = time.perf_counter()
        assert self.app._driver is not None
        self.app._driver.send_message(events.Key(key, None))
        deadline = start + 5
        while table.cursor_row == before and time.perf_counter() < deadline:  # noqa: ASYNC110 (polling is what is measured)
            await asyncio.sleep(0.0005)
        moved = time.perf_counter()
        while not (self.displays and self.displays[-1] >= moved) and time.perf_counter() < deadline:  # noqa: ASYNC110 (polling is what is measured)
            await asyncio.sleep(0.0005)
        return (time.perf_counter() - start) * 1000


async def bench_keys_under_load(rate: int = 5_000, presses: int = 100) -> list[float]:
    """Keypress-to-redraw latencies (ms) while ``rate`` frames/s arrive."""
    pool = make_frames(rate)
    store = EventStore(100_000)
    app = InspectorApp(store)
    latencies: list[float] = []
    async with app.run_test(size=SIZE) as pilot:
        await pilot.pause()
        timer = KeyTimer(app)
        stop = asyncio.Event()

        async def feed() -> None:
            i = 0
            batch = rate // 100
            next_t = time.perf_counter()
            while not stop.is_set():
                for _ in range(batch):
                    store.publish(pool[i % len(pool)])
                    i += 1
                next_t += 0.01
                await asyncio.sleep(max(0.0, next_t - time.perf_counter()))

        feeder = asyncio.create_task(feed())
        await asyncio.sleep(1.0)  # let the table fill up
        start = time.perf_counter()
        for n in range(presses):
            latencies.append(await timer.press("up" if n % 4 != 3 else "down"))
            await asyncio.sleep(0.03)  # a fast typist, not a flood
        elapsed = time.perf_counter() - start
        stop.set()
        await feeder
        print(f"  frames received: {store.total} ({store.total / (elapsed + 1):,.0f}/s), "
              f"dropped from view: {store.dropped}")
    return latencies


def write_recording(path: str, n: int) -> int:
    """Write ``n`` frames of one connection; return the file size."""
    frames = make_frames(1000)
    dumps = json.dumps
    with open(path, "w", encoding="utf-8") as f:
        f.write(dumps({"type": "header", "format": "wsinspect-recording", "version": 1}) + "\n")
        f.write(dumps(to_dict(ConnectionOpened(1, T0, "127.0.0.1:5000", "/feed", "ws://127.0.0.1:9000"))) + "\n")
        for i in range(n):
            template = frames[i % 1000]
            event = FrameSeen(1, i + 1, "c2s", T0 + i * 0.0002, template.frame)
            f.write(dumps(to_dict(event), separators=(",", ":")) + "\n")
        return f.tell()


async def bench_recording(n: int) -> dict[str, float]:
    with tempfile.TemporaryDirectory() as tmp:
        path = os.path.join(tmp, "big.jsonl")
        t = time.perf_counter()
        size = write_recording(path, n)
        print(f"  wrote {n} frames ({size / 1e6:.0f} MB) in {time.perf_counter() - t:.1f}s")
        start = time.perf_counter()
        recording = read_recording(path)
        store = EventStore(n, live=False)
        app = InspectorApp(store, source=recording.events, source_name=path)
        out: dict[str, float] = {}
        async with app.run_test(size=SIZE) as pilot:
            timer = KeyTimer(app)
            while store.total == 0:  # noqa: ASYNC110 (polling is what is measured)
                await asyncio.sleep(0.001)
            out["first_rows_s"] = time.perf_counter() - start
            latencies = []
            await asyncio.sleep(0.5)
            while app.ui.loading or store.pending:  # page around while it loads
                latencies.append(await timer.press("pageup"))
                await asyncio.sleep(0.1)
            out["loaded_s"] = time.perf_counter() - start
            out["frames"] = store.total
            out["page_while_loading_p95_ms"] = (
                statistics.quantiles(latencies, n=20)[-1] if len(latencies) >= 20 else max(latencies, default=0)
            )
            out["home_ms"] = await timer.press("home")
            moves = []
            for _ in range(30):
                moves.append(await timer.press("pagedown"))
                await asyncio.sleep(0.03)
            out["page_loaded_median_ms"] = statistics.median(moves)
            out["end_ms"] = await timer.press("end")
            t = time.perf_counter()
            await pilot.press("slash", *"tick", "enter")
            await pilot.pause()
            out["text_filter_1m_s"] = time.perf_counter() - t
        out["max_rss_mb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
        return out


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--frames", type=int, default=1_000_000)
    parser.add_argument("--skip-recording", action="store_true")
    args = parser.parse_args()

    print("1. absorb (store kept full, UI draining at 25 Hz)")
    rate = await bench_absorb()
    print(f"  {rate:,.0f} frames/s drawn")

    print("2. keypress → redraw while 5,000 frames/s arrive")
    lat = await bench_keys_under_load()
    q = statistics.quantiles(lat, n=20)
    print(f"  median {statistics.median(lat):.1f} ms, p95 {q[-1]:.1f} ms, max {max(lat):.1f} ms")

    if not args.skip_recording:
        print(f"3. open a {args.frames:,}-frame recording (wsinspect view)")
        res = await bench_recording(args.frames)
        print(f"  first rows on screen after {res['first_rows_s'] * 1000:.0f} ms")
        print(f"  all {int(res['frames']):,} frames loaded after {res['loaded_s']:.1f} s "
              f"(paging while loading: p95 {res['page_while_loading_p95_ms']:.0f} ms)")
        print(f"  then: Home {res['home_ms']:.0f} ms, PageDown median "
              f"{res['page_loaded_median_ms']:.1f} ms, End {res['end_ms']:.0f} ms")
        print(f"  text filter over all frames: {res['text_filter_1m_s']:.2f} s")
        print(f"  peak RSS {res['max_rss_mb']:.0f} MB")


if __name__ == "__main__":
    asyncio.run(main())
