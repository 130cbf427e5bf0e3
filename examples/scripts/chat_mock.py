"""A chat room, with no server behind it: every client's message goes to every connected client
(its sender included), text as text and binary as binary.

    wsinspect mock --script examples/scripts/chat_mock.py --listen 127.0.0.1:9000

Connect two clients to ``ws://127.0.0.1:9000/`` and type in one of them.

The room is a module-level set. When the file changes, new connections run the new version,
whose room starts empty: clients that were there before stay in the old one.
"""

from __future__ import annotations

from wsinspect.script import ScriptMessage
from wsinspect.script.conn import CloseInfo, Conn

ROOM: set[Conn] = set()


def on_open(conn: Conn) -> None:
    ROOM.add(conn)
    conn.log(f"joined: {len(ROOM)} in the room")


def on_message(conn: Conn, msg: ScriptMessage) -> None:
    payload = msg.text if msg.is_text else msg.data
    for member in ROOM:
        member.send("s2c", payload)
    return None  # (the sender got its copy above; an answer would send a second one)


def on_close(conn: Conn, info: CloseInfo) -> None:
    ROOM.discard(conn)
