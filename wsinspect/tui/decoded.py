"""Decoded messages in the TUI: where they come from and the filter words on their fields
(the keys and the detail pane's decoded mode are in ``tui.decoding``).

Live (``EventStore``), :class:`LiveDecoded` decodes as the store drains: the UI timer applies
``MessageSeen`` events 25 times a second, and only messages of connections that have a decoder
are decoded (the others cost one set lookup). It keeps as many decoded messages as the store
keeps messages. Choosing a decoder at run time decodes again, in order, the connection's
messages the store still holds.

Over a recording's index (``wsinspect view``, ``H``), :class:`PagedDecoded` decodes on demand:
a decoder's state needs the connection's earlier messages in order, so asking for message N
of a connection decodes its messages up to N once (read by their offsets in the index, with a
file handle of its own), and keeps them (bounded, least recently used connection first out).
Filters on decoded fields run in the filter's worker thread: SQL narrows to data frames (and
to the one connection when only one has a matching decoder), then each candidate row is
decoded here.

No Textual and no Rich here: the store imports this module (the detail pane's decoded mode is
drawn by ``tui.decoding``).
"""

from __future__ import annotations

import threading
from bisect import bisect_right
from collections import OrderedDict
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import IO, TYPE_CHECKING, Protocol

from wsinspect.events import ConnectionClosed, ConnectionOpened, Event, FrameSeen, MessageSeen
from wsinspect.sinks.decoded import EventDecoder
from wsinspect.wire.decoders import (
    Decoded,
    Decoder,
    Decoding,
    Handshake,
    MessageDecoder,
    decoder_for_prefix,
    decoder_names,
    get_decoder,
)

if TYPE_CHECKING:
    from wsinspect.recording.index import ConnRecord, RecordingIndex

__all__ = [
    "AUTO",
    "DecodedSource",
    "DecodedTerm",
    "LiveDecoded",
    "PagedDecoded",
    "decoded_matches",
    "parse_decoded_term",
]

Key = tuple[int, str, int]  # (conn, direction, message_no), as the store keys messages
AUTO = "auto"  # the choice that gives a connection back to the rules and auto-detection


class DecodedSource(Protocol):
    """What the table, the filters and the detail pane ask (``EventStore.decoded``)."""

    def get(self, key: Key) -> Decoded | None: ...

    def decoder_name(self, conn: int) -> str | None: ...

    def choose(self, conn: int, name: str | None) -> None: ...


# -- filter words --------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class DecodedTerm:
    """One filter word on decoded messages: ``sio:event=chat`` (a field, matched by the
    decoder's ``field_matches``: MQTT topic wildcards...), ``gql:subscribe`` (the kind) or
    ``sio:`` (any message that decoder decoded). ``decoder`` is the decoder's name (a
    ``Decoded.protocol`` may spell it otherwise: ``socket.io`` for ``socketio``)."""

    decoder: str
    key: str | None = None
    value: str | None = None

    def matches(self, decoded: Decoded | None, decoder: str | None) -> bool:
        """Whether ``decoded``, decoded by the decoder named ``decoder``, matches."""
        if decoded is None or decoder != self.decoder or decoded.continued:
            return False
        if self.value is None:
            return True
        if self.key is None:
            return decoded.kind.lower() == self.value.lower()
        try:
            found = get_decoder(self.decoder)
        except KeyError:
            return False
        if found.field_matches(decoded, self.key, self.value):
            return True
        return self.key == "kind" and "kind" not in decoded.fields and decoded.kind == self.value


def parse_decoded_term(key: str, value: str) -> DecodedTerm | None:
    """The term for a filter word ``key:value`` when ``key`` is a decoder's filter prefix;
    ``None`` when it is not (the word is then searched as text); ``ValueError`` for what
    looks like a decoded filter with an unknown prefix (``soi:event=chat``)."""
    decoder = decoder_for_prefix(key)
    if decoder is None:
        if "=" in value and key.isalpha():
            prefixes = sorted({get_decoder(n).filter_prefix for n in decoder_names()})
            raise ValueError(f"{key}:{value}: no decoder has the filter prefix {key!r} "
                             f"(known: {', '.join(prefixes) or 'none'})")
        return None
    if not value:
        return DecodedTerm(decoder.name)
    name, sep, wanted = value.partition("=")
    if not sep:
        return DecodedTerm(decoder.name, None, value)
    if not name:
        raise ValueError(f"{key}:{value}: a field name goes before '='")
    return DecodedTerm(decoder.name, name, wanted)


