"""Headless Chromium against ``wsinspect mock``: Chromium offers permessage-deflate, the mock
declines it, and the page gets the welcome and the script's answers."""

from __future__ import annotations

import json
import re
import textwrap
from pathlib import Path

from browser_helpers import chromium_page, require_chromium, running

SCRIPT = """
    def on_open(conn):
        conn.send("s2c", "welcome")

    def on_message(conn, msg):
        if msg.is_text:
            return ["echo " + msg.text, msg.text.encode()]
        return None
"""

EXCHANGE = """(url) => new Promise((resolve, reject) => {
  const ws = new WebSocket(url);
  ws.binaryType = "arraybuffer";
  const got = [];
  ws.onerror = () => reject(new Error("WebSocket error"));
  ws.onopen = () => ws.send("grüße");
  ws.onmessage = (e) => {
    got.push(typeof e.data === "string" ? e.data : new TextDecoder().decode(e.data));
    if (got.length === 3) ws.close(1000, "done");
  };
  ws.onclose = (e) => resolve({got, code: e.code, extensions: ws.extensions});
})"""


def test_chromium_gets_the_welcome_and_the_answers(tmp_path: Path) -> None:
    executable = require_chromium()
    script = tmp_path / "chat_mock.py"
    script.write_text(textwrap.dedent(SCRIPT))
    with running("mock", "--script", str(script), "--listen", "127.0.0.1:0",
                 "--log-format", "json") as mock:
        line = mock.wait_for_line(lambda s: '"listening on ' in s)
        match = re.search(r"listening on ws://127\.0\.0\.1:(\d+)", json.loads(line)["text"])
        assert match
        with chromium_page(executable) as page:
            page.set_content("<!doctype html><title>mock</title>")
            result = page.evaluate(EXCHANGE, f"ws://127.0.0.1:{match.group(1)}/")
    assert result["got"] == ["welcome", "echo grüße", "grüße"]
    assert result["code"] == 1000
    assert result["extensions"] == ""  # permessage-deflate offered, declined
