"""Drop heartbeat messages, both ways.

A heartbeat is a text message reading ``ping``, ``pong`` or ``heartbeat``, or a JSON object
whose ``type`` is one of those (``{"type": "heartbeat"}``). Neither side gets the other's
heartbeats; every other message goes on unchanged. (WebSocket ping and pong *frames* are
control frames: scripts never see them, and they go on as they came.)

    wsinspect proxy -u ws://127.0.0.1:9000 --script examples/scripts/drop_heartbeats.py
"""

from __future__ import annotations

import json

from wsinspect.script import DROP, ScriptMessage
from wsinspect.script.conn import Conn

HEARTBEATS = {"ping", "pong", "heartbeat"}


def is_heartbeat(msg: ScriptMessage) -> bool:
    if not msg.is_text:
        return False
    text = msg.text.strip()
    if text.lower() in HEARTBEATS:
        return True
    if not text.startswith("{"):
        return False  # (not JSON: no need to parse it)
    try:
        obj = json.loads(text)
    except ValueError:
        return False
    return isinstance(obj, dict) and obj.get("type") in HEARTBEATS


def on_message(conn: Conn, msg: ScriptMessage) -> object:
    return DROP if is_heartbeat(msg) else None