def decoded_matches(terms: Iterable[DecodedTerm], decoded: Decoded | None, decoder: str | None) -> bool:
    return all(term.matches(decoded, decoder) for term in terms)


# -- live ----------------------------------------------------------------------------------


class LiveDecoded:
    """The live store's decoded messages, decoded as events are drained (``apply``)."""

    def __init__(self, decoding: Decoding, limit: int) -> None:
        self.decoder = EventDecoder(decoding)
        self.limit = limit
        self.decoded: OrderedDict[Key, Decoded] = OrderedDict()
        self.handshakes: dict[int, tuple[str, str | None]] = {}
        self.names: dict[int, str | None] = {}
        self.open: set[int] = set()

    def apply(self, event: Event) -> None:
        """Take one event (the store's ``_apply``: opens, messages, closes)."""
        cls = event.__class__
        if cls is MessageSeen:
            assert isinstance(event, MessageSeen)
            if event.conn in self.decoder.conns:
                decoded = self.decoder.feed(event)
                if decoded is not None:
                    self._put((event.conn, event.direction, event.message_no), decoded)
        elif cls is ConnectionOpened:
            assert isinstance(event, ConnectionOpened)
            self.handshakes[event.conn] = (event.path, event.subprotocol)
            self.open.add(event.conn)
            self.decoder.feed(event)
            found = self.decoder.decoding.decoder_of(event.conn)
            self.names[event.conn] = found.name if found is not None else None
        elif cls is ConnectionClosed:
            self.open.discard(event.conn)
            self.decoder.feed(event)

    def _put(self, key: Key, decoded: Decoded) -> None:
        self.decoded[key] = decoded
        if len(self.decoded) > self.limit:
            self.decoded.popitem(last=False)

    def get(self, key: Key) -> Decoded | None:
        return self.decoded.get(key)

    def decoder_name(self, conn: int) -> str | None:
        return self.names.get(conn)

    def choose(self, conn: int, name: str | None, messages: Iterable[MessageSeen] = ()) -> None:
        """Decode ``conn`` with ``name`` (``None``: not at all; ``AUTO``: as when it opened),
        again from the first of ``messages`` (the ones the store holds, in arrival order)."""
        decoding = self.decoder.decoding
        path, sub = self.handshakes.get(conn, ("/", None))
        decoding.opened(conn, path, sub)
        if name != AUTO:
            decoding.choose(conn, name)
        found = decoding.decoder_of(conn)
        self.names[conn] = found.name if found is not None else None
        for key in [k for k in self.decoded if k[0] == conn]:
            del self.decoded[key]
        if found is None:
            self.decoder.conns.discard(conn)
        else:
            self.decoder.conns.add(conn)
            for m in messages:
                decoded = decoding.message(conn, m.direction, m.message.opcode, m.message.payload)
                if decoded is not None:
                    self._put((conn, m.direction, m.message_no), decoded)
        if conn not in self.open:
            decoding.closed(conn)
            self.decoder.conns.discard(conn)


# -- over a recording's index --------------------------------------------------------------


@dataclass(slots=True)
class _ConnDecode:
    decoder: Decoder | None
    state: MessageDecoder | None
    offsets: list[tuple[int, str, int]] = field(default_factory=list)  # (off, dir, no), in order
    counted: dict[str, int] = field(default_factory=lambda: {"c2s": 0, "s2c": 0})
    pos: int = 0  # offsets[:pos] are decoded
    results: dict[tuple[str, int], Decoded] = field(default_factory=dict)


#: Messages ``PagedDecoded.get`` decodes (or offsets it looks up) in the caller's thread; a
#: message further on is decoded by a worker thread, a chunk at a time, while ``get`` answers
#: ``None`` (the row shows its raw preview until then: the UI never waits for a long decode).
SYNC_MESSAGES = 2_000
CHUNK = 500


