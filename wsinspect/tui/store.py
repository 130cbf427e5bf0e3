"""The TUI's bounded event store: the relay publishes into it, the UI drains it on a timer.

``EventStore.publish`` is the hub sink: O(1), it only appends to an inbox (STYLE.md item 8).
The UI calls ``drain`` 20-30 times a second; that is where connections are updated, frames are
numbered and old frames are evicted. Frames get an *absolute index* (0 for the first frame
ever seen), so a selection made by index stays on the same frame while frames arrive and old ones
leave. At most ``max_frames`` frames are kept; ``dropped`` says how many older ones left the view
(a recording keeps them all).

Nothing here imports Textual: the store, filters and rates are plain Python, tested alone.
"""

from __future__ import annotations

import time
from array import array
from bisect import bisect_left
from collections import OrderedDict, deque
from collections.abc import Iterable

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
)
from wsinspect.tui.decoded import DecodedSource, LiveDecoded
from wsinspect.tui.frame_filter import FilterError, FrameFilter, Messages, Row
from wsinspect.wire.decoders import Decoding

__all__ = [
    "DEFAULT_MAX_FRAMES",
    "ConnInfo",
    "EventStore",
    "FilterError",
    "FrameFilter",
    "FrameView",
    "Rates",
    "Row",
]

DEFAULT_MAX_FRAMES = 100_000

FATES_KEPT = 10_000  # decided held messages whose fate the store remembers


class ConnInfo:
    """What the connections list shows about one connection, updated as events arrive."""

    __slots__ = (
        "bytes",
        "client",
        "close_code",
        "closed",
        "closed_ts",
        "conn",
        "extensions",
        "faults",
        "frames",
        "messages",
        "opened",
        "opened_ts",
        "path",
        "rejected",
        "state",
        "subprotocol",
        "upstream",
        "violations",
    )

    def __init__(self, conn: int, ts: float) -> None:
        self.conn = conn
        self.opened_ts = ts
        self.closed_ts: float | None = None
        self.client = ""
        self.path = ""
        self.upstream = ""
        self.subprotocol: str | None = None
        self.extensions: str | None = None
        self.state = "open"  # "open", "closed" or "rejected"
        self.close_code: int | None = None
        self.opened: ConnectionOpened | None = None
        self.closed: ConnectionClosed | None = None
        self.rejected: HandshakeRejected | None = None
        self.messages = {"c2s": 0, "s2c": 0}
        self.bytes = {"c2s": 0, "s2c": 0}
        self.frames = {"c2s": 0, "s2c": 0}
        self.faults: list[FaultInjected] = []
        self.violations = 0


