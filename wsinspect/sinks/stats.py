"""Traffic statistics per connection and in total, from events.

``Stats`` is a sink (O(1) ``publish``), so the same aggregation serves ``wsinspect stats`` on a
recording and live counters (the TUI's rates). Bytes count what crossed the wire: frame headers
plus payload lengths (the full length, even when the payload was captured only in part).

With a ``decoding`` (``wsinspect stats --decode``, or the subprotocols decoders know), the
messages of decoded connections are decoded as they are read and counted per decoder: by
``kind`` (Socket.IO ``event``, GraphQL ``subscribe``, MQTT ``PUBLISH``...) and by the decoder's
main field (the event's name, the STOMP destination, the MQTT topic: ``sinks.decoded.main_field``),
with the messages that did not parse. Connections without a decoder are not decoded at all.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from wsinspect.events import (
    ConnectionClosed,
    ConnectionOpened,
    Event,
    FaultInjected,
    FrameSeen,
    HandshakeRejected,
    HttpExchange,
    MessageSeen,
)
from wsinspect.render import format_bytes
from wsinspect.sinks.decoded import EventDecoder, main_field
from wsinspect.wire.closecodes import close_code_meaning
from wsinspect.wire.decoders import Decoded, Decoding
from wsinspect.wire.frames import opcode_name

if TYPE_CHECKING:
    from wsinspect.recording.reader import QuickFrame

__all__ = ["ConnStats", "DecodedStats", "DirStats", "Stats", "format_stats"]

DIRS = ("c2s", "s2c")
_OPCODE_NAMES = tuple(opcode_name(op) for op in range(16))


def _minimal_header(length: int, masked: bool) -> int:
    """Header size of a frame whose header bytes were not recorded (from a HAR): the minimal
    encoding of its length (RFC 6455 §5.2), plus the mask key."""
    size = 2 if length < 126 else 4 if length < 1 << 16 else 10
    return size + 4 if masked else size


@dataclass(slots=True)
class DirStats:
    """One direction of one connection (or of the total)."""

    frames: int = 0
    bytes: int = 0  # wire bytes: headers + payload lengths
    messages: int = 0
    message_bytes: int = 0  # application bytes (inflated when compressed)
    largest_message: int = 0
    opcodes: dict[str, int] = field(default_factory=dict)
    undelivered: int = 0
    written: int = 0  # frames the proxy wrote itself (edited, injected, re-compressed)

    def add_frame(self, event: FrameSeen) -> None:
        f = event.frame
        self.frames += 1
        self.bytes += (len(f.header) or _minimal_header(f.length, f.masked)) + f.length
        name = opcode_name(f.opcode)
        self.opcodes[name] = self.opcodes.get(name, 0) + 1
        if not event.delivered:
            self.undelivered += 1
        if event.written is not None:
            self.written += 1

    def add_message(self, length: int) -> None:
        self.messages += 1
        self.message_bytes += length
        self.largest_message = max(self.largest_message, length)

    def merge(self, other: DirStats) -> None:
        self.frames += other.frames
        self.bytes += other.bytes
        self.messages += other.messages
        self.message_bytes += other.message_bytes
        self.largest_message = max(self.largest_message, other.largest_message)
        self.undelivered += other.undelivered
        self.written += other.written
        for name, n in other.opcodes.items():
            self.opcodes[name] = self.opcodes.get(name, 0) + n

    def to_dict(self) -> dict[str, Any]:
        return {
            "frames": self.frames,
            "bytes": self.bytes,
            "messages": self.messages,
            "message_bytes": self.message_bytes,
            "largest_message": self.largest_message,
            "opcodes": dict(self.opcodes),
            "undelivered": self.undelivered,
            "written": self.written,
        }


@dataclass(slots=True)
class DecodedStats:
    """The decoded messages of one decoder (on one connection, or in total)."""

    messages: int = 0
    errors: int = 0  # messages that did not parse as the protocol
    kinds: dict[str, int] = field(default_factory=dict)
    by_field: dict[str, dict[str, int]] = field(default_factory=dict)

    def add(self, decoded: Decoded, decoder: object | None = None) -> None:
        if decoded.continued:
            return
        self.messages += 1
        if decoded.error is not None:
            self.errors += 1
            return
        self.kinds[decoded.kind] = self.kinds.get(decoded.kind, 0) + 1
        key = main_field(decoded, decoder)
        if key is not None:
            counts = self.by_field.setdefault(key, {})
            value = str(decoded.fields[key])
            counts[value] = counts.get(value, 0) + 1

    def merge(self, other: DecodedStats) -> None:
        self.messages += other.messages
        self.errors += other.errors
        for k, n in other.kinds.items():
            self.kinds[k] = self.kinds.get(k, 0) + n
        for key, counts in other.by_field.items():
            mine = self.by_field.setdefault(key, {})
            for v, n in counts.items():
                mine[v] = mine.get(v, 0) + n

    def to_dict(self) -> dict[str, Any]:
        return {"messages": self.messages, "errors": self.errors, "kinds": dict(self.kinds),
                "by_field": {k: dict(v) for k, v in self.by_field.items()}}


@dataclass(slots=True)
class ConnStats:
    conn: int
    first: float
    last: float
    path: str = ""
    client: str = ""
    dirs: dict[str, DirStats] = field(default_factory=lambda: {d: DirStats() for d in DIRS})
    violations: dict[str, int] = field(default_factory=dict)
    faults: dict[str, int] = field(default_factory=dict)
    closed: ConnectionClosed | None = None
    rejected: HandshakeRejected | None = None
    opened: bool = False
    decoded: dict[str, DecodedStats] = field(default_factory=dict)  # per decoder
    # Messages counted from frames until a MessageSeen shows the source records messages.
    _frame_messages: dict[str, list[int]] = field(default_factory=lambda: {d: [] for d in DIRS})
    _saw_messages: bool = False

    @property
    def duration(self) -> float:
        if self.closed is not None and self.closed.duration:
            return self.closed.duration
        return max(0.0, self.last - self.first)

    def finish(self) -> None:
        """Fall back to messages counted from frames when the source had no message events."""
        if self._saw_messages:
            return
        for d in DIRS:
            for length in self._frame_messages[d]:
                if length >= 0:
                    self.dirs[d].add_message(length)
            self._frame_messages[d] = []
        self._saw_messages = True

    def to_dict(self) -> dict[str, Any]:
        d: dict[str, Any] = {
            "conn": self.conn,
            "path": self.path,
            "client": self.client,
            "duration": round(self.duration, 6),
            **{k: v.to_dict() for k, v in self.dirs.items()},
            "violations": dict(self.violations),
            "faults": dict(self.faults),
        }
        if self.decoded:
            d["decoded"] = {name: v.to_dict() for name, v in self.decoded.items()}
        if self.closed is not None:
            c = self.closed
            d["close"] = {"initiator": c.initiator, "how": c.how, "code": c.code,
                          "reason": c.reason}
        if self.rejected is not None:
            d["rejected"] = {"status": self.rejected.status, "reason": self.rejected.reason}
        return d


class Stats:
    """Aggregates events per connection; ``publish`` is O(1)."""

    __slots__ = ("conns", "decoder", "http")

    def __init__(self, decoding: Decoding | None = None) -> None:
        self.conns: dict[int, ConnStats] = {}
        self.http = 0
        self.decoder = EventDecoder(decoding) if decoding is not None else None

    def _count_decoded(self, conn: int, decoded: Decoded | None) -> None:
        """Count a decoded message under its protocol (``socket.io``)."""
        if decoded is None or self.decoder is None:
            return
        c = self.conns[conn]
        ds = c.decoded.get(decoded.protocol)
        if ds is None:
            ds = c.decoded[decoded.protocol] = DecodedStats()
        ds.add(decoded, self.decoder.decoding.decoder_of(conn))

    def _conn(self, conn: int, ts: float) -> ConnStats:
        c = self.conns.get(conn)
        if c is None:
            c = self.conns[conn] = ConnStats(conn, ts, ts)
        elif ts > c.last:
            c.last = ts
        return c

    def publish(self, event: Event) -> None:
        if isinstance(event, FrameSeen):
            c = self._conn(event.conn, event.ts)
            c.dirs[event.direction if event.direction in DIRS else "c2s"].add_frame(event)
            f = event.frame
            for v in f.violations:
                c.violations[v.rule] = c.violations.get(v.rule, 0) + 1
            if not c._saw_messages and f.opcode < 8:
                # No message events (yet): size messages from their frames (§5.4).
                run = c._frame_messages[event.direction]
                if f.opcode != 0 or not run or run[-1] >= 0:
                    run.append(-1 - f.length)  # negative: message still open
                else:
                    run[-1] -= f.length
                if f.fin:
                    run[-1] = -1 - run[-1]
        elif isinstance(event, MessageSeen):
            c = self._conn(event.conn, event.ts)
            if not c._saw_messages:
                c._saw_messages = True
                c._frame_messages = {d: [] for d in DIRS}
            c.dirs[event.direction].add_message(event.message.length)
            if self.decoder is not None and event.conn in self.decoder.conns:
                self._count_decoded(event.conn, self.decoder.feed(event))
        elif isinstance(event, ConnectionOpened):
            c = self._conn(event.conn, event.ts)
            c.opened, c.path, c.client = True, event.path, event.client
            c.first = min(c.first, event.ts)
            if self.decoder is not None:
                self.decoder.feed(event)
        elif isinstance(event, ConnectionClosed):
            self._conn(event.conn, event.ts).closed = event
            if self.decoder is not None:
                self.decoder.feed(event)
        elif isinstance(event, HandshakeRejected):
            c = self._conn(event.conn, event.ts)
            c.rejected, c.path, c.client = event, event.path, event.client
        elif isinstance(event, FaultInjected):
            c = self._conn(event.conn, event.ts)
            c.faults[event.fault] = c.faults.get(event.fault, 0) + 1
        elif isinstance(event, HttpExchange):
            self.http += 1

    def publish_quick(self, q: QuickFrame) -> None:
        """``publish`` for a common frame line read quickly (``reader.iter_quick``): the same
        figures as publishing its events (the frame, and the one-frame message it is when
        ``q.ends``), without building them."""
        h = q.header
        b0 = h[0]
        opcode = b0 & 15
        n = h[1] & 127
        length = n if n < 126 else int.from_bytes(h[2:4] if n == 126 else h[2:10], "big")
        c = self._conn(q.conn, q.ts)
        ds = c.dirs[q.direction]
        ds.frames += 1
        ds.bytes += len(h) + length
        name = _OPCODE_NAMES[opcode]
        ds.opcodes[name] = ds.opcodes.get(name, 0) + 1
        if not c._saw_messages and opcode < 8:
            run = c._frame_messages[q.direction]
            if opcode != 0 or not run or run[-1] >= 0:
                run.append(-1 - length)
            else:
                run[-1] -= length
            if b0 & 0x80:
                run[-1] = -1 - run[-1]
        if q.ends:
            if not c._saw_messages:
                c._saw_messages = True
                c._frame_messages = {d: [] for d in DIRS}
            ds.messages += 1
            ds.message_bytes += length
            if length > ds.largest_message:
                ds.largest_message = length
            decoder = self.decoder
            if decoder is not None and q.conn in decoder.conns:
                self._count_decoded(q.conn, decoder.message(q.conn, q.direction, opcode, q.payload()))

    def websocket_conns(self) -> list[ConnStats]:
        out = [c for c in sorted(self.conns.values(), key=lambda c: c.conn)
               if c.opened or c.rejected is not None or c.dirs["c2s"].frames or c.dirs["s2c"].frames]
        for c in out:
            c.finish()
        return out

    def total(self) -> dict[str, Any]:
        conns = self.websocket_conns()
        dirs = {d: DirStats() for d in DIRS}
        violations: dict[str, int] = {}
        faults: dict[str, int] = {}
        closes: dict[str, int] = {}
        decoded: dict[str, DecodedStats] = {}
        for c in conns:
            for name, ds in c.decoded.items():
                decoded.setdefault(name, DecodedStats()).merge(ds)
            for d in DIRS:
                dirs[d].merge(c.dirs[d])
            for k, n in c.violations.items():
                violations[k] = violations.get(k, 0) + n
            for k, n in c.faults.items():
                faults[k] = faults.get(k, 0) + n
            if c.closed is not None:
                key = f"{c.closed.code if c.closed.code is not None else '-'} by {c.closed.initiator}"
                closes[key] = closes.get(key, 0) + 1
        first = min((c.first for c in conns), default=0.0)
        last = max((max(c.last, c.first + c.duration) for c in conns), default=0.0)
        out: dict[str, Any] = {
            "connections": sum(1 for c in conns if c.opened),
            "rejected": sum(1 for c in conns if c.rejected is not None),
            "http": self.http,
            "duration": round(max(0.0, last - first), 6),
            **{d: v.to_dict() for d, v in dirs.items()},
            "violations": violations,
            "faults": faults,
            "closes": closes,
        }
        if decoded:
            out["decoded"] = {name: ds.to_dict() for name, ds in sorted(decoded.items())}
        return out

    def to_dict(self) -> dict[str, Any]:
        return {"connections": [c.to_dict() for c in self.websocket_conns()],
                "total": self.total()}


def _rate(n: float, seconds: float) -> str:
    return f"{n / seconds:.1f}/s" if seconds > 0 else "-"


def _dir_lines(label: str, d: dict[str, Any], seconds: float) -> list[str]:
    opcodes = ", ".join(f"{k} {v}" for k, v in sorted(d["opcodes"].items())) or "none"
    line = (
        f"  {label} messages {d['messages']} ({_rate(d['messages'], seconds)}),"
        f" frames {d['frames']}, {format_bytes(d['bytes'])}"
        f" ({format_bytes(int(d['bytes'] / seconds)) + '/s' if seconds > 0 else '-'}),"
        f" largest message {format_bytes(d['largest_message'])}"
    )
    out = [line, f"      frames by opcode: {opcodes}"]
    if d["undelivered"]:
        out.append(f"      undelivered frames: {d['undelivered']}")
    if d.get("written"):
        out.append(f"      frames written by the proxy: {d['written']}")
    return out


def _counts(label: str, counts: dict[str, int]) -> list[str]:
    if not counts:
        return []
    return [f"  {label}: " + ", ".join(f"{k} ({n})" for k, n in sorted(counts.items()))]


def _decoded_lines(decoded: dict[str, Any]) -> list[str]:
    """``  socket.io: 12 messages: event 10, ack 2; event: chat (9), join (1); 1 not parsed``."""
    out = []
    for name, d in sorted(decoded.items()):
        parts = [f"{d['messages']} messages"]
        if d["kinds"]:
            parts.append(", ".join(f"{k} {n}" for k, n in sorted(d["kinds"].items(), key=lambda kv: (-kv[1], kv[0]))))
        for key, counts in sorted(d["by_field"].items()):
            top = sorted(counts.items(), key=lambda kv: (-kv[1], kv[0]))
            shown = ", ".join(f"{v} ({n})" for v, n in top[:20])
            more = f", ... {len(top) - 20} more" if len(top) > 20 else ""
            parts.append(f"{key}: {shown}{more}")
        if d["errors"]:
            parts.append(f"{d['errors']} not parsed")
        out.append(f"  decoded {name}: " + "; ".join(parts))
    return out


def format_stats(stats: Stats) -> str:
    """The human report of ``wsinspect stats``."""
    out: list[str] = []
    for c in stats.websocket_conns():
        d = c.to_dict()
        head = " ".join(part for part in (f"#{c.conn}", c.client, c.path) if part)
        if c.rejected is not None:
            out.append(f"{head}: rejected {c.rejected.status} by {c.rejected.by}: {c.rejected.reason}")
            continue
        out.append(f"{head}  duration {c.duration:.3f}s")
        out += _dir_lines("→ c2s", d["c2s"], c.duration)
        out += _dir_lines("← s2c", d["s2c"], c.duration)
        if c.closed is not None:
            cl = c.closed
            code = "no close code" if cl.code is None else f"{cl.code} ({close_code_meaning(cl.code)})"
            reason = f" {cl.reason!r}" if cl.reason else ""
            out.append(f"  closed by {cl.initiator} ({cl.how}): {code}{reason}")
        else:
            out.append("  not closed in the recording")
        out += _counts("violations", c.violations)
        out += _counts("faults", c.faults)
        out += _decoded_lines(d.get("decoded", {}))
        out.append("")
    t = stats.total()
    out.append(
        f"total: {t['connections']} connections, {t['rejected']} rejected, {t['http']} plain HTTP,"
        f" over {t['duration']:.3f}s"
    )
    out += _dir_lines("→ c2s", t["c2s"], t["duration"])
    out += _dir_lines("← s2c", t["s2c"], t["duration"])
    out += _counts("closes", t["closes"])
    out += _counts("violations", t["violations"])
    out += _counts("faults", t["faults"])
    out += _decoded_lines(t.get("decoded", {}))
    return "\n".join(out)
