"""``wsinspect view`` at scale: index build rate, first screen on a reused index, peak memory.

    python benchmarks/view_scale.py [--frames 1000000] [--path /tmp/view-scale.jsonl] [--keep]

Makes a recording of ``--frames`` frames (64 B text echoes on one connection: half client →
server, masked, half back) through the real recorder (``recording.writer.Recorder`` run by its
own Trio task, as the proxy runs it), unless ``--path`` exists already and ``--keep`` is given.
Then, each in a fresh interpreter so that memory figures are the process's own:

1. builds the index (``recording.index``) from nothing and prints rows/s;
2. opens the recording in the viewer headless (Textual's Pilot), on the index just built, and
   prints the time until the first screen of frames is drawn, then presses End, filters on a
   word found in one frame only and selects it, and prints the time of each step;
3. prints the peak resident memory (``ru_maxrss``) of step 2's process.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import time

PAYLOAD = b'{"op":"echo","seq":%08d,"pad":"xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx"}'  # 64 bytes


def make_recording(path: str, frames: int) -> None:
    """``frames`` frames (``frames // 2`` echoes) written by the real recorder task."""
    import trio

    from wsinspect.events import ConnectionClosed, ConnectionOpened, Event, FrameSeen, MessageSeen
    from wsinspect.recording.writer import Recorder
    from wsinspect.wire.frames import encode_frame
    from wsinspect.wire.inspector import Inspector

    async def main() -> None:
        rec = Recorder.create(path)
        t0 = 1.7e9
        inspectors = {"c2s": Inspector("c2s"), "s2c": Inspector("s2c")}
        async with trio.open_nursery() as nursery:
            nursery.start_soon(rec.run)
            rec.publish(ConnectionOpened(1, t0, "127.0.0.1:40000", "/echo", "ws://127.0.0.1:9000/echo"))
            seq = 0
            echoes = frames // 2
            block = 1000
            for start in range(0, echoes, block):
                n = min(block, echoes - start)
                wires = {
                    "c2s": b"".join(encode_frame(1, PAYLOAD % (start + i), mask_key=b"abcd")
                                    for i in range(n)),
                    "s2c": b"".join(encode_frame(1, PAYLOAD % (start + i)) for i in range(n)),
                }
                got = {d: inspectors[d].feed(w) for d, w in wires.items()}
                for i in range(n):
                    ts = t0 + (start + i) * 1e-4
                    for d in ("c2s", "s2c"):
                        f = got[d][i]
                        seq += 1
                        out: list[Event] = [FrameSeen(1, seq, d, ts, f)]
                        if f.message is not None:
                            out.append(MessageSeen(1, d, ts, f.message, f.message_no))
                        for e in out:
                            rec.publish(e)
                # The recorder's backlog has no event to wait on: poll it.
                while rec.pending > 50_000:  # noqa: ASYNC110
                    await trio.sleep(0.01)
            rec.publish(ConnectionClosed(1, t0 + echoes * 1e-4, "client", "close-handshake", 1000))
            while rec.pending:  # noqa: ASYNC110
                await trio.sleep(0.01)
            nursery.cancel_scope.cancel()

    trio.run(main)


def build_index(path: str) -> None:
    """Step 1: the index from nothing."""
    from wsinspect.recording.index import INDEX_SUFFIX, open_index
    from wsinspect.recording.index_db import remove_index

    remove_index(path + INDEX_SUFFIX)
    t0 = time.perf_counter()
    index = open_index(path, warn=print)
    rows = index.update()
    took = time.perf_counter() - t0
    size = os.path.getsize(index.location)
    index.close()
    print(f"index build: {rows:,} rows in {took:.1f} s = {rows / took:,.0f} rows/s "
          f"({os.path.getsize(path) / took / 1e6:.0f} MB/s of recording); "
          f"index {size / 1e6:.0f} MB")


def view(path: str) -> None:
    """Step 2: the viewer, headless, on the index built by step 1."""
    import asyncio
    import resource

    from textual.widgets import Input

    from wsinspect.recording.index import open_index
    from wsinspect.tui.app import InspectorApp
    from wsinspect.tui.paged import PagedStore, PagedView

    async def run() -> None:
        t0 = time.perf_counter()
        index = open_index(path, warn=print)
        store = PagedStore(index)
        paged = PagedView(index)
        app = InspectorApp(store, view=paged, source_name=path, progress=store.index_progress)
        store.start()
        async with app.run_test(size=(120, 40)) as pilot:
            await pilot.pause()
            first = time.perf_counter() - t0
            print(f"view: first screen {first:.2f} s, {store.total:,} rows")
            await pilot.press("home")
            await pilot.pause()
            t = time.perf_counter()
            await pilot.press("end")
            await pilot.pause()
            print(f"view: End {time.perf_counter() - t:.3f} s")
            await pilot.press("slash")
            app.query_one("#filter", Input).value = "00123456"
            t = time.perf_counter()
            await pilot.press("enter")
            while paged.progress is not None or paged.pending:
                await pilot.pause(0.01)
            print(f"view: filter over all rows {time.perf_counter() - t:.2f} s, {len(paged)} found")
            t = time.perf_counter()
            await pilot.press("home")
            await pilot.pause()
            print(f"view: select a match and show its payload {time.perf_counter() - t:.3f} s")
        paged.close()
        store.close()
        index.close()
        rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
        print(f"view: peak RSS {rss:.0f} MB")

    asyncio.run(run())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--frames", type=int, default=1_000_000)
    parser.add_argument("--path", default="/tmp/view-scale.jsonl")
    parser.add_argument("--keep", action="store_true", help="reuse --path if it exists")
    parser.add_argument("--step", choices=["build", "view"], help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.step == "build":
        build_index(args.path)
        return
    if args.step == "view":
        view(args.path)
        return
    if not (args.keep and os.path.exists(args.path)):
        t0 = time.perf_counter()
        make_recording(args.path, args.frames)
        print(f"recording: {args.frames:,} frames, {os.path.getsize(args.path) / 1e6:.0f} MB "
              f"in {time.perf_counter() - t0:.1f} s")
    for step in ("build", "view"):
        subprocess.run([sys.executable, __file__, "--path", args.path, "--step", step], check=True)


if __name__ == "__main__":
    main()
