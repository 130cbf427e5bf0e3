"""Events of every kind, built from real frame bytes, for recording/export tests."""

from __future__ import annotations

import os

from wsinspect.events import (
    ConnectionClosed,
    ConnectionOpened,
    Event,
    FaultInjected,
    FrameSeen,
    HandshakeRejected,
    HttpExchange,
    MessageAction,
    MessageSeen,
    Notice,
    Written,
)
from wsinspect.wire.checks import Violation
from wsinspect.wire.frames import encode_frame
from wsinspect.wire.inspector import Inspector

T0 = 1_700_000_000.0

REQUEST_HEADERS = (
    ("Host", "127.0.0.1:8080"),
    ("Upgrade", "websocket"),
    ("Connection", "Upgrade"),
    ("Sec-WebSocket-Key", "dGhlIHNhbXBsZSBub25jZQ=="),
    ("Sec-WebSocket-Version", "13"),
    ("Sec-WebSocket-Protocol", "chat"),
    ("Origin", "http://localhost"),
    ("Cookie", "session=s3cr3t; theme=dark"),
    ("Authorization", "Bearer tok3n"),
)
RESPONSE_HEADERS = (
    ("Upgrade", "websocket"),
    ("Connection", "Upgrade"),
    ("Sec-WebSocket-Accept", "s3pPLMBiTxaQ9kYGzzhZRbK+xOo="),
    ("Sec-WebSocket-Protocol", "chat"),
    ("Set-Cookie", "session=n3w; HttpOnly"),
)


def frames_for(direction: str, wire: bytes, *, capture_limit: int = 1 << 20,
               conn: int = 1, seq0: int = 0, ts: float = T0,
               step: float = 0.001, extensions: str | None = None) -> list[Event]:
    """Frame events (and message events) for ``wire`` bytes, as the relay would publish them."""
    inspector = Inspector(direction, capture_limit=capture_limit, extensions=extensions)
    out: list[Event] = []
    for i, frame in enumerate(inspector.feed(wire)):
        when = ts + step * i
        out.append(FrameSeen(conn, seq0 + i + 1, direction, when, frame))
        if frame.message is not None:
            out.append(MessageSeen(conn, direction, when, frame.message, frame.message_no))
    return out


def client_wire() -> bytes:
    """A client's frames: text, fragmented text, binary, ping, close (all masked)."""
    k = os.urandom
    return b"".join(
        [
            encode_frame(1, "héllo".encode(), mask_key=k(4)),
            encode_frame(1, b"frag", fin=False, mask_key=k(4)),
            encode_frame(0, b"mented", mask_key=k(4)),
            encode_frame(2, bytes(range(256)) * 2, mask_key=k(4)),
            encode_frame(9, b"p", mask_key=k(4)),
            encode_frame(8, (1000).to_bytes(2, "big") + b"bye", mask_key=k(4)),
        ]
    )


def server_wire() -> bytes:
    """A server's frames: text echo, a binary frame with invalid-UTF-8 bytes, pong, close."""
    return b"".join(
        [
            encode_frame(1, "héllo".encode()),
            encode_frame(2, b"\xff\xfe\x00"),
            encode_frame(10, b"p"),
            encode_frame(8, (1000).to_bytes(2, "big")),
        ]
    )


def session(conn: int = 1, ts: float = T0) -> list[Event]:
    """One complete WebSocket connection: open, frames and messages both ways, close."""
    events: list[Event] = [
        ConnectionOpened(conn, ts, "127.0.0.1:51234", "/chat?room=1", "ws://127.0.0.1:9000",
                         REQUEST_HEADERS, 101, RESPONSE_HEADERS, "chat", None),
    ]
    c2s = frames_for("c2s", client_wire(), conn=conn, ts=ts + 0.01)
    s2c = frames_for("s2c", server_wire(), conn=conn, seq0=100, ts=ts + 0.0105, step=0.003)
    events += sorted(c2s + s2c, key=lambda e: e.ts)
    events.append(
        ConnectionClosed(conn, ts + 1.5, "client", "close-handshake", 1000, "bye",
                         (1000, "bye"), (1000, ""), 1.5, {"c2s": 6, "s2c": 4},
                         {"c2s": 600, "s2c": 30})
    )
    return events


