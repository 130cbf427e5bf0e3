"""The TUI's store and view over a recording's index (``wsinspect view``), for recordings of
any size (docs/recording-index.md).

``PagedStore`` is an ``EventStore`` whose rows are the index's rows (frames and message actions,
numbered from 0 in file order): it keeps a bounded window of them in memory, in pages read
line by line with ``reader.events_at``, and forgets the least recently used pages. Connections
come from the index's connection table, their handshakes and faults are read when asked for.
A worker thread indexes the recording (the whole of it on first open, then what is appended:
the file is polled) while the UI shows what is indexed already.

``PagedView`` is a ``FrameView`` whose filter runs in SQL over every row, in a worker thread, a
range of row ids at a time, so matches stream in (in row order) with a progress fraction.
Words on decoded messages (``sio:event=chat``) cannot run in SQL: SQL narrows to data frames
(of the one connection that can match, when there is one), and the worker decodes each
candidate (``tui.decoded.PagedDecoded``).

Neither imports Textual; the app drives them from its timer like the live store.
"""

from __future__ import annotations

import threading
import time
from array import array
from collections import OrderedDict, deque
from collections.abc import Callable
from dataclasses import replace
from typing import IO

from wsinspect.events import (
    ConnectionClosed,
    ConnectionOpened,
    FaultInjected,
    FrameSeen,
    HandshakeRejected,
    MessageAction,
    MessageSeen,
    Notice,
)
from wsinspect.recording.index import (
    KIND_ACTION,
    ConnRecord,
    RecordingIndex,
    RowQuery,
    Search,
)
from wsinspect.recording.reader import events_at
from wsinspect.tui.decoded import PagedDecoded
from wsinspect.tui.store import ConnInfo, EventStore, FrameFilter, FrameView, Row
from wsinspect.wire.decoders import Decoding
from wsinspect.wire.frames import Frame

__all__ = ["DEFAULT_WINDOW", "PAGE_ROWS", "PagedStore", "PagedView", "row_query"]

PAGE_ROWS = 250  # rows read from the recording at once
DEFAULT_WINDOW = 20_000  # rows kept in memory
SEARCH_CHUNK = 20_000  # row ids a filter looks at per SQL query
POLL_INTERVAL = 0.5  # seconds between two looks at the recording's size


class IndexedMessages(OrderedDict[tuple[int, str, int], MessageSeen]):
    """The messages of the rows in the window, and any other asked for: ``get`` reads a
    message's line from the recording when it is not here. Bounded (least recently used
    first out)."""

    def __init__(self, store: PagedStore, limit: int) -> None:
        super().__init__()
        self._store = store
        self._limit = limit
        self._missing: set[tuple[int, str, int]] = set()

    def put(self, key: tuple[int, str, int], message: MessageSeen) -> None:
        self[key] = message
        if len(self) > self._limit:
            self.popitem(last=False)

    def get(self, key: tuple[int, str, int], default: MessageSeen | None = None) -> MessageSeen | None:  # type: ignore[override]
        found = super().get(key)
        if found is not None or key in self._missing:
            return found if found is not None else default
        found = self._store.read_message(*key)
        if found is None:
            if len(self._missing) > 10_000:
                self._missing.clear()
            self._missing.add(key)
            return default
        self.put(key, found)
        return found


def _placeholder(conn: int, seq: int) -> FrameSeen:
    """What a row whose line cannot be read any more shows (the file changed under us)."""
    return FrameSeen(conn, seq, "c2s", 0.0, Frame(True, False, False, False, 1, False, None, 0, b"", b""))


