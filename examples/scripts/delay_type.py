"""Delay one message type: the server's ``{"type": "price", ...}`` messages arrive 500 ms late.

Every other message goes on at once and unchanged, so later messages overtake a delayed price.
The hook itself does not wait: an ``async`` ``on_message`` that awaited ``trio.sleep`` would
hold up every message behind the price too (a direction keeps its order while a hook runs).
Instead the hook drops the price message and starts a task that sends it again after the
delay. The log shows each delayed price as ``dropped``, then ``injected`` (by script).

    wsinspect proxy -u ws://127.0.0.1:9000 --script examples/scripts/delay_type.py

``DELAY_TYPE`` and ``DELAY_MS`` (environment) change the type and the delay.
"""

from __future__ import annotations

import json
import os

import trio

from wsinspect.script import DROP, ScriptMessage
from wsinspect.script.conn import Conn

TYPE = os.environ.get("DELAY_TYPE", "price")
DELAY = float(os.environ.get("DELAY_MS", "500")) / 1000


def message_type(msg: ScriptMessage) -> object:
    if not msg.is_text or not msg.text.startswith("{"):
        return None
    try:
        obj = json.loads(msg.text)
    except ValueError:
        return None
    return obj.get("type") if isinstance(obj, dict) else None


async def send_later(conn: Conn, text: str) -> None:
    await trio.sleep(DELAY)
    conn.send("s2c", text)


def on_message(conn: Conn, msg: ScriptMessage) -> object:
    if msg.direction == "s2c" and message_type(msg) == TYPE:
        conn.start_soon(send_later, conn, msg.text)  # (cancelled if the connection ends first)
        return DROP
    return None
