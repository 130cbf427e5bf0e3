"""What decoding costs where it runs (docs/decoders.md): the TUI store's drain, the JSON log's
batch, ``stats`` on a recording, and ``view`` decoding a connection from its last row.

Socket.IO chat traffic (``42["chat",{...}]`` events and acks), one frame per message; each
figure with the real Socket.IO decoder and with decoding off (``--no-decode``). A bounded
measurement (under a minute), not a test:

    python benchmarks/decode_bench.py [--messages 200000]
"""

from __future__ import annotations

import argparse
import io
import os
import tempfile
import time

from wsinspect.events import ConnectionClosed, ConnectionOpened, Event, FrameSeen, MessageSeen
from wsinspect.recording.index import open_index
from wsinspect.recording.reader import QuickFrame, iter_quick, read_recording
from wsinspect.recording.writer import Recorder
from wsinspect.sinks.console import ConsoleSink
from wsinspect.sinks.decoded import new_decoding
from wsinspect.sinks.stats import Stats
from wsinspect.tui.decoded import PagedDecoded
from wsinspect.tui.paged import PagedStore
from wsinspect.tui.store import EventStore
from wsinspect.wire.frames import encode_frame
from wsinspect.wire.inspector import Inspector

T0 = 1_700_000_000.0
PATH = "/socket.io/?EIO=4&transport=websocket"


def traffic(n: int) -> list[Event]:
    out: list[Event] = [ConnectionOpened(1, T0, "127.0.0.1:1", PATH, "ws://up" + PATH)]
    insp = {"c2s": Inspector("c2s"), "s2c": Inspector("s2c")}
    seq = 0
    for i in range(n):
        d = "c2s" if i % 2 == 0 else "s2c"
        text = f'42{i}["chat",{{"text":"message {i}","room":"r{i % 7}"}}]' if d == "c2s" \
            else f'43{i - 1}[{{"ok":true}}]'
        for f in insp[d].feed(encode_frame(1, text.encode(), mask_key=b"abcd" if d == "c2s" else None)):
            seq += 1
            out.append(FrameSeen(1, seq, d, T0 + i * 1e-4, f))  # type: ignore[arg-type]
            assert f.message is not None
            out.append(MessageSeen(1, d, T0 + i * 1e-4, f.message, f.message_no))  # type: ignore[arg-type]
    out.append(ConnectionClosed(1, T0 + n * 1e-4, "client", "close-handshake", 1000, ""))
    return out


def per_message(seconds: float, n: int) -> str:
    return f"{seconds * 1e6 / n:6.2f} µs/message ({seconds:.2f} s)"


def bench_store(events: list[Event], n: int) -> None:
    for label, decoding in (("off", None), ("socketio", new_decoding())):
        store = EventStore(n * 3)
        store.use_decoding(decoding)
        for e in events:
            store.publish(e)
        t = time.perf_counter()
        store.drain()
        print(f"  TUI store drain, decoding {label:<9} {per_message(time.perf_counter() - t, n)}")


def bench_console(events: list[Event], n: int) -> None:
    for label, decoding in (("off", None), ("socketio", new_decoding())):
        sink = ConsoleSink(io.StringIO(), fmt="json", decoding=decoding)
        sink.max_pending = len(events) + 1
        for e in events:
            sink.publish(e)
        t = time.perf_counter()
        sink.take()
        print(f"  JSON log batch,  decoding {label:<9} {per_message(time.perf_counter() - t, n)}")


def bench_stats(path: str, n: int) -> None:
    for label, decoding in (("off", None), ("socketio", new_decoding())):
        stats = Stats(decoding)
        t = time.perf_counter()
        for event in iter_quick(read_recording(path)):
            if event.__class__ is QuickFrame:
                stats.publish_quick(event)  # type: ignore[arg-type]
            else:
                stats.publish(event)  # type: ignore[arg-type]
        print(f"  stats on the recording, decoding {label:<9} {per_message(time.perf_counter() - t, n)}")


def bench_view(path: str, n: int) -> None:
    index = open_index(path, warn=print)
    index.update()
    store = PagedStore(index, 20_000)
    store.use_decoding(new_decoding())
    store.drain()
    decoded = store.decoded
    assert isinstance(decoded, PagedDecoded)
    t = time.perf_counter()
    last = decoded.get((1, "s2c", n // 2), wait=True)  # (the UI has a worker do this)
    took = time.perf_counter() - t
    assert last is not None and last.error is None, last
    print(f"  view: the last row of a {n}-message connection, cold: {per_message(took, n)}")
    t = time.perf_counter()
    decoded.get((1, "c2s", n // 2))
    print(f"  view: any row after that: {(time.perf_counter() - t) * 1e6:.0f} µs")
    store.close()
    index.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--messages", type=int, default=200_000)
    n = parser.parse_args().messages
    events = traffic(n)
    print(f"{n} Socket.IO messages (one frame each), {os.cpu_count()} CPUs")
    bench_store(events, n)
    bench_console(events, n)
    with tempfile.TemporaryDirectory() as tmp:
        path = os.path.join(tmp, "rec.jsonl")
        rec = Recorder.create(path)
        for e in events:
            rec.publish(e)
        rec.close()
        bench_stats(path, n)
        bench_view(path, n)


if __name__ == "__main__":
    main()
