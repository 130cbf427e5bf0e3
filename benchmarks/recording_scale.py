"""Recordings at scale: size, and the time to read them back (issue 14).

Makes the 1M-frame recording through the real proxy (``wsinspect proxy -q --record``: 500,000
echoes of 64 B, an echo server and a client of ``relay_bench``'s, in their own processes), and
a recording of a few 1 MiB binary echoes, then prints:

* bytes of recording per wire byte (frame headers and payloads, both directions) for 64 B
  and 1 MiB messages;
* the seconds ``wsinspect stats`` and ``wsinspect cat --grep`` take on the 1M-frame file;
* the ``--record`` to ``-q`` rate ratio of the same echoes (64 B, and 200 echoes of 1 MiB)
  through the proxy (``relay_bench.py`` measures it with more care, against direct);
* for this build, ``view``: the index build, the first screen, End, a filter over all rows,
  and the peak memory (``view_scale.py``'s steps, on the same 1M-frame file).

``--baseline PYTHON`` runs the same with another wsinspect install (before/after, one run).
``--keep DIR`` keeps the 64 B recordings in DIR (``baseline-64.jsonl``, ``this-64.jsonl``) and
reuses them when they are there, so the read timings can be repeated without recording again
(the recording figures are then left out).
Bounded: every step has a time limit; the whole run takes a few minutes.

    python benchmarks/recording_scale.py [--count 500000] [--baseline /tmp/venv-9d/bin/python]
"""

from __future__ import annotations

import argparse
import asyncio
import multiprocessing as mp
import os
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
from relay_bench import connect, free_port, message_pair, run_server, start_proxy

STEP_TIMEOUT = 300.0  # seconds any one step may take


async def echo(port: int, size: int, count: int, in_flight: int) -> None:
    """Send ``count`` messages of ``size`` bytes (``in_flight`` outstanding) and wait for
    every echo."""
    client = await connect(port, size)
    loop = asyncio.get_running_loop()
    finished: asyncio.Future[None] = loop.create_future()
    sent = min(in_flight, count)
    done = 0

    def on_messages(n: int) -> None:
        nonlocal done, sent
        done += n
        if done >= count:
            if not finished.done():
                finished.set_result(None)
            return
        more = min(n, count - sent)
        if more > 0:
            sent += more
            client.transport.write(client.out * more)

    client.on_messages = on_messages
    client.transport.write(client.out * sent)
    await asyncio.wait_for(finished, STEP_TIMEOUT)
    client.transport.close()


def record(python: str, upstream: int, path: Path | None, size: int, count: int) -> int:
    """Record ``count`` echoes of ``size`` bytes through the proxy (``path`` None: ``-q``
    alone, nothing recorded); the wire bytes."""
    target = start_proxy(f"-q --record {path}" if path else "-q", upstream, python)
    assert target.proc is not None
    try:
        asyncio.run(echo(target.port, size, count, 100 if size <= 1024 else 2))
    finally:
        time.sleep(0.3)  # the proxy's last batch: written every 100 ms
        target.proc.send_signal(signal.SIGINT)  # a clean end: the last batch written
        try:
            target.proc.wait(60)
        except subprocess.TimeoutExpired:
            target.proc.kill()
            target.proc.wait()
    client_frame, server_frame = message_pair(size)
    return count * (len(client_frame) + len(server_frame))


def timed(python: str, *args: str) -> float:
    t0 = time.perf_counter()
    subprocess.run([python, "-P", "-m", "wsinspect", *args], stdout=subprocess.DEVNULL,
                   check=True, timeout=STEP_TIMEOUT)
    return time.perf_counter() - t0


