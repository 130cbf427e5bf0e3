"""How many 64-byte frames per second the recorder takes: ``publish`` on the hot path, and
the batched JSON + write + flush in its background task.

    python benchmarks/bench_recorder.py [--frames N] [--size BYTES]

Prints the cost of ``publish`` alone (what the relay pays per event) and the throughput of the
writer (events serialised and written per second), for text and binary frames.
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time

from wsinspect.events import FrameSeen
from wsinspect.sinks.recorder import Recorder
from wsinspect.wire.frames import encode_frame
from wsinspect.wire.inspector import Inspector


def frames(n: int, size: int, opcode: int) -> list[FrameSeen]:
    payload = (b"x" * size) if opcode == 1 else os.urandom(size)
    wire = encode_frame(opcode, payload, mask_key=b"abcd") * n
    inspector = Inspector("c2s")
    return [FrameSeen(1, i, "c2s", 1.7e9 + i * 1e-6, f) for i, f in enumerate(inspector.feed(wire))]


def bench(events: list[FrameSeen], label: str) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        path = os.path.join(tmp, "rec.jsonl")
        rec = Recorder.create(path)
        t0 = time.perf_counter()
        for e in events:
            rec.publish(e)
        t_publish = time.perf_counter() - t0

        rec2 = Recorder.create(path + "2")
        for e in events:
            rec2.publish(e)
        t0 = time.perf_counter()
        rec2.close()  # one batch: serialise + write + flush, no timer in the way
        t_write = time.perf_counter() - t0
        rec.close()
        size = os.path.getsize(path + "2")
    n = len(events)
    payload_mib = sum(e.frame.length for e in events) / (1 << 20)
    print(f"{label}: publish {n / t_publish / 1e6:.1f} M events/s ({t_publish / n * 1e9:.0f} ns each); "
          f"serialise+write {n / t_write:,.0f} events/s, {payload_mib / t_write:,.0f} MiB/s of "
          f"payload ({size / n:,.0f} B per line)")

def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--frames", type=int, default=200_000)
    parser.add_argument("--size", type=int, default=64)
    args = parser.parse_args()
    bench(frames(args.frames, args.size, 1), f"{args.size} B text frames")
    bench(frames(args.frames, args.size, 2), f"{args.size} B binary frames")


if __name__ == "__main__":
    main()
