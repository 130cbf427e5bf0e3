"""relay_bench: an on_message that reads every message and changes nothing."""


def on_message(conn, msg):
    return None