def written(events: list[Event], kind: Written) -> list[Event]:
    """The frame events of ``events`` as frames the proxy wrote itself (no message events:
    the relay publishes none for them)."""
    return [FrameSeen(e.conn, e.seq, e.direction, e.ts, e.frame, True, kind)
            for e in events if isinstance(e, FrameSeen)]


def every_kind() -> list[Event]:
    """At least one event of every type, including a truncated frame, a frame with a
    violation, an undelivered frame, a held message edited, and frames the proxy wrote."""
    events = session()
    big = frames_for("s2c", encode_frame(2, b"x" * 5000), capture_limit=1000, conn=2,
                     ts=T0 + 2)
    bad = frames_for("s2c", encode_frame(1, b"masked by server", mask_key=b"abcd"), conn=2,
                     seq0=1, ts=T0 + 2.1)
    first = bad[0]
    assert isinstance(first, FrameSeen)
    first.frame.violations = (
        Violation("masked-server-frame", "RFC 6455 §5.1", "server",
                  "a server must not mask frames"),
    )
    bad[0] = FrameSeen(first.conn, first.seq, first.direction, first.ts, first.frame,
                       delivered=False)
    events += [
        ConnectionOpened(2, T0 + 1.9, "127.0.0.1:51235", "/big", "ws://127.0.0.1:9000"),
        *big,
        *bad,
        MessageAction(2, T0 + 2.11, "held", "s2c", 1, b"masked by server", 16, held=1,
                      message_no=1, by="breakpoint 1"),
        MessageAction(2, T0 + 2.12, "edited", "s2c", 1, b"fixed", 5, held=1, message_no=1,
                      original=b"masked by server", by="ctl"),
        *written(frames_for("s2c", encode_frame(1, b"fixed"), conn=2, seq0=2, ts=T0 + 2.12),
                 "edited"),
        MessageAction(2, T0 + 2.13, "injected", "c2s", 9, b"hi", 2, by="tui"),
        *written(frames_for("c2s", encode_frame(9, b"hi", mask_key=b"wxyz"), conn=2, seq0=3,
                            ts=T0 + 2.13), "injected"),
        FaultInjected(2, T0 + 2.2, "idle-timeout", "closed after 1s idle", "s2c", {"after": 1}),
        ConnectionClosed(2, T0 + 2.3, "proxy", "timeout", None, None, None, None, 0.4),
        HandshakeRejected(3, T0 + 3, "127.0.0.1:51236", "/nope", 403, "Origin not allowed",
                          "http://evil", "origin", "proxy", REQUEST_HEADERS),
        HttpExchange(4, T0 + 4, "127.0.0.1:51237", "GET", "/index.html", 200, 1234, 0.005),
        Notice(T0 + 5, "warning", "listening on a public address"),
    ]
    return events


def big_messages() -> list[Event]:
    """Frame and message events of big payloads: a 1 MiB binary message in two fragments, a
    single-frame 1 MiB binary message, a big text message with non-ASCII text, and small
    frames between them."""
    blob = os.urandom(1 << 20)
    text = ("héllo \"wörld\"\n" * 5000).encode()
    wire = b"".join(
        [
            encode_frame(2, blob[:300_000], fin=False),
            encode_frame(1, b"small"),  # a §5.4 violation, recorded all the same
            encode_frame(0, blob[300_000:]),
            encode_frame(2, blob),
            encode_frame(1, text),
            encode_frame(9, b"p"),
        ]
    )
    return frames_for("s2c", wire, capture_limit=2 << 20)
