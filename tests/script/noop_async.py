"""The same, as an async hook: every message is collected and decided after it is complete."""

import trio
import trio.lowlevel


async def on_message(conn, msg):
    await trio.lowlevel.checkpoint()
    return None
