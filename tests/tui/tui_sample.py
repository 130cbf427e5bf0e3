"""A small, fixed session: two connections, text/JSON/binary/fragmented/ping/close frames, a
violation and an undelivered frame. Frames come from ``encode_frame`` through the real
``Inspector``, so headers, mask keys and message numbers are what the relay would report."""

from __future__ import annotations

from wsinspect.events import (
    ConnectionClosed,
    ConnectionOpened,
    Event,
    FrameSeen,
    MessageSeen,
)
from wsinspect.wire.checks import Violation
from wsinspect.wire.frames import encode_frame
from wsinspect.wire.inspector import Inspector

T0 = 1_700_000_000.0  # 2023-11-14 22:13:20 UTC
KEY = bytes.fromhex("1a2b3c4d")


class Session:
    """Builds the events of one connection, frame by frame."""

    def __init__(self, conn: int, out: list[Event]) -> None:
        self.conn = conn
        self.out = out
        self.seq = 0
        self.inspectors = {"c2s": Inspector("c2s"), "s2c": Inspector("s2c")}

    def frame(self, direction: str, ts: float, opcode: int, payload: bytes, *, fin: bool = True,
              delivered: bool = True, violation: Violation | None = None, rsv1: bool = False) -> None:
        key = KEY if direction == "c2s" else None
        data = encode_frame(opcode, payload, fin=fin, mask_key=key, rsv1=rsv1)
        for f in self.inspectors[direction].feed(data):
            if violation is not None:
                f.violations = (violation,)
            self.seq += 1
            self.out.append(FrameSeen(self.conn, self.seq, direction, ts, f, delivered))
            if f.message is not None:
                self.out.append(MessageSeen(self.conn, direction, ts, f.message, f.message_no))


def sample_events() -> list[Event]:
    out: list[Event] = []
    req = (("Host", "127.0.0.1:8080"), ("Upgrade", "websocket"), ("Connection", "Upgrade"),
           ("Sec-WebSocket-Key", "dGhlIHNhbXBsZSBub25jZQ=="), ("Sec-WebSocket-Version", "13"),
           ("Sec-WebSocket-Protocol", "chat"))
    resp = (("Upgrade", "websocket"), ("Connection", "Upgrade"),
            ("Sec-WebSocket-Accept", "s3pPLMBiTxaQ9kYGzzhZRbK+xOo="),
            ("Sec-WebSocket-Protocol", "chat"))
    out.append(ConnectionOpened(1, T0, "127.0.0.1:50001", "/chat", "ws://127.0.0.1:9000/chat",
                                req, 101, resp, subprotocol="chat"))
    s1 = Session(1, out)
    s1.frame("c2s", T0 + 0.101, 1, b"hello")
    s1.frame("s2c", T0 + 0.102, 1, b"hello")
    s1.frame("c2s", T0 + 0.203, 1, b'{"op":"subscribe","topics":["a","b"],"n":1}')
    s1.frame("s2c", T0 + 0.204, 1, b'{"ok":true,"topics":["a","b"]}')
    s1.frame("c2s", T0 + 0.305, 2, bytes(range(40)))
    s1.frame("c2s", T0 + 0.406, 1, b"frag-one ", fin=False)
    s1.frame("c2s", T0 + 0.407, 0, b"frag-two ", fin=False)
    s1.frame("c2s", T0 + 0.408, 0, b"frag-end")
    s1.frame("s2c", T0 + 0.509, 9, b"ping?")
    s1.frame("c2s", T0 + 0.510, 10, b"ping?")
    s1.frame("s2c", T0 + 0.611, 1, b"dropped by a fault", delivered=False)
    s1.frame("c2s", T0 + 0.712, 1, b"\xff\xfe not utf-8",
             violation=Violation("invalid-utf8", "RFC 6455 §8.1", "client",
                                 "text frame payload is not valid UTF-8", 1007))
    s1.frame("c2s", T0 + 0.813, 8, (1000).to_bytes(2, "big") + b"bye")
    s1.frame("s2c", T0 + 0.814, 8, (1000).to_bytes(2, "big") + b"bye")
    out.append(ConnectionClosed(1, T0 + 0.815, "client", "close-handshake", 1000, "bye",
                                (1000, "bye"), (1000, "bye"), 0.815,
                                {"c2s": 9, "s2c": 5}, {"c2s": 120, "s2c": 60}))
    out.append(ConnectionOpened(2, T0 + 1.0, "127.0.0.1:50002", "/feed", "ws://127.0.0.1:9000/feed",
                                req[:5], 101, resp[:3]))
    s2 = Session(2, out)
    for i in range(30):
        s2.frame("s2c", T0 + 1.1 + i * 0.01, 1, f'{{"tick":{i},"price":{100 + i}.5}}'.encode())
    return out
