"""Crash safety of ``wsinspect proxy --record`` (a real subprocess, real peers on loopback)."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
from websockets.sync.client import connect
from websockets.sync.server import ServerConnection, serve

from wsinspect.events import MessageSeen
from wsinspect.recording.reader import read_events


@contextmanager
def echo_server() -> Iterator[str]:
    def handler(ws: ServerConnection) -> None:
        for message in ws:
            ws.send(message)

    with serve(handler, "127.0.0.1", 0, compression=None) as srv:
        thread = threading.Thread(target=srv.serve_forever, daemon=True)
        thread.start()
        host, port = srv.socket.getsockname()[:2]
        try:
            yield f"ws://{host}:{port}"
        finally:
            srv.shutdown()
            thread.join(10)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@contextmanager
def recording_proxy(upstream: str, record: Path, *flags: str) -> Iterator[tuple[subprocess.Popen[bytes], str]]:
    port = free_port()  # (-q prints nothing, not even where it listens)
    proc = subprocess.Popen(
        [sys.executable, "-m", "wsinspect", "proxy", "-u", upstream, "-l", f"127.0.0.1:{port}",
         "-w", str(record), *flags],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    try:
        # Keep draining stdout so the proxy never blocks on a full pipe.
        threading.Thread(target=proc.stdout.read, daemon=True).start()  # type: ignore[union-attr]
        deadline = time.monotonic() + 20
        while True:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=1).close()
                break
            except OSError:
                assert proc.poll() is None, f"proxy did not start: {proc.stderr.read()!r}"  # type: ignore[union-attr]
                assert time.monotonic() < deadline, "proxy did not listen within 20 s"
                time.sleep(0.05)
        yield proc, f"ws://127.0.0.1:{port}"
    finally:
        if proc.poll() is None:
            proc.kill()
        proc.wait(10)


def traffic(url: str, stop_at: float) -> list[tuple[str, float]]:
    """Send numbered messages one after the other until ``stop_at`` or until the connection
    breaks; return ``(message, time its echo came back)`` for each echoed one."""
    echoed: list[tuple[str, float]] = []
    try:
        with connect(url + "/load", open_timeout=10, close_timeout=1, compression=None) as ws:
            n = 0
            while time.monotonic() < stop_at:
                n += 1
                text = f"message {n}"
                ws.send(text)
                assert ws.recv(timeout=10) == text
                echoed.append((text, time.time()))
    except Exception:  # the proxy was killed under us: expected
        pass
    return echoed


# Quiet, the recording alone watches the frames: the recording tier (relay.observers) writes them.
TIERS = pytest.mark.parametrize("flags", [(), ("-q",)], ids=["with-log", "quiet"])


@TIERS
def test_kill_9_under_traffic_leaves_a_readable_file_with_everything_older_than_100ms(
    tmp_path: Path, flags: tuple[str, ...]
) -> None:
    record = tmp_path / "rec.jsonl"
    with echo_server() as upstream, recording_proxy(upstream, record, *flags) as (proc, url):
        killed_at: list[float] = []

        def kill_soon() -> None:
            time.sleep(0.8)
            killed_at.append(time.time())
            os.kill(proc.pid, signal.SIGKILL)

        killer = threading.Thread(target=kill_soon)
        killer.start()
        echoed = traffic(url, time.monotonic() + 20)
        killer.join(20)
        proc.wait(10)
    assert proc.returncode == -signal.SIGKILL
    assert len(echoed) > 50, "not enough traffic to test anything"
    warnings: list[str] = []
    events = list(read_events(str(record), warn=warnings.append))  # never raises
    assert all("incomplete" in w for w in warnings)
    recorded = {
        (e.direction, e.message.payload.decode())
        for e in events
        if isinstance(e, MessageSeen)
    }
    old = [text for text, at in echoed if at < killed_at[0] - 0.1]
    assert old, "no message is older than 100 ms"
    missing = [t for t in old if ("c2s", t) not in recorded or ("s2c", t) not in recorded]
    assert missing == []


@TIERS
@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT], ids=["SIGTERM", "SIGINT"])
def test_signal_ends_the_recording_cleanly(
    tmp_path: Path, sig: signal.Signals, flags: tuple[str, ...]
) -> None:
    record = tmp_path / "rec.jsonl"
    with echo_server() as upstream, recording_proxy(upstream, record, *flags) as (proc, url):
        echoed = traffic(url, time.monotonic() + 0.3)
        proc.send_signal(sig)
        proc.wait(10)
    warnings: list[str] = []
    events = list(read_events(str(record), warn=warnings.append))
    assert warnings == []
    assert record.read_bytes().endswith(b"\n")
    messages = [e for e in events if isinstance(e, MessageSeen)]
    assert len(messages) == 2 * len(echoed)


def test_unwritable_record_path_is_refused_before_listening(tmp_path: Path) -> None:
    proc = subprocess.run(
        [sys.executable, "-m", "wsinspect", "proxy", "-u", "ws://127.0.0.1:9", "-l", "127.0.0.1:0",
         "-w", str(tmp_path / "no" / "such" / "dir.jsonl")],
        capture_output=True, text=True, timeout=30,
    )
    assert proc.returncode == 2
    assert "cannot write" in proc.stderr and "--record" in proc.stderr
    assert "listening" not in proc.stdout
