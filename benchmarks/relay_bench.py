"""Relay benchmark: a direct connection and wsinspect side by side, in one run.

    python benchmarks/relay_bench.py                 # all scenarios, 3 rounds
    python benchmarks/relay_bench.py --quick         # smaller counts, 1 round
    python benchmarks/relay_bench.py --variant=-q --variant="-q --record {tmp}/r.jsonl"
    python benchmarks/relay_bench.py --baseline /tmp/old/.venv/bin/python   # before/after

``--baseline PYTHON`` also runs every variant with another installation of wsinspect (that
interpreter's ``-m wsinspect``, e.g. a virtualenv holding the previous commit): before and after
a change, measured in the same run against the same direct connection.

In a variant, ``{tmp}`` is a fresh temporary directory (usually on disk) and ``{shm}`` one in memory (``/dev/shm``,
tmpfs, where there is one): recording to both tells the recorder's own cost from the disk's.
A recording grows by about 1 KB per 64 B echo and 5.6 MB per 1 MiB echo (mind the room in
``/dev/shm``: ``--rounds 1`` keeps it to a few GB); both directories are removed at the end.

Prints, for each scenario, the median over rounds of the direct figure and of each proxy
variant, and the ratio proxy/direct (higher is better for rates, lower for times):
- msgs/s for 64-byte text messages echoed with 100 in flight;
- MiB/s for 1 MiB binary messages echoed with 4 in flight;
- round trip p50/p99 with one 64-byte message in flight;
- time to open 1,000 and 5,000 concurrent connections (TCP + handshake, 100 handshakes at
  once), every round, and the proxy's memory per open idle connection (RSS growth over the
  first round / connections).

The load generator must not be the bottleneck, so neither peer parses frames: every message in a
scenario has the same size, the client sends pre-masked bytes and the server answers with
pre-built unmasked frames, both counting complete messages by byte count. Each peer runs in its
own process (asyncio protocols), as does the proxy (the real ``wsinspect proxy`` command).
All traffic stays on 127.0.0.1; every loop is bounded in count and time.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import hashlib
import multiprocessing as mp
import os
import resource
import shlex
import shutil
import socket
import statistics
import struct
import subprocess
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

GUID = b"258EAFA5-E914-47DA-95CA-C5AB0DC85B11"
MASK = b"\x37\xfa\x21\x3d"


def raise_fd_limit() -> None:
    _, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def frame(payload: bytes, opcode: int, masked: bool) -> bytes:
    n = len(payload)
    b0 = 0x80 | opcode
    mbit = 0x80 if masked else 0
    if n < 126:
        head = bytes((b0, mbit | n))
    elif n < 65536:
        head = bytes((b0, mbit | 126)) + n.to_bytes(2, "big")
    else:
        head = bytes((b0, mbit | 127)) + n.to_bytes(8, "big")
    if not masked:
        return head + payload
    key = (MASK * (n // 4 + 1))[:n]
    body = (int.from_bytes(payload, "big") ^ int.from_bytes(key, "big")).to_bytes(n, "big")
    return head + MASK + body


def message_pair(size: int) -> tuple[bytes, bytes]:
    """(client frame, server frame) for one message of ``size`` bytes."""
    if size <= 1024:
        payload, opcode = (b"x" * size), 1
    else:
        payload, opcode = os.urandom(size), 2
    return frame(payload, opcode, True), frame(payload, opcode, False)


# --- echo server (own process) ------------------------------------------------------------------


class EchoServer(asyncio.Protocol):
    """Answers the handshake, then for every complete client frame of the agreed size sends one
    server frame. The size is announced in the request path: ``/?size=N``."""

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self.transport = transport
        self.buf = b""
        self.handshaken = False
        self.pending = 0
        self.in_size = 0
        self.reply = b""

    def data_received(self, data: bytes) -> None:
        if not self.handshaken:
            self.buf += data
            if b"\r\n\r\n" not in self.buf:
                return
            head, _, rest = self.buf.partition(b"\r\n\r\n")
            lines = head.split(b"\r\n")
            path = lines[0].split(b" ")[1]
            size = int(path.rsplit(b"size=", 1)[1]) if b"size=" in path else 64
            key = b""
            for line in lines[1:]:
                name, _, value = line.partition(b":")
                if name.strip().lower() == b"sec-websocket-key":
                    key = value.strip()
            accept = base64.b64encode(hashlib.sha1(key + GUID).digest())
            self.transport.write(
                b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n"
                b"Connection: Upgrade\r\nSec-WebSocket-Accept: " + accept + b"\r\n\r\n"
            )
            client_frame, self.reply = message_pair(size)
            self.in_size = len(client_frame)
            self.handshaken = True
            self.buf = b""
            data = rest
        self.pending += len(data)
        n, self.pending = divmod(self.pending, self.in_size)
        if n:
            self.transport.write(self.reply * n)


def run_server(port: int, ready: mp.synchronize.Event) -> None:
    raise_fd_limit()

    async def main() -> None:
        loop = asyncio.get_running_loop()
        server = await loop.create_server(EchoServer, "127.0.0.1", port, backlog=8192)
        ready.set()
        async with server:
            await server.serve_forever()

    asyncio.run(main())


# --- client (own process) -----------------------------------------------------------------------


class Client(asyncio.Protocol):
    def __init__(self, size: int) -> None:
        self.out, reply = message_pair(size)
        self.in_size = len(reply)
        self.handshake_done: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self.buf = b""
        self.pending = 0
        self.on_messages: Callable[[int], None] = lambda n: None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self.transport = transport

    def data_received(self, data: bytes) -> None:
        if not self.handshake_done.done():
            self.buf += data
            if b"\r\n\r\n" not in self.buf:
                return
            head, _, data = self.buf.partition(b"\r\n\r\n")
            if not head.startswith(b"HTTP/1.1 101"):
                self.handshake_done.set_exception(RuntimeError(head.decode(errors="replace")))
                return
            self.handshake_done.set_result(None)
        self.pending += len(data)
        n, self.pending = divmod(self.pending, self.in_size)
        if n:
            self.on_messages(n)

    def connection_lost(self, exc: Exception | None) -> None:
        if not self.handshake_done.done():
            self.handshake_done.set_exception(ConnectionError("closed during handshake"))


async def connect(port: int, size: int, **connection: Any) -> Client:
    """A client connection to ``port`` with its handshake done; ``connection``: more
    arguments for ``create_connection`` (``sock``, ``ssl``, ``server_hostname``)."""
    loop = asyncio.get_running_loop()
    if "sock" in connection:
        _, client = await loop.create_connection(lambda: Client(size), **connection)
    else:
        _, client = await loop.create_connection(lambda: Client(size), "127.0.0.1", port,
                                                 **connection)
    key = base64.b64encode(os.urandom(16))
    client.transport.write(
        b"GET /bench?size=%d HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\n"
        b"Connection: Upgrade\r\nSec-WebSocket-Key: %s\r\nSec-WebSocket-Version: 13\r\n\r\n"
        % (size, key)
    )
    await client.handshake_done
    return client


Opener = Callable[[int, int], Awaitable[Client]]


async def throughput(port: int, size: int, in_flight: int, seconds: float,
                     opener: Opener | None = None) -> float:
    """Messages per second echoed with ``in_flight`` outstanding, measured for ``seconds``;
    ``opener(port, size)`` opens the connection (default: ``connect``, plain TCP)."""
    client = await (opener or connect)(port, size)
    loop = asyncio.get_running_loop()
    done = 0
    finished = loop.create_future()
    deadline = 0.0

    def on_messages(n: int) -> None:
        nonlocal done
        done += n
        if time.perf_counter() >= deadline:
            if not finished.done():
                finished.set_result(None)
            return
        client.transport.write(client.out * n)

    client.on_messages = on_messages
    # Warm up briefly, then measure.
    deadline = time.perf_counter() + seconds / 5
    client.transport.write(client.out * in_flight)
    await asyncio.wait_for(finished, seconds * 5 + 10)
    finished = loop.create_future()
    start_count = done
    start = time.perf_counter()
    deadline = start + seconds
    client.transport.write(client.out * in_flight)
    await asyncio.wait_for(finished, seconds * 5 + 10)
    rate = (done - start_count) / (time.perf_counter() - start)
    client.transport.close()
    return rate


async def round_trips(port: int, count: int, opener: Opener | None = None) -> tuple[float, float]:
    """(p50, p99) round-trip time in microseconds for one 64-byte message in flight."""
    client = await (opener or connect)(port, 64)
    loop = asyncio.get_running_loop()
    samples: list[float] = []
    waiter: asyncio.Future[None] = loop.create_future()

    def on_messages(n: int) -> None:
        if not waiter.done():
            waiter.set_result(None)

    client.on_messages = on_messages
    for _ in range(count):
        waiter = loop.create_future()
        t0 = time.perf_counter()
        client.transport.write(client.out)
        await asyncio.wait_for(waiter, 10)
        samples.append((time.perf_counter() - t0) * 1e6)
    client.transport.close()
    samples.sort()
    return statistics.median(samples), samples[int(len(samples) * 0.99) - 1]


async def open_many(port: int, count: int, concurrency: int, hold: Callable[[], None]) -> float:
    """Seconds to open ``count`` connections (at most ``concurrency`` handshakes at once); the
    connections stay open until ``hold`` returns."""
    sem = asyncio.Semaphore(concurrency)

    async def one() -> Client:
        async with sem:
            return await asyncio.wait_for(connect(port, 64), 60)

    start = time.perf_counter()
    clients = await asyncio.gather(*(one() for _ in range(count)))
    elapsed = time.perf_counter() - start
    await asyncio.get_running_loop().run_in_executor(None, hold)
    # Reset rather than close: thousands of connections in TIME_WAIT would make the next
    # round's connects search the ephemeral ports longer (later rounds measured 2x slower).
    linger = struct.pack("ii", 1, 0)
    for c in clients:
        c.transport.get_extra_info("socket").setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, linger)
        c.transport.abort()
    await asyncio.sleep(1.5)  # the proxy and the server tear thousands down: let them finish
    return elapsed


def client_job(conn: mp.connection.Connection) -> None:
    raise_fd_limit()
    while True:
        job = conn.recv()
        if job is None:
            return
        kind, port, *params = job
        try:
            if kind == "throughput":
                result: object = asyncio.run(throughput(port, *params))
            elif kind == "rtt":
                result = asyncio.run(round_trips(port, *params))
            elif kind == "open":
                count, concurrency = params

                def hold() -> None:
                    conn.send(("opened",))
                    conn.recv()  # wait until the parent has measured memory

                result = asyncio.run(open_many(port, count, concurrency, hold))
            else:
                raise ValueError(kind)
            conn.send(("ok", result))
        except Exception as exc:  # reported to the parent, which prints it
            conn.send(("error", repr(exc)))


# --- orchestration ------------------------------------------------------------------------------


@dataclass
class Target:
    name: str
    port: int
    proc: subprocess.Popen[bytes] | None = None

    def rss_kib(self) -> int:
        if self.proc is None:
            return 0
        with open(f"/proc/{self.proc.pid}/status") as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1])
        return 0


def wait_port(port: int, timeout: float = 15.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                return
        except OSError:
            time.sleep(0.05)
    raise RuntimeError(f"nothing listening on port {port} after {timeout}s")


def start_proxy(variant: str, upstream_port: int, python: str = sys.executable,
                label: str = "") -> Target:
    port = free_port()
    cmd = [
        python, "-P", "-m", "wsinspect", "proxy",  # -P: the installed wsinspect, not ./wsinspect
        "--listen", f"127.0.0.1:{port}",
        "--upstream", f"ws://127.0.0.1:{upstream_port}",
        *shlex.split(variant),
    ]
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, preexec_fn=raise_fd_limit)
    wait_port(port)
    return Target(f"{label}proxy {variant}".strip(), port, proc)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="small counts, one round")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--seconds", type=float, default=3.0, help="per throughput measurement")
    parser.add_argument(
        "--variant", action="append",
        help="proxy flags for one proxied column (repeatable; default: '-q')",
    )
    parser.add_argument("--baseline", metavar="PYTHON",
                        help="also run each variant with this interpreter's wsinspect (before/after)")
    parser.add_argument("--skip-scale", action="store_true", help="skip the connection scenarios")
    parser.add_argument("--verbose", action="store_true", help="also print every round's figures")
    parser.add_argument("--direct-only", action="store_true",
                        help="measure the load generator alone (no proxy)")
    opts = parser.parse_args()
    rounds = 1 if opts.quick else opts.rounds
    seconds = 1.0 if opts.quick else opts.seconds
    scales = (200, 500) if opts.quick else (1000, 5000)
    variants = [] if opts.direct_only else (opts.variant or ["-q"])
    raise_fd_limit()

    ctx = mp.get_context("spawn")
    server_port = free_port()
    ready = ctx.Event()
    server = ctx.Process(target=run_server, args=(server_port, ready), daemon=True)
    server.start()
    ready.wait(15)
    parent_conn, child_conn = ctx.Pipe()
    client = ctx.Process(target=client_job, args=(child_conn,), daemon=True)
    client.start()

    def ask(job: tuple[object, ...]) -> object:
        parent_conn.send(job)
        status, *rest = parent_conn.recv()
        if status == "error":
            raise RuntimeError(rest[0])
        return rest[0]

    targets = [Target("direct", server_port)]
    tmpdir = tempfile.mkdtemp(prefix="wsinspect-bench-")
    # {shm}: a directory in memory (tmpfs), to tell the recorder's own cost from the disk's.
    shm = "/dev/shm" if os.path.isdir("/dev/shm") else None
    shmdir = tempfile.mkdtemp(prefix="wsinspect-bench-", dir=shm)
    try:
        for v in variants:
            flags = v.replace("{tmp}", tmpdir).replace("{shm}", shmdir)
            if opts.baseline:
                targets.append(start_proxy(flags, server_port, opts.baseline, "before: "))
            targets.append(start_proxy(flags, server_port))
        results: dict[str, dict[str, list[float]]] = {t.name: {} for t in targets}

        def add(t: Target, key: str, value: float) -> None:
            results[t.name].setdefault(key, []).append(value)

        for r in range(rounds):
            print(f"round {r + 1}/{rounds}", file=sys.stderr)
            for t in targets:
                add(t, "64 B msgs/s (100 in flight)", float(ask(("throughput", t.port, 64, 100, seconds))))  # type: ignore[arg-type]
                mps = float(ask(("throughput", t.port, 1 << 20, 4, seconds)))  # type: ignore[arg-type]
                add(t, "1 MiB MiB/s (4 in flight)", mps)
                p50, p99 = ask(("rtt", t.port, 500 if opts.quick else 2000))  # type: ignore[misc]
                add(t, "round trip p50 µs", p50)
                add(t, "round trip p99 µs", p99)
        # Rounds of their own, after the others: thousands of connections opened and closed
        # change how the echo peers' later traffic is timed (direct 64 B rates tripled). Several
        # rounds, as a single opening of 1,000 connections (~0.1 s direct) swings by half.
        for r in range(0 if opts.skip_scale else rounds):
            for count in scales:
                for t in targets:
                    before = t.rss_kib()
                    parent_conn.send(("open", t.port, count, 100))
                    msg = parent_conn.recv()
                    if msg[0] == "error":
                        raise RuntimeError(msg[1])
                    time.sleep(0.5)
                    after = t.rss_kib()
                    parent_conn.send("measured")
                    status, elapsed = parent_conn.recv()
                    if status == "error":
                        raise RuntimeError(elapsed)
                    add(t, f"open {count} conns ms", float(elapsed) * 1000)
                    if t.proc is not None and r == 0:  # growth: later rounds reuse the memory
                        add(t, f"KiB per conn ({count} open)", (after - before) / count)
    finally:
        parent_conn.send(None)
        client.join(5)
        for t in targets:
            if t.proc is not None:
                t.proc.terminate()
                t.proc.wait(10)
        server.terminate()
        for d in (tmpdir, shmdir):
            shutil.rmtree(d, ignore_errors=True)  # recordings of a run can be gigabytes

    if opts.verbose:
        for name, figures in results.items():
            for key, values in figures.items():
                print(f"{name:<20} {key:<30} " + "  ".join(f"{v:,.1f}" for v in values))
    direct = results["direct"]
    print(f"\nwsinspect relay benchmark ({rounds} round(s), medians; ratio = proxy / direct)")
    width = max(len(k) for k in direct) if direct else 20
    for key in next(iter(results.values())):
        d = statistics.median(direct[key]) if key in direct else None
        row = f"{key:<{width}}  direct {d:>12,.1f}" if d is not None else f"{key:<{width}}  direct {'-':>12}"
        for t in targets[1:]:
            vals = results[t.name].get(key)
            if not vals:
                continue
            m = statistics.median(vals)
            ratio = f" ({m / d:.2f}×)" if d else ""  # noqa: RUF001
            row += f" | {t.name}: {m:>12,.1f}{ratio}"
        print(row)
    for key in results[targets[-1].name]:
        if key.startswith("KiB per conn"):
            for t in targets[1:]:
                print(f"{key:<{width}}  {t.name}: {statistics.median(results[t.name][key]):.1f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
