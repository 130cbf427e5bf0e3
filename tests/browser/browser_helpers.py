"""Helpers for the real-browser tests: a headless Chromium, an upstream that serves a page and a
compressing WebSocket echo, and ``wsinspect`` run as a user runs it (a subprocess).

Only loopback traffic; every wait has a deadline; every process started here is stopped here.
"""

from __future__ import annotations

import contextlib
import os
import queue
import shutil
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from http import HTTPStatus
from pathlib import Path
from typing import Any

import pytest

CHROMIUM_ARGS = [
    "--no-sandbox",  # the tests may run as root in a container
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",  # no traffic beyond loopback
    "--disable-component-update",
    "--disable-sync",
    "--disable-extensions",
]

#: How long one step (a page load, an exchange, a log line) may take before the test fails.
STEP_TIMEOUT = 20.0


def chromium_path() -> str | None:
    """The Chromium binary: ``$WSINSPECT_CHROMIUM``, else ``chromium`` on PATH (Debian's
    ``chromium`` package installs /usr/bin/chromium)."""
    explicit = os.environ.get("WSINSPECT_CHROMIUM")
    if explicit:
        return explicit if os.access(explicit, os.X_OK) else None
    return shutil.which("chromium")


def require_chromium() -> str:
    """The Chromium path, or skip the test with the reason and how to get it."""
    path = chromium_path()
    if path is None:
        pytest.skip("Chromium not found (apt-get install chromium, or set WSINSPECT_CHROMIUM)")
    try:
        import playwright.sync_api  # noqa: F401
    except ImportError:
        pytest.skip("the Python package 'playwright' is not installed (pip install -e '.[test]')")
    return path


# -- the upstream: a page over plain HTTP and a WebSocket echo, on one port ------------------------

PAGE = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>browser test</title>
<link rel="icon" href="data:,"></head>
<body><pre id="log"></pre>
<script>
"use strict";
// The URL to connect to: ?ws=URL, else this page's own host (the page came through the proxy).
const WS_URL = new URLSearchParams(location.search).get("ws")
  || `${location.protocol === "https:" ? "wss" : "ws"}://${location.host}/ws`;
