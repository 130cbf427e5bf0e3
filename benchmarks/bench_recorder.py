"""How fast the recorder takes frames: ``publish`` on the hot path, and the batched JSON + write
+ flush in its background task.

    python benchmarks/bench_recorder.py [--frames N] [--size BYTES] [--repeat R]

For text and binary frames of ``--size`` bytes, prints (best of ``--repeat`` runs):
- frame events only: the cost of ``publish`` (what the relay pays per event) and the writer's
  throughput (events serialised and written per second);
- as the relay publishes them: per single-frame message, the cost of building its ``FrameSeen``
  and ``MessageSeen`` and publishing both, then of serialising and writing both lines (the
  message line reuses the frame line's encoded payload).
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time

from wsinspect.events import FrameSeen, MessageSeen
from wsinspect.recording.writer import Recorder
from wsinspect.wire.frames import Frame, encode_frame
from wsinspect.wire.inspector import Inspector


def frames(n: int, size: int, opcode: int) -> list[Frame]:
    payload = (b"x" * size) if opcode == 1 else os.urandom(size)
    wire = encode_frame(opcode, payload, mask_key=b"abcd") * n
    return Inspector("c2s").feed(wire)


def bench_frames(fs: list[Frame], label: str, repeat: int, tmp: str) -> None:
    events = [FrameSeen(1, i, "c2s", 1.7e9 + i * 1e-6, f) for i, f in enumerate(fs)]
    t_publish = t_write = float("inf")
    size = 0
    for r in range(repeat):
        path = os.path.join(tmp, f"frames{r}.jsonl")
        rec = Recorder.create(path)
        t0 = time.perf_counter()
        for e in events:
            rec.publish(e)
        t1 = time.perf_counter()
        rec.close()  # one batch: serialise + write + flush, no timer in the way
        t2 = time.perf_counter()
        t_publish, t_write = min(t_publish, t1 - t0), min(t_write, t2 - t1)
        size = os.path.getsize(path)
        os.unlink(path)
    n = len(events)
    payload_mib = sum(e.frame.length for e in events) / (1 << 20)
    print(f"{label}: publish {n / t_publish / 1e6:.1f} M events/s ({t_publish / n * 1e9:.0f} ns each); "
          f"serialise+write {n / t_write:,.0f} events/s, {payload_mib / t_write:,.0f} MiB/s of "
          f"payload ({size / n:,.0f} B per line)")


def bench_relayed(fs: list[Frame], label: str, repeat: int, tmp: str) -> None:
    t_events = t_write = float("inf")
    for r in range(repeat):
        path = os.path.join(tmp, f"relayed{r}.jsonl")
        rec = Recorder.create(path)
        publish = rec.publish
        t0 = time.perf_counter()
        for i, f in enumerate(fs):
            ts = 1.7e9 + i * 1e-6
            publish(FrameSeen(1, i, "c2s", ts, f, True))
            if f.message is not None:
                publish(MessageSeen(1, "c2s", ts, f.message, f.message_no))
        t1 = time.perf_counter()
        rec.close()
        t2 = time.perf_counter()
        t_events, t_write = min(t_events, t1 - t0), min(t_write, t2 - t1)
        os.unlink(path)
    n = len(fs)
    print(f"{label}, as relayed (frame + message events): build+publish "
          f"{t_events / n * 1e6:.2f} µs, serialise+write {t_write / n * 1e6:.2f} µs per message "
          f"({n / t_write:,.0f} messages/s)")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--frames", type=int, default=200_000)
    parser.add_argument("--size", type=int, default=64)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        for opcode, kind in ((1, "text"), (2, "binary")):
            fs = frames(args.frames, args.size, opcode)
            label = f"{args.size} B {kind} frames"
            bench_frames(fs, label, args.repeat, tmp)
            bench_relayed(fs, label, args.repeat, tmp)


if __name__ == "__main__":
    main()
