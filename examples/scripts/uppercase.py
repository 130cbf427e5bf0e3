"""Uppercase the client's chat messages.

Every text message from the client reaches the server in upper case; binary messages and the
server's messages go on unchanged, byte for byte.

    wsinspect proxy -u ws://127.0.0.1:9000 --script examples/scripts/uppercase.py
"""

from __future__ import annotations

from wsinspect.script import ScriptMessage
from wsinspect.script.conn import Conn


def on_message(conn: Conn, msg: ScriptMessage) -> str | None:
    if msg.direction != "c2s" or not msg.is_text:
        return None  # forwarded as it came
    upper = msg.text.upper()
    return upper if upper != msg.text else None  # (None: not marked as edited)
