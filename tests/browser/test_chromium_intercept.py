"""A real browser on a compressed connection that wsinspect acts on: a message Chromium sends
is held and edited, and the proxy injects a message that the page receives. Chromium compresses
with context takeover, so its later messages refer back to the edited one: the proxy must
compress them again for the upstream to stay in sync (a desynchronised stream fails loudly)."""

from __future__ import annotations

import json
import re
import time
from pathlib import Path
from typing import Any

from browser_helpers import WS_PATH, Upstream, chromium_page, require_chromium, running

from wsinspect.cli import main

OPEN = """async (url) => {
  window.got = [];
  window.ws = new WebSocket(url);
  window.ws.onmessage = (e) => window.got.push(e.data);
  await new Promise((ok, fail) => { window.ws.onopen = ok; window.ws.onerror = fail; });
  return window.ws.extensions;
}"""
RECEIVED = "(n) => window.got.length >= n"


def ctl(sock: Path, *argv: str) -> Any:
    """``wsinspect ctl --json ...`` in-process; its answer."""
    import contextlib
    import io

    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        assert main(["ctl", "--control", str(sock), "--json", *argv]) == 0
    return json.loads(out.getvalue())


def test_chromium_edit_and_injection_on_a_compressed_connection(tmp_path: Path) -> None:
    chromium = require_chromium()
    upstream = Upstream()
    sock = tmp_path / "c.sock"
    record = tmp_path / "r.jsonl"
    text = "the same words again and again, so that deflate refers back: "
    try:
        with running("proxy", "--listen", "127.0.0.1:0", "--upstream", upstream.ws_url,
                     "--log-format", "json", "--record", str(record), "--control", str(sock),
                     "--break", "dir=c2s,match=edit-me") as process:
            line = process.wait_for_line(lambda s: '"listening on ' in s)
            match = re.search(r"ws://127\.0\.0\.1:(\d+)", json.loads(line)["text"])
            assert match
            with chromium_page(chromium) as page:
                page.goto(upstream.http_url)
                extensions = page.evaluate(OPEN, f"ws://127.0.0.1:{match.group(1)}{WS_PATH}")
                assert extensions.startswith("permessage-deflate")
                page.evaluate("(m) => window.ws.send(m)", text + "edit-me")
                held: list[dict[str, Any]] = []
                deadline = time.monotonic() + 10
                while not held and time.monotonic() < deadline:
                    held = ctl(sock, "held")
                assert held and held[0]["len"] == len(text + "edit-me") and held[0]["compressed"]
                ctl(sock, "resume", str(held[0]["id"]), "--text", text + "edited")
                page.wait_for_function(RECEIVED, arg=1)
                conn = held[0]["conn"]
                ctl(sock, "send", str(conn), "--to", "client", "--text", "injected by wsinspect")
                page.wait_for_function(RECEIVED, arg=2)
                for i in range(3):
                    page.evaluate("(m) => window.ws.send(m)", text + f"edit-{i}")
                page.wait_for_function(RECEIVED, arg=5)
                got = page.evaluate("() => window.got")
    finally:
        upstream.stop()
    assert got == [text + "edited", "injected by wsinspect", *(text + f"edit-{i}" for i in range(3))]
    lines = [json.loads(x) for x in record.read_text().splitlines()]
    actions = [(d["action"], d["dir"]) for d in lines if d["type"] == "action"]
    assert actions == [("held", "c2s"), ("edited", "c2s"), ("injected", "s2c")]
    written = {d.get("written") for d in lines if d["type"] == "frame"}
    assert {"edited", "injected", "recompressed"} <= written