class EventStore:
    """Bounded store of everything the UI shows.

    ``publish(event)`` (the hub sink) appends to an inbox; ``drain()`` (UI side) applies it.
    Both run on the UI's thread in guest mode; a loader thread may also publish (``deque.append``
    is atomic), which is how ``wsinspect view`` streams a large file in.

    Rows are frames and message actions (``MessageAction``: a breakpoint held a message, it was
    resumed, edited, dropped, or the proxy injected one), numbered together in arrival order.
    ``held`` maps each message held now (its ``held`` id) to its ``held`` event, oldest first: the
    ``resumed``/``edited``/``dropped`` event with the same id ends it, and so does its
    connection's close (the relay says nothing more about a held message of a closed
    connection). ``fates`` says how each ended (the deciding action and who asked, or
    ``("closed", "")``).
    """

    def __init__(self, max_frames: int = DEFAULT_MAX_FRAMES, *, live: bool = True) -> None:
        if max_frames < 1:
            raise ValueError("max_frames must be at least 1")
        self.max_frames = max_frames
        self.live = live
        self._inbox: deque[Event] = deque()
        self._frames: list[Row] = []
        self.base = 0  # absolute index of _frames[0]; also the number of frames dropped
        self.connections: dict[int, ConnInfo] = {}
        self._by_conn: dict[int, array[int]] = {}
        self.messages: Messages = OrderedDict()
        self.log: deque[Event] = deque(maxlen=1000)  # notices, http, faults, rejections
        self.log_count = 0  # events ever appended to ``log``
        self.last_ts = 0.0
        self.total_bytes = 0
        self.action_rows = 0  # rows ever added that are actions, not frames
        self.held: dict[int, MessageAction] = {}
        self.fates: OrderedDict[int, tuple[str, str]] = OrderedDict()
        self.held_version = 0  # changes whenever ``held`` or ``fates`` does
        # Evict in chunks so that deleting from the front of the list is amortised O(1).
        self._slack = max(1, min(max_frames // 10, 50_000))
        self.decoded: DecodedSource | None = None  # decoded messages (``use_decoding``)
        self._live_decoded: LiveDecoded | None = None

    def use_decoding(self, decoding: Decoding | None) -> None:
        """Decode messages as they are drained (``tui.decoded.LiveDecoded``); call before
        the first event."""
        self._live_decoded = LiveDecoded(decoding, self.max_frames) if decoding is not None else None
        self.decoded = self._live_decoded

    def decoding_copy(self) -> Decoding | None:
        """A new ``Decoding`` with this store's rules (for another view of the same traffic)."""
        live = self._live_decoded
        if live is None:
            return None
        decoding = live.decoder.decoding
        return Decoding(decoding.rules, auto=decoding.auto)

    def choose_decoder(self, conn: int, name: str | None) -> None:
        """Decode ``conn`` with decoder ``name`` (``None``: none; ``"auto"``: as it opened)
        from now on, its messages held here again from the first."""
        if self._live_decoded is not None:
            self._live_decoded.choose(conn, name, [m for k, m in self.messages.items() if k[0] == conn])

    # -- sink side --------------------------------------------------------------------------

    def publish(self, event: Event) -> None:
        """Take one event (hub sink): O(1), never blocks."""
        self._inbox.append(event)

    @property
    def pending(self) -> int:
        """Events published and not yet drained."""
        return len(self._inbox)

    # -- UI side ----------------------------------------------------------------------------

    @property
    def total(self) -> int:
        """Rows seen so far, frames and actions (absolute index of the next row)."""
        return self.base + len(self._frames)

    @property
    def frames_total(self) -> int:
        """Frames seen so far (rows that are not actions)."""
        return self.total - self.action_rows

    @property
    def dropped(self) -> int:
        """Older frames evicted from the store (the recording still has them)."""
        return self.base

    def row(self, index: int) -> Row:
        """The row with absolute ``index``; ``IndexError`` when evicted or not seen yet."""
        i = index - self.base
        if i < 0:
            raise IndexError(index)
        return self._frames[i]

    def frame(self, index: int) -> FrameSeen:
        """The frame with absolute ``index``; ``IndexError`` when evicted or not seen yet, or
        when that row is an action."""
        row = self.row(index)
        if type(row) is not FrameSeen:
            raise IndexError(index)
        return row

    def conn_frames(self, conn: int) -> array[int]:
        """Absolute indexes of the kept rows (frames and actions) of ``conn`` (shared: do not
        modify)."""
        return self._by_conn.get(conn, array("q"))

    def conn_info(self, conn: int) -> ConnInfo | None:
        """The connection ``conn`` with all the store knows of it (``None``: unknown)."""
        return self.connections.get(conn)

    def now(self) -> float:
        """Wall clock when live; the last event's time when viewing a recording."""
        return time.time() if self.live else self.last_ts

    def _conn(self, conn: int, ts: float) -> ConnInfo:
        info = self.connections.get(conn)
        if info is None:
            info = self.connections[conn] = ConnInfo(conn, ts)
        return info

    def drain(self, budget: int | None = None) -> int:
        """Apply published events (at most ``budget`` of them); return how many were applied."""
        inbox = self._inbox
        frames = self._frames
        n = len(inbox) if budget is None else min(budget, len(inbox))
        popleft = inbox.popleft
        for _ in range(n):
            event = popleft()
            if type(event) is FrameSeen:
                conn = event.conn
                info = self.connections.get(conn) or self._conn(conn, event.ts)
                f = event.frame
                d = event.direction
                info.frames[d] += 1
                info.bytes[d] += f.length
                self.total_bytes += f.length
                if f.violations:
                    info.violations += 1
                if f.opcode == 8 and info.close_code is None:
                    info.close_code = f.close_code
                index = self.base + len(frames)
                frames.append(event)
                by = self._by_conn.get(conn)
                if by is None:
                    by = self._by_conn[conn] = array("q")
                by.append(index)
                self.last_ts = event.ts
            elif type(event) is MessageAction:
                self._apply_action(event)
                index = self.base + len(frames)
                frames.append(event)
                by = self._by_conn.get(event.conn)
                if by is None:
                    by = self._by_conn[event.conn] = array("q")
                by.append(index)
                self.action_rows += 1
            else:
                self._apply(event)
        if len(frames) > self.max_frames + self._slack:
            self._evict(len(frames) - self.max_frames)
        return n

    def _apply(self, event: Event) -> None:
        self.last_ts = max(self.last_ts, event.ts)
        if self._live_decoded is not None:
            self._live_decoded.apply(event)
        if isinstance(event, MessageSeen):
            info = self._conn(event.conn, event.ts)
            info.messages[event.direction] += 1
            self.messages[(event.conn, event.direction, event.message_no)] = event
            if len(self.messages) > self.max_frames:
                self.messages.popitem(last=False)
        elif isinstance(event, ConnectionOpened):
            info = self._conn(event.conn, event.ts)
            info.opened_ts = event.ts
            info.opened = event
            info.client = event.client
            info.path = event.path
            info.upstream = event.upstream
            info.subprotocol = event.subprotocol
            info.extensions = event.extensions
        elif isinstance(event, ConnectionClosed):
            info = self._conn(event.conn, event.ts)
            info.state = "closed"
            info.closed = event
            info.closed_ts = event.ts
            if event.code is not None:
                info.close_code = event.code
            ended = [ident for ident, held in self.held.items() if held.conn == event.conn]
            for ident in ended:
                del self.held[ident]
                self._fate(ident, "closed", "")
        elif isinstance(event, HandshakeRejected):
            info = self._conn(event.conn, event.ts)
            info.state = "rejected"
            info.rejected = event
            info.client = event.client
            info.path = event.path
            info.closed_ts = event.ts
            self._log(event)
        elif isinstance(event, FaultInjected):
            if event.conn:
                self._conn(event.conn, event.ts).faults.append(event)
            self._log(event)
        elif isinstance(event, (Notice, HttpExchange)):
            self._log(event)

    def _apply_action(self, event: MessageAction) -> None:
        self.last_ts = max(self.last_ts, event.ts)
        self._conn(event.conn, event.ts)
        if event.held is None:
            return
        if event.action == "held":
            self.held[event.held] = event
            self.held_version += 1
        else:
            self.held.pop(event.held, None)
            self._fate(event.held, event.action, event.by)

    def _fate(self, ident: int, action: str, by: str) -> None:
        self.fates[ident] = (action, by)
        if len(self.fates) > FATES_KEPT:
            self.fates.popitem(last=False)
        self.held_version += 1

    def fate(self, event: MessageAction) -> tuple[str, str] | None:
        """How the message of a ``held`` row ended (``(action, by)``), or ``None`` while it is
        held (and for any other action)."""
        if event.action != "held" or event.held is None or event.held in self.held:
            return None
        return self.fates.get(event.held, ("decided", ""))

    def is_held(self, event: Row) -> bool:
        """Whether ``event`` is the row of a message held now."""
        return type(event) is MessageAction and event.action == "held" and event.held in self.held

    def oldest_held(self) -> MessageAction | None:
        """The message held longest, or ``None``."""
        return next(iter(self.held.values()), None)

    def _log(self, event: Event) -> None:
        self.log.append(event)
        self.log_count += 1

    def _evict(self, count: int) -> None:
        del self._frames[:count]
        self.base += count
        base = self.base
        for by in self._by_conn.values():
            k = bisect_left(by, base)
            if k:
                del by[:k]

    def load(self, events: Iterable[Event]) -> None:
        """Publish and drain ``events`` at once (tests and small recordings)."""
        for event in events:
            self._inbox.append(event)
            if len(self._inbox) >= 10_000:
                self.drain()
        self.drain()


class FrameView:
    """The frames one table shows: absolute indexes of the store's frames matching a filter,
    kept in arrival order. ``update`` picks up new frames; ``prune`` forgets evicted ones."""

    def __init__(self, flt: FrameFilter | None = None) -> None:
        self.filter = flt or FrameFilter()
        self.indices: array[int] = array("q")
        self._scanned = 0  # absolute index of the next store frame to look at

    def __len__(self) -> int:
        return len(self.indices)

    @property
    def pending(self) -> bool:
        """Whether matches found in the background wait for ``update`` (never, here)."""
        return False

    @property
    def progress(self) -> float | None:
        """How far a filter running in the background has got (``None``: none runs)."""
        return None

    def rebuild(self, store: EventStore, flt: FrameFilter | None = None) -> None:
        if flt is not None:
            self.filter = flt
        f = self.filter
        if f.conn is not None:
            candidates: Iterable[int] = store.conn_frames(f.conn)
        else:
            candidates = range(store.base, store.total)
        if f.is_trivial:
            self.indices = array("q", candidates)
        else:
            get = store.row
            match = f.matches
            messages = store.messages
            held = store.held
            decoded = store.decoded
            self.indices = array("q", (i for i in candidates if match(get(i), messages, held, decoded)))
        self._scanned = store.total

    def update(self, store: EventStore) -> tuple[int, int]:
        """Catch up with the store; return ``(added, pruned)`` row counts."""
        pruned = self.prune(store.base)
        start = max(self._scanned, store.base)
        end = store.total
        added = 0
        if end > start:
            f = self.filter
            get = store.row
            before = len(self.indices)
            if f.is_trivial and f.conn is None:
                self.indices.extend(range(start, end))
            elif f.conn is not None:
                by = store.conn_frames(f.conn)
                k = bisect_left(by, start)
                if f.is_trivial:
                    self.indices.extend(by[k:])
                else:
                    self.indices.extend(
                        i for i in by[k:]
                        if f.matches(get(i), store.messages, store.held, store.decoded)
                    )
            else:
                self.indices.extend(
                    i for i in range(start, end)
                    if f.matches(get(i), store.messages, store.held, store.decoded)
                )
            added = len(self.indices) - before
        self._scanned = end
        return added, pruned

    def prune(self, base: int) -> int:
        k = bisect_left(self.indices, base)
        if k:
            del self.indices[:k]
        return k

    def position(self, index: int) -> int:
        """Row of absolute frame ``index``, or of the first frame after it."""
        return bisect_left(self.indices, index)


class Rates:
    """Frames/s and bytes/s over the last sampling period, in total and per connection."""

    def __init__(self) -> None:
        self._t: float | None = None
        self._frames = 0
        self._bytes = 0
        self._per: dict[int, tuple[int, int]] = {}
        self.total = (0.0, 0.0)  # frames/s, bytes/s
        self.per_conn: dict[int, tuple[float, float]] = {}

    def sample(self, store: EventStore, now: float) -> None:
        per = {
            c: (info.frames["c2s"] + info.frames["s2c"], info.bytes["c2s"] + info.bytes["s2c"])
            for c, info in store.connections.items()
            if info.state == "open" or c in self._per
        }
        frames = store.frames_total
        if self._t is not None and now > self._t:
            dt = now - self._t
            self.total = ((frames - self._frames) / dt, (store.total_bytes - self._bytes) / dt)
            self.per_conn = {
                c: ((fr - self._per.get(c, (0, 0))[0]) / dt, (by - self._per.get(c, (0, 0))[1]) / dt)
                for c, (fr, by) in per.items()
            }
        self._t = now
        self._frames = frames
        self._bytes = store.total_bytes
        self._per = per
