"""relay_bench: an on_message that rewrites every message (the same bytes, written by the
proxy: every message takes the rewrite path)."""


def on_message(conn, msg):
    return msg.data
