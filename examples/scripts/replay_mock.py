"""Answer a client with a recording's server messages, in their recorded order: a stand-in for
the real server in CI.

The server messages recorded before the client's first message are sent when a client
connects; those recorded after the client's Nth message are the answer to its Nth message,
whatever it says. Once the recorded messages run out, the mock sends nothing more.

    REPLAY_RECORDING=session.jsonl wsinspect mock --script examples/scripts/replay_mock.py --listen 127.0.0.1:9000

``REPLAY_RECORDING`` (required) is a recording made with ``--record``; ``REPLAY_CONN`` picks
its connection (default: the first one with a message). A payload longer than the recording's
capture limit was recorded cut, and is sent cut.
"""

from __future__ import annotations

import os

from wsinspect.events import MessageSeen
from wsinspect.recording.reader import read_events
from wsinspect.script import ScriptMessage
from wsinspect.script.conn import CloseInfo, Conn

Answer = list[str | bytes]


def load(path: str, conn_no: int | None) -> list[Answer]:
    """The recorded server messages: ``[before the client's first, after its first, ...]``."""
    answers: list[Answer] = [[]]
    for event in read_events(path):
        if not isinstance(event, MessageSeen):
            continue
        if conn_no is None:
            conn_no = event.conn
        if event.conn != conn_no:
            continue
        if event.direction == "c2s":
            answers.append([])
        else:
            message = event.message
            text = message.opcode == 1
            answers[-1].append(message.payload.decode("utf-8", "replace") if text
                               else message.payload)
    return answers


ANSWERS = load(os.environ["REPLAY_RECORDING"],
               int(os.environ["REPLAY_CONN"]) if os.environ.get("REPLAY_CONN") else None)
SEEN: dict[int, int] = {}  # connection → how many messages the client has sent


def on_open(conn: Conn) -> None:
    SEEN[conn.id] = 0
    for payload in ANSWERS[0]:
        conn.send("s2c", payload)


def on_message(conn: Conn, msg: ScriptMessage) -> Answer | None:
    SEEN[conn.id] += 1
    n = SEEN[conn.id]
    return ANSWERS[n] if n < len(ANSWERS) and ANSWERS[n] else None


def on_close(conn: Conn, info: CloseInfo) -> None:
    SEEN.pop(conn.id, None)
