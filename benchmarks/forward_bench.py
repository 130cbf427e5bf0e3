"""Forward mode with TLS on both legs against a direct TLS connection, in one run.

    python benchmarks/forward_bench.py                  # 3 rounds of 3 s
    python benchmarks/forward_bench.py --baseline /tmp/old/bin/python   (an install with --forward)

The echo server (relay_bench's, behind TLS with a certificate for ``localhost`` from a
throwaway CA) plays the real host. The direct client connects to it with TLS; the proxied one
asks ``wsinspect proxy --forward -q`` for a ``CONNECT localhost:PORT`` tunnel and does TLS
through it with wsinspect's leaf certificate, which wsinspect terminates, opening its own TLS
to the server. Prints medians over rounds and the ratio to direct:
- S1: msgs/s for 64-byte text messages echoed with 100 in flight;
- S3: round trip p50/p99 with one 64-byte message in flight.
Each peer runs in its own process, as does the proxy. All traffic stays on 127.0.0.1; every
loop is bounded in count and time.
"""

from __future__ import annotations

import argparse
import asyncio
import multiprocessing as mp
import shutil
import socket
import ssl
import statistics
import subprocess
import sys
import tempfile
from concurrent.futures import ProcessPoolExecutor
from functools import partial
from pathlib import Path

import trustme
from relay_bench import (
    Client,
    EchoServer,
    connect,
    free_port,
    raise_fd_limit,
    round_trips,
    throughput,
    wait_port,
)

HOST = "localhost"


def run_tls_server(port: int, cert_dir: str, ready: mp.synchronize.Event) -> None:
    raise_fd_limit()
    ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ctx.load_cert_chain(f"{cert_dir}/server.pem")

    async def main() -> None:
        loop = asyncio.get_running_loop()
        server = await loop.create_server(EchoServer, "127.0.0.1", port, ssl=ctx, backlog=1024)
        ready.set()
        async with server:
            await server.serve_forever()

    asyncio.run(main())


async def open_tls(port: int, size: int, *, cafile: str, proxy_port: int | None) -> Client:
    """TLS to the server at ``port`` directly, or through a CONNECT tunnel of the proxy."""
    ctx = ssl.create_default_context(cafile=cafile)
    if proxy_port is None:
        return await connect(port, size, ssl=ctx, server_hostname=HOST)
    sock = socket.create_connection(("127.0.0.1", proxy_port))
    sock.sendall(f"CONNECT {HOST}:{port} HTTP/1.1\r\nHost: {HOST}:{port}\r\n\r\n".encode())
    head = b""
    while b"\r\n\r\n" not in head:
        chunk = sock.recv(4096)
        if not chunk:
            raise ConnectionError("the proxy closed the tunnel")
        head += chunk
    if not head.startswith(b"HTTP/1.1 200 "):
        raise ConnectionError(head.decode(errors="replace"))
    sock.setblocking(False)
    return await connect(port, size, sock=sock, ssl=ctx, server_hostname=HOST)


def job(kind: str, port: int, cafile: str, proxy_port: int | None, seconds: float) -> object:
    opener = partial(open_tls, cafile=cafile, proxy_port=proxy_port)
    if kind == "S1":
        return asyncio.run(throughput(port, 64, 100, seconds, opener))
    return asyncio.run(round_trips(port, 2000, opener))


def start_forward(python: str, ca_dir: str, upstream_ca: str) -> tuple[subprocess.Popen[bytes], int]:
    port = free_port()
    cmd = [python, "-P", "-m", "wsinspect", "proxy", "--forward", "-q",
           "--listen", f"127.0.0.1:{port}", "--ca-dir", ca_dir, "--upstream-ca", upstream_ca]
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL)
    wait_port(port)
    return proc, port


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--seconds", type=float, default=3.0)
    parser.add_argument("--baseline", metavar="PYTHON",
                        help="also measure this interpreter's wsinspect (it needs --forward)")
    opts = parser.parse_args()
    raise_fd_limit()
    tmp = Path(tempfile.mkdtemp(prefix="wsinspect-forward-bench-"))
    real_ca = trustme.CA()
    real_ca.cert_pem.write_to_path(str(tmp / "real-ca.pem"))
    real_ca.issue_cert(HOST).private_key_and_cert_chain_pem.write_to_path(str(tmp / "server.pem"))
    ca_dir = str(tmp / "wsinspect-ca")
    subprocess.run([sys.executable, "-P", "-m", "wsinspect", "ca", "--ca-dir", ca_dir, "--path"],
                   check=True, stdout=subprocess.DEVNULL)
    wsinspect_ca = f"{ca_dir}/wsinspect-ca.pem"

    ctx = mp.get_context("spawn")
    server_port = free_port()
    ready = ctx.Event()
    server = ctx.Process(target=run_tls_server, args=(server_port, str(tmp), ready), daemon=True)
    server.start()
    ready.wait(15)
    proxies: list[tuple[str, subprocess.Popen[bytes], int]] = []
    results: dict[str, dict[str, list[float]]] = {}
    try:
        if opts.baseline:
            proxies.append(("before", *start_forward(opts.baseline, ca_dir, str(tmp / "real-ca.pem"))))
        proxies.append(("forward -q", *start_forward(sys.executable, ca_dir, str(tmp / "real-ca.pem"))))
        targets: list[tuple[str, int | None, str]] = [("direct TLS", None, str(tmp / "real-ca.pem"))]
        targets += [(name, port, wsinspect_ca) for name, _proc, port in proxies]
        with ProcessPoolExecutor(1, mp_context=ctx) as pool:
            for r in range(opts.rounds):
                print(f"round {r + 1}/{opts.rounds}", file=sys.stderr)
                for name, proxy_port, cafile in targets:
                    figures = results.setdefault(name, {})
                    rate = pool.submit(job, "S1", server_port, cafile, proxy_port, opts.seconds)
                    figures.setdefault("S1 64 B msgs/s", []).append(float(rate.result(120)))  # type: ignore[arg-type]
                    p50, p99 = pool.submit(job, "S3", server_port, cafile, proxy_port,
                                           opts.seconds).result(120)  # type: ignore[misc]
                    figures.setdefault("S3 round trip p50 µs", []).append(p50)
                    figures.setdefault("S3 round trip p99 µs", []).append(p99)
    finally:
        for _name, proc, _port in proxies:
            proc.terminate()
            proc.wait(10)
        server.terminate()
        shutil.rmtree(tmp, ignore_errors=True)

    direct = results["direct TLS"]
    print(f"\nforward mode, TLS both legs ({opts.rounds} round(s), medians; ratio = proxy / direct)")
    for key, values in direct.items():
        d = statistics.median(values)
        row = f"{key:<22} direct TLS {d:>12,.1f}"
        for name, figures in results.items():
            if name != "direct TLS":
                m = statistics.median(figures[key])
                row += f" | {name}: {m:>12,.1f} ({m / d:.2f}×)"  # noqa: RUF001
        print(row)
    return 0


if __name__ == "__main__":
    sys.exit(main())
