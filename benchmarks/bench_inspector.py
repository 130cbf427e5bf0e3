"""Frames per second through the bare ``FrameParser`` and the full ``Inspector``.

Not a test: a quick, bounded measurement of the relay's per-frame cost. Feeds 100 chunks of
3000 masked 64-byte text frames (client → server, the worst case: every payload is unmasked)
and prints the best of a few runs for each.

    python benchmarks/bench_inspector.py
"""

from __future__ import annotations

import os
import time
import zlib
from collections.abc import Callable

from wsinspect.wire.frames import FrameParser, Opcode, encode_frame
from wsinspect.wire.inspector import Inspector

FRAMES_PER_CHUNK = 3000
CHUNKS = 100
RUNS = 3


def make_chunk() -> bytes:
    key = os.urandom(4)
    frame = encode_frame(Opcode.TEXT, b"x" * 64, mask_key=key)
    return frame * FRAMES_PER_CHUNK


def make_compressed_chunk() -> bytes:
    """64-byte text messages compressed without context takeover, so the chunk can repeat."""
    key = os.urandom(4)
    frames = []
    for i in range(FRAMES_PER_CHUNK):
        comp = zlib.compressobj(wbits=-15)
        text = f'{{"seq": {i:8d}, "user": "ada", "text": "hello hello"}}'.encode().ljust(64)
        body = comp.compress(text) + comp.flush(zlib.Z_SYNC_FLUSH)
        frames.append(encode_frame(Opcode.TEXT, body[:-4], rsv1=True, mask_key=key))
    return b"".join(frames)


def measure(feed_factory: Callable[[], Callable[[bytes], object]], chunk: bytes) -> float:
    best = float("inf")
    for _ in range(RUNS):
        feed = feed_factory()
        t0 = time.perf_counter()
        for _ in range(CHUNKS):
            feed(chunk)
        best = min(best, time.perf_counter() - t0)
    return FRAMES_PER_CHUNK * CHUNKS / best


def main() -> None:
    chunk = make_chunk()
    bare = measure(lambda: FrameParser().feed, chunk)
    full = measure(lambda: Inspector("c2s").feed, chunk)
    deflate = measure(lambda: Inspector("c2s", extensions="permessage-deflate").feed, chunk)
    compressed = make_compressed_chunk()
    inflating = measure(
        lambda: Inspector("c2s", extensions="permessage-deflate; client_no_context_takeover").feed,
        compressed,
    )
    print(f"FrameParser              {bare / 1000:8.0f} k frames/s")
    print(
        f"Inspector                {full / 1000:8.0f} k frames/s  ({bare / full:.2f}x parser cost)"
    )
    print(
        f"Inspector (pmd, no RSV1) {deflate / 1000:8.0f} k frames/s  ({bare / deflate:.2f}x parser cost)"
    )
    takeover = measure(lambda: Inspector("c2s", extensions="permessage-deflate").feed, compressed)
    print(f"Inspector (pmd, inflating 64 B text, no context takeover) {inflating / 1000:6.0f} k/s")
    print(f"Inspector (pmd, inflating 64 B text, context takeover)    {takeover / 1000:6.0f} k/s")


if __name__ == "__main__":
    main()
