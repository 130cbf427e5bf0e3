"""Push a message to the client every N seconds, on top of what the server sends.

A task started in ``on_open`` sends ``{"type": "push", "n": 1}``, then ``n: 2``, ... to the
client, every ``PUSH_EVERY`` seconds (environment; default 5). The task ends with its
connection. The server never sees the pushes; the log shows them as ``injected`` (by script).

    PUSH_EVERY=2 wsinspect proxy -u ws://127.0.0.1:9000 --script examples/scripts/server_push.py
"""

from __future__ import annotations

import json
import os

import trio

from wsinspect.script.conn import Conn

EVERY = float(os.environ.get("PUSH_EVERY", "5"))


async def push(conn: Conn) -> None:
    n = 0
    while True:
        await trio.sleep(EVERY)
        n += 1
        conn.send("s2c", json.dumps({"type": "push", "n": n}))


def on_open(conn: Conn) -> None:
    conn.start_soon(push, conn)