// Binary messages are described as {binary: N}: N bytes of a fixed pattern, built here and
// checked here on the way back (a few MiB need not cross the DevTools protocol).
const pattern = (n) => { const b = new Uint8Array(n); for (let i = 0; i < n; i++) b[i] = (i * 7919) % 251; return b; };
const matches = (buf) => { const a = new Uint8Array(buf), p = pattern(a.length); return a.every((x, i) => x === p[i]); };
// Open a WebSocket (with the subprotocols asked for), send every message, wait for as many
// echoes, close with code and reason; resolve with what the browser saw.
function exchange(messages, code, reason, protocols = []) {
  return new Promise((resolve, reject) => {
    const ws = new WebSocket(WS_URL, protocols);
    ws.binaryType = "arraybuffer";
    const received = [];
    ws.onerror = () => reject(new Error("WebSocket error"));
    ws.onopen = () => {
      for (const m of messages) ws.send(typeof m === "string" ? m : pattern(m.binary));
    };
    ws.onmessage = (e) => {
      received.push(typeof e.data === "string" ? e.data
                    : {binary: e.data.byteLength, intact: matches(e.data)});
      if (received.length === messages.length) ws.close(code, reason);
    };
    ws.onclose = (e) => resolve({
      received, code: e.code, reason: e.reason, wasClean: e.wasClean,
      extensions: ws.extensions, protocol: ws.protocol, url: ws.url,
    });
  });
}
</script></body></html>
"""

WS_PATH = "/ws"
#: The echo sends messages longer than this (in characters or bytes) back in fragments.
FRAGMENT_OVER = 64 * 1024


class Upstream:
    """A ``websockets`` server (compression on, its default) in a thread: ``GET /`` is the page
    above, ``/ws`` echoes every message with its type."""

    def __init__(self, **serve_options: Any) -> None:
        from websockets.datastructures import Headers
        from websockets.exceptions import ConnectionClosed
        from websockets.http11 import Request, Response
        from websockets.sync.server import ServerConnection, serve

        def echo(ws: ServerConnection) -> None:
            assert ws.request is not None
            self.requests.append(ws.request)
            # Messages over FRAGMENT_OVER come back fragmented (RFC 6455 §5.4), so the
            # browser and the inspector see a compressed message spread over several frames.
            with contextlib.suppress(ConnectionClosed):  # a close with code 4000 is "an error"
                for message in ws:
                    if len(message) > FRAGMENT_OVER:
                        step = FRAGMENT_OVER // 2
                        ws.send(message[i : i + step] for i in range(0, len(message), step))
                    else:
                        ws.send(message)

        def process_request(ws: ServerConnection, request: Request) -> Response | None:
            if request.headers.get("Upgrade", "").lower() == "websocket":
                return None  # the WebSocket handshake goes on as usual
            if request.path.split("?")[0] == "/":
                body = PAGE.encode("utf-8")
                headers = Headers([
                    ("Content-Type", "text/html; charset=utf-8"),
                    ("Content-Length", str(len(body))),
                    ("Cache-Control", "no-store"),
                    ("Connection", "close"),
                ])
                return Response(200, "OK", headers, body)
            return ws.respond(HTTPStatus.NOT_FOUND, "not found\n")

        self.requests: list[Request] = []  # the WebSocket handshakes received, in order
        options: dict[str, Any] = {"compression": "deflate", "ping_interval": None,
                                   "max_size": None, **serve_options}
        self.server = serve(echo, "127.0.0.1", 0, process_request=process_request, **options)
        self.scheme = "s" if options.get("ssl") else ""
        self.port: int = self.server.socket.getsockname()[1]
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    @property
    def http_url(self) -> str:
        return f"http{self.scheme}://127.0.0.1:{self.port}/"

    @property
    def ws_url(self) -> str:
        return f"ws{self.scheme}://127.0.0.1:{self.port}"

    def stop(self) -> None:
        self.server.shutdown()
        self.thread.join(timeout=10)


# -- wsinspect as a subprocess ---------------------------------------------------------------------


class Process:
    """A ``python -m wsinspect ...`` subprocess whose stdout lines are read by a thread, so a
    test can wait for a line with a deadline."""

    def __init__(self, *args: str, cwd: Path | None = None) -> None:
        env = dict(os.environ, PYTHONUNBUFFERED="1", NO_COLOR="1")
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "wsinspect", *args],
            stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
            text=True, encoding="utf-8", env=env, cwd=cwd,
        )
        self.lines: list[str] = []
        self._queue: queue.Queue[str | None] = queue.Queue()
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()
        self.stderr = ""

    def _read(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            self._queue.put(line.rstrip("\n"))
        self._queue.put(None)

    def wait_for_line(self, predicate: Callable[[str], bool], timeout: float = STEP_TIMEOUT) -> str:
        """The first new stdout line for which ``predicate`` holds; fails after ``timeout``."""
        deadline = time.monotonic() + timeout
        while True:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                pytest.fail(f"no matching line within {timeout} s; got:\n" + "\n".join(self.lines))
            try:
                line = self._queue.get(timeout=remaining)
            except queue.Empty:
                continue
            if line is None:
                self._queue.put(None)  # stay at end of file for the next caller
                pytest.fail("wsinspect exited; stdout:\n" + "\n".join(self.lines)
                            + "\nstderr:\n" + self._stderr())
            self.lines.append(line)
            if predicate(line):
                return line

    def _stderr(self) -> str:
        if self.proc.poll() is None:
            return "(still running)"
        assert self.proc.stderr is not None
        return self.proc.stderr.read()

    def stop(self) -> int:
        """SIGTERM (wsinspect closes its recording on the way out), then collect the rest of
        stdout. Returns the exit status."""
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
        try:
            self.proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            self.proc.kill()  # the process this helper started
            self.proc.wait(timeout=15)
        self._reader.join(timeout=15)
        while True:
            try:
                line = self._queue.get_nowait()
            except queue.Empty:
                break
            if line is not None:
                self.lines.append(line)
        assert self.proc.stderr is not None
        self.stderr = self.proc.stderr.read()
        return self.proc.returncode


@contextmanager
def running(*args: str) -> Iterator[Process]:
    process = Process(*args)
    try:
        yield process
    finally:
        process.stop()


# -- Chromium ----------------------------------------------------------------------------------------


@contextmanager
def chromium_page(executable: str, *, args: tuple[str, ...] = (),
                  **context_options: Any) -> Iterator[Any]:
    """A fresh page in a headless Chromium driven by Playwright (the system Chromium: no
    browser download). Every Playwright call on it times out after ``STEP_TIMEOUT``.
    ``args`` are extra command-line switches (``--proxy-server=...``); ``context_options`` go
    to ``new_context`` (e.g. ``ignore_https_errors=True``)."""
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=executable, args=[*CHROMIUM_ARGS, *args],
                                    headless=True, timeout=STEP_TIMEOUT * 1000)
        try:
            page = browser.new_context(**context_options).new_page()
            page.set_default_timeout(STEP_TIMEOUT * 1000)
            yield page
        finally:
            browser.close()