def measure(python: str, upstream: int, tmp: Path, count: int, label: str,
            keep: Path | None = None) -> dict[str, float]:
    out: dict[str, float] = {}
    small = (keep or tmp) / f"{label}-64.jsonl"
    if keep is None or not small.exists():
        t0 = time.perf_counter()
        wire = record(python, upstream, small, 64, count)
        out["record 64 B echoes (s)"] = time.perf_counter() - t0
        out["bytes/wire byte, 64 B"] = small.stat().st_size / wire
        big = tmp / f"{label}-1m.jsonl"
        wire = record(python, upstream, big, 1 << 20, 20)
        out["bytes/wire byte, 1 MiB"] = big.stat().st_size / wire
        big.unlink()
        t0 = time.perf_counter()
        record(python, upstream, None, 64, count)
        out["--record/-q rate, 64 B"] = (time.perf_counter() - t0) / out["record 64 B echoes (s)"]
        rates = []
        for path in (big, None):
            t0 = time.perf_counter()
            record(python, upstream, path, 1 << 20, 200)
            rates.append(time.perf_counter() - t0)
        big.unlink()
        out["--record/-q rate, 1 MiB"] = rates[1] / rates[0]
    out["recording MB (64 B)"] = small.stat().st_size / 1e6
    out["stats (s)"] = timed(python, "stats", str(small))
    out["stats --conn 1 (s)"] = timed(python, "stats", "--conn", "1", str(small))
    out["cat --grep (s)"] = timed(python, "cat", "--grep", "nothing-matches-this", str(small))
    out["cat --dir s2c --grep (s)"] = timed(python, "cat", "--dir", "s2c", "--grep", "xxxxy",
                                            str(small))
    if label == "this":  # the viewer of this build, on the same file
        for step in ("build", "view"):
            done = subprocess.run([python, str(Path(__file__).parent / "view_scale.py"),
                                   "--path", str(small), "--step", step],
                                  capture_output=True, text=True, timeout=STEP_TIMEOUT, check=True)
            VIEW_LINES.extend(line for line in done.stdout.splitlines() if line.strip())
    if keep is None:
        small.unlink()
        Path(str(small) + ".wsidx").unlink(missing_ok=True)
    return out


VIEW_LINES: list[str] = []  # what view_scale.py printed for this build


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--count", type=int, default=500_000,
                        help="64 B echoes to record (default 500000: 1,000,002 frames)")
    parser.add_argument("--baseline", metavar="PYTHON",
                        help="also measure this interpreter's wsinspect (before/after)")
    parser.add_argument("--tmp", metavar="DIR", help="where the recordings go (default: a "
                        "temporary directory, removed afterwards)")
    parser.add_argument("--keep", metavar="DIR", type=Path,
                        help="keep the 64 B recordings in DIR and reuse them when there")
    args = parser.parse_args()
    if args.keep is not None:
        args.keep.mkdir(parents=True, exist_ok=True)
    ready = mp.Event()
    upstream = free_port()
    server = mp.Process(target=run_server, args=(upstream, ready), daemon=True)
    server.start()
    ready.wait(15)
    runs = [("this", sys.executable)]
    if args.baseline:
        runs.insert(0, ("baseline", args.baseline))
    results: dict[str, dict[str, float]] = {}
    with tempfile.TemporaryDirectory(dir=args.tmp) as tmp:
        for label, python in runs:
            results[label] = measure(python, upstream, Path(tmp), args.count, label,
                                     args.keep)
            print(f"{label}: {results[label]}", file=sys.stderr, flush=True)
    server.terminate()
    labels = list(results)
    print(f"{args.count} echoes of 64 B ({2 * args.count + 2} frames with the closes)")
    print(f"{'':28}" + "".join(f"{label:>12}" for label in labels))
    for key in results[labels[-1]]:
        print(f"{key:28}" + "".join(f"{results[label].get(key, float('nan')):12.2f}"
                                    for label in labels))
    if len(labels) == 2:
        for key in [k for k in results[labels[0]] if k.endswith("(s)") and "record" not in k]:
            print(f"speed-up {key[:-4]:19}{results['baseline'][key] / results['this'][key]:12.1f}x")
    for line in VIEW_LINES:
        print(line)
    return 0


if __name__ == "__main__":
    os.environ.setdefault("PYTHONHASHSEED", "0")
    sys.exit(main())