class PagedStore(EventStore):
    """An ``EventStore`` over a ``RecordingIndex``: rows are paged in from the recording.

    ``total`` is the number of rows indexed (picked up by ``drain``); ``row(i)`` works for any
    ``i`` below it. Nothing is ever "dropped": ``base`` stays 0. Events published (notices) are
    handled as by the live store.
    """

    def __init__(self, index: RecordingIndex, window: int = DEFAULT_WINDOW) -> None:
        super().__init__(max(window, PAGE_ROWS), live=False)
        self.index = index
        self._file: IO[bytes] = open(index.path, "rb")  # noqa: SIM115
        self._pages: OrderedDict[int, list[Row]] = OrderedDict()
        self._max_pages = max(1, self.max_frames // PAGE_ROWS)
        self._messages = IndexedMessages(self, self.max_frames)
        self.messages = self._messages
        self._rows = 0
        self._frames_count = 0
        self._conn_rows: dict[int, tuple[int, array[int]]] = {}
        self._loaded_conns: set[int] = set()
        self._thread: threading.Thread | None = None
        self._stop = threading.Event()
        self.indexing = False  # the worker is indexing (not just waiting for the file to grow)
        self._progress = (0, 0)  # bytes indexed, bytes to index in the current update
        self.pages_read = 0  # pages read from the recording so far (for tests)
        self.index_error: str | None = None
        self._synced = 0.0  # monotonic time of the last look at the index's new rows
        self._paged_decoded: PagedDecoded | None = None
        self._decoded_seen = 0

    # -- indexing --------------------------------------------------------------------------

    def start(self, *, follow: bool = True, pause: Callable[[], bool] | None = None) -> None:
        """Index in a worker thread: what is not indexed yet, then (``follow``) whatever the
        recording grows by, polled every ``POLL_INTERVAL``. ``pause()`` true makes the worker
        sleep a little between batches (the user is typing: answer keys first)."""
        if self._thread is not None:
            return
        self.indexing = self.index.stale()
        self._thread = threading.Thread(
            target=self._index_loop, args=(follow, pause), name="wsinspect-index", daemon=True
        )
        self._thread.start()

    def _index_loop(self, follow: bool, pause: Callable[[], bool] | None) -> None:
        def progress(done: int, total: int) -> None:
            self._progress = (done, total)
            if pause is not None and pause():
                time.sleep(0.02)

        try:
            while not self._stop.is_set():
                if self.index.stale():
                    self.indexing = True
                    self.index.update(progress, stop=self._stop.is_set)
                self.indexing = False
                if not follow:
                    return
                self._stop.wait(POLL_INTERVAL)
        except Exception as exc:  # a file gone, a disk full: say so, keep what is indexed
            self.index_error = f"indexing stopped: {exc}"
            self.publish(Notice(time.time(), "error", self.index_error))
        finally:
            self.indexing = False

    def use_decoding(self, decoding: Decoding | None) -> None:
        """Decode on demand, reading each connection's messages through the index."""
        old = self._paged_decoded
        self._paged_decoded = PagedDecoded(self.index, decoding) if decoding is not None else None
        self.decoded = self._paged_decoded
        if old is not None:
            old.close()

    def choose_decoder(self, conn: int, name: str | None) -> None:
        if self._paged_decoded is not None:
            self._paged_decoded.choose(conn, name)

    def index_progress(self) -> float:
        """How far the current indexing has got, 0..1."""
        done, total = self._progress
        return done / total if total else 1.0

    def close(self) -> None:
        """Stop the worker and close the recording (idempotent)."""
        self._stop.set()
        thread = self._thread
        if thread is not None and thread is not threading.current_thread():
            thread.join(timeout=5)
        self._file.close()
        if self._paged_decoded is not None:
            self._paged_decoded.close()

    # -- what the UI asks ------------------------------------------------------------------

    @property
    def pending(self) -> int:
        decoding = self._paged_decoded is not None and self._paged_decoded.busy
        return super().pending + (1 if self.indexing else 0) + (1 if decoding else 0)

    @property
    def total(self) -> int:
        return self._rows

    @property
    def kept(self) -> int:
        """Rows held in memory now (at most the window, ``max_frames``)."""
        return sum(len(page) for page in self._pages.values())

    @property
    def frames_total(self) -> int:
        return self._frames_count

    def drain(self, budget: int | None = None) -> int:
        """Apply published events, and take in the rows indexed since the last call; return
        how many of both there were."""
        applied = super().drain(budget)
        decoded = self._paged_decoded
        if decoded is not None and decoded.changed != self._decoded_seen:
            self._decoded_seen = decoded.changed  # the worker decoded more: redraw
            applied += 1
        rows = self.index.rows
        now = time.monotonic()
        # While indexing, new rows are taken in a few times a second, not at every tick.
        if rows != self._rows and (now - self._synced >= 0.2 or not self.indexing):
            self._synced = now
            applied += max(0, rows - self._rows)
            if rows < self._rows:  # rebuilt (the file was replaced): start over
                self._pages.clear()
                self.messages.clear()
                self._conn_rows.clear()
                self.connections.clear()
                self._loaded_conns.clear()
                applied += 1
            self._rows = rows
            self._frames_count = self.index.frames
            if self._pages:  # the last page may have been read while it was partial
                self._pages.pop(max(self._pages), None)
            self._sync_connections()
        return applied

    def _sync_connections(self) -> None:
        for rec in self.index.connections():
            info = self.connections.get(rec.conn)
            if info is None:
                info = self.connections[rec.conn] = ConnInfo(rec.conn, rec.ts)
            _fill(info, rec)
            self.last_ts = max(self.last_ts, rec.closed_ts or rec.ts)
        self.last_ts = max(self.last_ts, self.index.last_ts())

    def row(self, index: int) -> Row:
        if index < 0 or index >= self._rows:
            raise IndexError(index)
        number, k = divmod(index, PAGE_ROWS)
        page = self._pages.get(number)
        if page is None or k >= len(page):
            page = self._read_page(number)
        else:
            self._pages.move_to_end(number)
        return page[k]

    def _read_page(self, number: int) -> list[Row]:
        start = number * PAGE_ROWS
        refs = self.index.row_refs(start, min(start + PAGE_ROWS, self._rows))
        page: list[Row] = []
        f = self._file
        for _id, off, kind, conn, seq in refs:
            try:
                events = events_at(f, off)
            except ValueError:
                events = []
            found: Row | None = None
            for event in events:
                if kind == KIND_ACTION:
                    if found is None and type(event) is MessageAction:
                        found = event
                elif type(event) is FrameSeen:
                    if found is None and event.conn == conn and event.seq == seq:
                        found = event
                elif type(event) is MessageSeen:
                    self._messages.put((event.conn, event.direction, event.message_no), event)
            page.append(found if found is not None else _placeholder(conn, seq))
        self._pages[number] = page
        self._pages.move_to_end(number)
        while len(self._pages) > self._max_pages:
            self._pages.popitem(last=False)
        self.pages_read += 1
        return page

    def read_message(self, conn: int, direction: str, message_no: int) -> MessageSeen | None:
        off = self.index.message_offset(conn, direction, message_no)
        if off is None:
            return None
        try:
            events = events_at(self._file, off)
        except ValueError:
            return None
        for event in events:
            if (type(event) is MessageSeen and event.conn == conn
                    and event.direction == direction and event.message_no == message_no):
                return event
        return None

    def conn_frames(self, conn: int) -> array[int]:
        cached = self._conn_rows.get(conn)
        if cached is not None and cached[0] == self._rows:
            return cached[1]
        rows = array("q", self.index.conn_rows(conn))
        self._conn_rows = {conn: (self._rows, rows)}
        return rows

    def conn_info(self, conn: int) -> ConnInfo | None:
        """The connection with its handshake, close and faults read from the recording."""
        info = self.connections.get(conn)
        if info is None or conn in self._loaded_conns:
            return info
        self._loaded_conns.add(conn)
        info.faults = []
        for off in self.index.conn_event_offsets(conn):
            try:
                events = events_at(self._file, off)
            except ValueError:
                continue
            for event in events:
                if getattr(event, "conn", None) != conn:
                    continue
                if isinstance(event, ConnectionOpened):
                    info.opened = event
                elif isinstance(event, ConnectionClosed):
                    info.closed = event
                elif isinstance(event, HandshakeRejected):
                    info.rejected = event
                elif isinstance(event, FaultInjected):
                    info.faults.append(event)
        return info


def _fill(info: ConnInfo, rec: ConnRecord) -> None:
    info.opened_ts = rec.ts
    info.closed_ts = rec.closed_ts
    info.client, info.path, info.upstream = rec.client, rec.path, rec.upstream
    info.subprotocol, info.extensions = rec.subprotocol, rec.extensions
    info.state = rec.state
    info.close_code = rec.close_code
    info.frames = {"c2s": rec.frames_c2s, "s2c": rec.frames_s2c}
    info.bytes = {"c2s": rec.bytes_c2s, "s2c": rec.bytes_s2c}
    info.messages = {"c2s": rec.messages_c2s, "s2c": rec.messages_s2c}
    info.violations = rec.violations


def row_query(flt: FrameFilter) -> RowQuery:
    """The index query of a TUI filter. ``is:held`` matches nothing in a recording (holding is
    live only)."""
    return RowQuery(
        direction=flt.direction,
        opcodes=flt.opcodes,
        conn=flt.conn,
        text=flt.text,
        regex=flt.regex.pattern if flt.regex is not None else None,
        bad=flt.marked,
        nothing=flt.held,
    )


class PagedView(FrameView):
    """A ``FrameView`` over a ``PagedStore``: every row matches an empty filter (kept as a range
    of ids); any other filter runs in SQL over all rows in a worker thread and its matches are
    taken in by ``update``, in row order."""

    def __init__(self, index: RecordingIndex, flt: FrameFilter | None = None) -> None:
        super().__init__(flt)
        self.index = index
        self._results: deque[list[int]] = deque()
        self._job: threading.Thread | None = None
        self._cancel = threading.Event()
        self._search: Search | None = None
        self._done = 0  # row ids the running job has looked at (its progress)
        self._goal = 0
        self._finished = False  # a job ended since the last update
        self._scanned_by_job = 0  # where the last job stopped

    @property
    def progress(self) -> float | None:
        """How far the running filter has got (0..1), or ``None`` when none runs."""
        if self._job is None:
            return None
        return self._done / self._goal if self._goal else 0.0

    @property
    def pending(self) -> bool:
        return bool(self._results) or self._job is not None or self._finished

    def rebuild(self, store: EventStore, flt: FrameFilter | None = None) -> None:
        self._stop_job()
        if flt is not None:
            self.filter = flt
        self.indices = array("q")
        self._scanned = 0
        if self.filter.is_trivial and self.filter.conn is None:
            self.indices = array("q", range(store.total))
            self._scanned = store.total
            return
        self._search = self.index.search(self._query(store))
        self._start_job(store)

    def _query(self, store: EventStore) -> RowQuery:
        """The SQL part of the filter; with decoded words, data frames only (of the one
        connection whose decoder can match, if just one)."""
        flt = self.filter
        query = row_query(flt)
        decoded = store.decoded
        if not flt.decoded:
            return query
        if not isinstance(decoded, PagedDecoded):
            return replace(query, nothing=True)
        data = frozenset({0, 1, 2})
        query = replace(query, opcodes=data if flt.opcodes is None else flt.opcodes & data)
        if flt.conn is None:
            conns = decoded.conns_for(flt.decoded)
            if len(conns) <= 1:
                query = replace(query, conn=conns[0] if conns else None, nothing=not conns)
        return query

    def _start_job(self, store: EventStore) -> None:
        search = self._search
        assert search is not None
        self._cancel = cancel = threading.Event()
        self._results = results = deque[list[int]]()
        start = self._scanned
        self._done, self._goal = 0, max(0, store.total - start)
        terms = self.filter.decoded
        decoded = store.decoded if terms and isinstance(store.decoded, PagedDecoded) else None

        def run() -> None:
            pos = start
            while not cancel.is_set():
                end = min(pos + SEARCH_CHUNK, store.total)
                if end <= pos:
                    break
                found = search.rows(pos, end)
                if decoded is not None and found:
                    found = decoded.filter_rows(found, pos, end, terms)
                if cancel.is_set():
                    return
                if found:
                    results.append(found)
                self._done = end - start
                self._goal = max(self._goal, store.total - start)
                pos = end
            self._scanned_by_job = pos

        self._scanned_by_job = start
        self._job = threading.Thread(target=run, name="wsinspect-filter", daemon=True)
        self._job.start()

    def _stop_job(self) -> None:
        if self._job is not None:
            self._cancel.set()
            self._job.join()
            self._job = None
        if self._search is not None:
            self._search.close()
            self._search = None
        self._results = deque()
        self._finished = False

    def update(self, store: EventStore) -> tuple[int, int]:
        added = 0
        results = self._results
        while results:
            chunk = results.popleft()
            self.indices.extend(chunk)
            added += len(chunk)
        self._finished = False
        job = self._job
        if job is not None:
            if job.is_alive():
                return added, 0
            job.join()
            self._job = None
            self._scanned = self._scanned_by_job
            while results:  # the last chunk, appended just before the job ended
                chunk = results.popleft()
                self.indices.extend(chunk)
                added += len(chunk)
            self._finished = True
        end = store.total
        if end > self._scanned:
            if self._search is None:  # no filter: every new row
                self.indices.extend(range(self._scanned, end))
                added += end - self._scanned
                self._scanned = end
            else:
                self._start_job(store)
        return added, 0

    def close(self) -> None:
        self._stop_job()
