"""relay_bench: an async on_message that changes nothing (every message waits for it)."""


async def on_message(conn, msg):
    return None
