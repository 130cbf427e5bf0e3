"""A script that reads every message and changes nothing (the wire must stay byte-exact)."""


def on_message(conn, msg):
    return None