class PagedDecoded:
    """Decoded messages of a recording read through its index, decoded on demand (thread-safe:
    the UI draws, the filter worker filters, a worker of its own decodes long stretches)."""

    def __init__(self, index: RecordingIndex, decoding: Decoding, *, limit: int = 200_000) -> None:
        self.index = index
        self.decoding = decoding
        self.limit = limit
        self._file: IO[bytes] = open(index.path, "rb")  # noqa: SIM115
        self._lock = threading.RLock()
        self._conns: OrderedDict[int, _ConnDecode] = OrderedDict()
        self._choices: dict[int, str | None] = {}
        self._records: dict[int, ConnRecord] = {}
        self._kept = 0
        self.decoded_count = 0  # messages decoded so far (for tests and the bench)
        self.changed = 0  # grows when the worker has decoded more (the UI redraws)
        self._wanted: dict[int, int] = {}  # conn → offset the worker decodes up to
        self._worker: threading.Thread | None = None
        self._closed = False

    def close(self) -> None:
        with self._lock:
            self._closed = True
            self._wanted.clear()
            self._file.close()

    @property
    def busy(self) -> bool:
        """Whether the worker is decoding."""
        return bool(self._wanted)

    def _record(self, conn: int) -> ConnRecord | None:
        rec = self._records.get(conn)
        if rec is None:
            self._records = {r.conn: r for r in self.index.connections()}
            rec = self._records.get(conn)
        return rec

    def _start(self, conn: int) -> _ConnDecode:
        rec = self._record(conn)
        handshake = Handshake(rec.path if rec is not None else "/",
                              rec.subprotocol if rec is not None else None)
        choice = self._choices.get(conn, AUTO)
        decoder = self.decoding.select(handshake) if choice == AUTO else (
            get_decoder(choice) if choice is not None else None)
        return _ConnDecode(decoder, decoder.start(handshake) if decoder is not None else None)

    def _conn(self, conn: int) -> _ConnDecode:
        cd = self._conns.get(conn)
        if cd is None:
            cd = self._conns[conn] = self._start(conn)
        else:
            self._conns.move_to_end(conn)
        return cd

    def decoder_name(self, conn: int) -> str | None:
        with self._lock:
            cd = self._conn(conn)
            return cd.decoder.name if cd.decoder is not None else None

    def choose(self, conn: int, name: str | None) -> None:
        with self._lock:
            self._choices[conn] = name
            old = self._conns.pop(conn, None)
            if old is not None:
                self._kept -= len(old.results)

    def get(self, key: Key, *, wait: bool = False) -> Decoded | None:
        """Message ``key`` decoded (``None``: its connection has no decoder, or it is not a
        message). Its connection's earlier messages are decoded first; when that is more than
        ``SYNC_MESSAGES``, the worker does it and this answers ``None`` meanwhile, unless
        ``wait`` (the filter's worker thread)."""
        conn, direction, no = key
        with self._lock:
            cd = self._conn(conn)
            if cd.state is None or cd.decoder is None:
                return None
            found = cd.results.get((direction, no))
            if found is not None or self._closed:
                return found
            off = self.index.message_offset(conn, direction, no)
            if off is None:
                return None
            if not wait and self._far(conn, cd, off):
                self._want(conn, off)
                return None
        while True:
            self._more_offsets(conn, cd, off)
            with self._lock:
                if self._conns.get(conn) is not cd or self._closed:
                    return None
                done = self._decode_to(conn, cd, off, CHUNK if not wait else None)
                found = cd.results.get((direction, no))
            if done:
                break
        self._bound()
        return found

    def _far(self, conn: int, cd: _ConnDecode, off: int) -> bool:
        """Whether reaching the message at ``off`` takes more than ``SYNC_MESSAGES``."""
        if cd.offsets and off <= cd.offsets[-1][0]:
            return bisect_right(cd.offsets, (off, "~", 0)) - cd.pos > SYNC_MESSAGES
        rec = self._record(conn)
        if rec is None:
            return False
        return rec.messages_c2s + rec.messages_s2c - cd.pos > SYNC_MESSAGES

    def _want(self, conn: int, off: int) -> None:
        """Have the worker decode ``conn`` up to ``off`` (called with the lock held)."""
        self._wanted[conn] = max(off, self._wanted.get(conn, 0))
        if self._worker is None or not self._worker.is_alive():
            self._worker = threading.Thread(target=self._work, name="wsinspect-decode", daemon=True)
            self._worker.start()

    def _work(self) -> None:
        while True:
            with self._lock:
                if not self._wanted or self._closed:
                    self._wanted.clear()
                    return
                conn, off = next(iter(self._wanted.items()))
                cd = self._conn(conn)
            if cd.state is None:
                done = True
            else:
                self._more_offsets(conn, cd, off)
                with self._lock:
                    done = self._closed or self._conns.get(conn) is not cd or \
                        self._decode_to(conn, cd, off, CHUNK)
                    self.changed += 1
            if done:
                with self._lock:
                    if self._wanted.get(conn) == off:
                        del self._wanted[conn]
                self._bound()

    def _more_offsets(self, conn: int, cd: _ConnDecode, off: int) -> None:
        """Learn the offsets of ``conn``'s messages up to ``off`` (SQL outside the lock)."""
        if cd.offsets and off <= cd.offsets[-1][0]:
            return
        with self._lock:
            self._records.pop(conn, None)
            rec = self._record(conn)
            before = dict(cd.counted)
        if rec is None:
            return
        new: list[tuple[int, str, int]] = []
        counted = dict(before)
        ask = self.index.message_offset
        for direction, count in (("c2s", rec.messages_c2s), ("s2c", rec.messages_s2c)):
            for n in range(before[direction] + 1, count + 1):
                where = ask(conn, direction, n)
                if where is not None:
                    new.append((where, direction, n))
            counted[direction] = max(before[direction], count)
        new.sort()
        with self._lock:
            if cd.counted != before:
                return  # another thread learnt them meanwhile
            cd.counted = counted
            cd.offsets.extend(new)

    def _decode_to(self, conn: int, cd: _ConnDecode, upto: int, most: int | None = None) -> bool:
        """Decode ``conn``'s messages up to offset ``upto`` (at most ``most`` of them: called
        again, it goes on); whether it got there. Called with the lock held."""
        from wsinspect.recording.reader import events_at

        assert cd.state is not None and cd.decoder is not None
        offsets = cd.offsets
        stop = len(offsets) if most is None else min(len(offsets), cd.pos + most)
        while cd.pos < stop and offsets[cd.pos][0] <= upto:
            off, direction, no = offsets[cd.pos]
            cd.pos += 1
            try:
                events = events_at(self._file, off)
            except ValueError:
                continue
            for event in events:
                if (type(event) is MessageSeen and event.conn == conn
                        and event.direction == direction and event.message_no == no):
                    m = event.message
                    try:
                        decoded = cd.state.decode(direction, m.opcode, m.payload)
                    except Exception as exc:  # a decoder's bug must never break a view
                        decoded = Decoded(cd.decoder.name, "error",
                                          f"{cd.decoder.name}: cannot decode ({exc!r})",
                                          error=f"decoder failed: {exc!r}")
                    cd.results[(direction, no)] = decoded
                    self._kept += 1
                    self.decoded_count += 1
                    break
        return cd.pos >= len(offsets) or offsets[cd.pos][0] > upto

    def _bound(self) -> None:
        with self._lock:
            while self._kept > self.limit and len(self._conns) > 1:
                _, old = self._conns.popitem(last=False)
                self._kept -= len(old.results)

    def filter_rows(self, found: list[int], start: int, stop: int,
                    terms: tuple[DecodedTerm, ...]) -> list[int]:
        """The rows of ``found`` (ids in ``[start, stop)``) whose message matches ``terms``
        (the filter's worker thread)."""
        from wsinspect.recording.index import KIND_FRAME
        from wsinspect.recording.reader import events_at

        if not found:
            return found
        wanted = {t.decoder for t in terms}
        refs = {r[0]: r for r in self.index.row_refs(found[0], found[-1] + 1)}
        usable: dict[int, bool] = {}
        out: list[int] = []
        for row in found:
            ref = refs.get(row)
            if ref is None or ref[2] != KIND_FRAME:
                continue
            _id, off, _kind, conn, seq = ref
            ok = usable.get(conn)
            if ok is None:
                ok = usable[conn] = self.decoder_name(conn) in wanted
            if not ok:
                continue
            with self._lock:
                try:
                    events = events_at(self._file, off)
                except ValueError:
                    continue
            frame = next((e for e in events if type(e) is FrameSeen and e.conn == conn
                          and e.seq == seq), None)
            if frame is None or not frame.frame.message_no:
                continue
            found_decoded = self.get((conn, frame.direction, frame.frame.message_no), wait=True)
            if decoded_matches(terms, found_decoded, self.decoder_name(conn)):
                out.append(row)
        return out

    def conns_for(self, terms: tuple[DecodedTerm, ...]) -> list[int]:
        """The connections whose decoder is one the terms name."""
        wanted = {t.decoder for t in terms}
        return [r.conn for r in self.index.connections() if self.decoder_name(r.conn) in wanted]
