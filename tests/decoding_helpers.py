"""A small decoder for the tests of what uses decoders (the log, stats, the TUI, view), and
events to feed them; independent of the real decoders, which have tests of their own.

The "tally" protocol: text messages ``EV NAME [DATA]`` (an event), ``ACK N`` (an answer to
event N, counted per connection: it needs the connection's earlier messages), anything else is
not tally (``error``). Chosen by the subprotocol ``tally.v1`` or by ``tally=1`` in the path's
query; filter prefix ``tl``.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from wsinspect.events import ConnectionClosed, ConnectionOpened, Event, FrameSeen, MessageSeen
from wsinspect.wire.decoders import Decoded, Handshake, equal_field, register
from wsinspect.wire.frames import encode_frame
from wsinspect.wire.inspector import Inspector
from wsinspect.wire.sides import Direction

T0 = 1_700_000_000.0


@dataclass
class TallyState:
    events: int = 0
    seen: list[str] = field(default_factory=list)

    def decode(self, direction: Direction, opcode: int, payload: bytes) -> Decoded:
        text = payload.decode("utf-8", "replace")
        word, _, rest = text.partition(" ")
        if word == "EV" and rest:
            self.events += 1
            name, _, data = rest.partition(" ")
            self.seen.append(name)
            return Decoded("tally", "event", f'tally event "{name}" n={self.events}',
                           {"event": name, "n": self.events}, {"name": name, "data": data})
        if word == "ACK" and rest.isdigit():
            n = int(rest)
            known = n <= len(self.seen)
            name = self.seen[n - 1] if known else "?"
            return Decoded("tally", "ack", f"tally ack {n} ({name})", {"n": n, "of": name},
                           {"ack": n, "of": name})
        return Decoded("tally", "error", "tally: not a tally message", {}, None,
                       error=f"unknown word {word!r}")


class Tally:
    name = "tally"
    filter_prefix = "tl"
    subprotocols = ("tally.v1",)
    main_field = "event"

    def recognises(self, handshake: Handshake) -> bool:
        return "tally=1" in handshake.path

    def start(self, handshake: Handshake) -> TallyState:
        return TallyState()

    def field_matches(self, decoded: Decoded, key: str, value: str) -> bool:
        return equal_field(decoded, key, value)


def use_tally() -> None:
    register(Tally(), replace=True)


class Traffic:
    """Events of connections, built with the real wire code (frames and messages)."""

    def __init__(self) -> None:
        self.events: list[Event] = []
        self.seq = 0
        self.ts = T0
        self.inspectors: dict[tuple[int, str], Inspector] = {}

    def open(self, conn: int, path: str = "/", subprotocol: str | None = None) -> Traffic:
        self.events.append(ConnectionOpened(conn, self.ts, "127.0.0.1:40000", path,
                                            f"ws://127.0.0.1:9000{path}", (), 101, (),
                                            subprotocol))
        return self

    def send(self, conn: int, direction: Direction, text: str | bytes) -> Traffic:
        self.ts += 0.001
        insp = self.inspectors.setdefault((conn, direction), Inspector(direction))
        data = text.encode() if isinstance(text, str) else text
        opcode = 1 if isinstance(text, str) else 2
        raw = encode_frame(opcode, data, mask_key=b"abcd" if direction == "c2s" else None)
        for f in insp.feed(raw):
            self.seq += 1
            self.events.append(FrameSeen(conn, self.seq, direction, self.ts, f))
            if f.message is not None:
                self.events.append(MessageSeen(conn, direction, self.ts, f.message, f.message_no))
        return self

    def close(self, conn: int) -> Traffic:
        self.ts += 0.001
        self.events.append(ConnectionClosed(conn, self.ts, "client", "close-handshake", 1000, ""))
        return self


def tally_traffic() -> list[Event]:
    """#1 speaks tally (subprotocol), #2 is plain text, #3 speaks tally (path query)."""
    t = Traffic().open(1, "/t", "tally.v1").open(2, "/plain").open(3, "/x?tally=1")
    t.send(1, "c2s", "EV chat hello").send(1, "s2c", "ACK 1").send(2, "c2s", "EV chat not tally")
    t.send(1, "c2s", "EV join room").send(3, "c2s", "EV chat other").send(1, "s2c", "garbage")
    t.send(3, "s2c", "ACK 1").send(1, "c2s", "EV chat again")
    return t.close(1).close(2).close(3).events
