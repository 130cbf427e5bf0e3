"""The index of a recording: a SQLite database beside it (``rec.jsonl.wsidx``) that gives random
access to a file that stays a plain append-only stream (docs/recording-index.md).

Built on first open, reused afterwards, extended when the recording has grown (a live
recording, or one still being written), rebuilt when it no longer matches the file (replaced,
truncated: the ``meta`` table keeps the indexed size, inode, mtime, a hash of the first bytes
and of the last indexed line) or when SQLite says it is damaged (one warning). Where the
recording's directory cannot be written the index goes to the user's cache directory, or else
to memory, with a notice.

The index is built only from :func:`wsinspect.recording.reader.scan` and read back with
:func:`~wsinspect.recording.reader.events_at`: it knows events and line offsets, never the line
layout, so it works the same for every format version.

Rows (table ``frames``): every frame and every message action (``kind`` 0 and 1), numbered
from 0 in file order, which is the order the TUI shows them in. Messages, connections and the
other events have their own tables. Text payloads (text messages, the text of control frames
and actions, within the capture limit) are searchable: ``instr`` over a table of texts, or
FTS5 with the trigram tokenizer when asked for (``fts=True``; see :func:`open_index`).

Thread safety: one connection, guarded by one lock; every method may be called from any thread
(the viewer indexes in a worker thread and pages from the UI thread). SQLite releases the GIL
while it works.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import sqlite3
import threading
from collections.abc import Callable
from typing import Any

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
from wsinspect.recording.index_db import (
    DIRS,
    FIN,
    FTS_TABLE,
    HAS_FTS5,
    INDEX_SUFFIX,
    KIND_ACTION,
    KIND_FRAME,
    MASKED,
    PLAIN_TEXTS,
    RSV1,
    RSV2,
    RSV3,
    SCHEMA,
    SCHEMA_VERSION,
    TEXT,
    TRUNCATED,
    UNDELIVERED,
    VIOLATION,
    WRITTEN,
    ConnRecord,
    RowQuery,
    Search,
    cache_dir,
    connect,
    message_key,
    remove_index,
)
from wsinspect.recording.reader import RecordingError, Warn, scan

__all__ = [
    "BATCH",
    "INDEX_SUFFIX",
    "KIND_ACTION",
    "KIND_FRAME",
    "ConnRecord",
    "RecordingIndex",
    "RowQuery",
    "Search",
    "message_key",
    "open_index",
]

BATCH = 10_000  # events per transaction
HEAD_BYTES = 1 << 16  # the hashed head of the recording
Progress = Callable[[int, int], None]  # (bytes indexed, bytes to index)


def _frame_flags(e: FrameSeen) -> int:
    f = e.frame
    flags = (
        (FIN if f.fin else 0) | (RSV1 if f.rsv1 else 0) | (RSV2 if f.rsv2 else 0)
        | (RSV3 if f.rsv3 else 0) | (MASKED if f.masked else 0)
    )
    if f.violations:
        flags |= VIOLATION
    if not e.delivered:
        flags |= UNDELIVERED
    if e.written is not None:
        flags |= WRITTEN
    if len(f.payload) < f.length:
        flags |= TRUNCATED
    if f.text:
        flags |= TEXT
    return flags


def _text(payload: bytes) -> str:
    return payload.decode("utf-8", "replace")


def _hash_range(f: Any, start: int, end: int) -> str:
    f.seek(start)
    return hashlib.sha256(f.read(max(0, end - start))).hexdigest()


def _last_line_end(path: str, size: int) -> int:
    """Offset just past the last newline before ``size`` (0 when none): where complete lines
    end. A torn last line starts there."""
    with open(path, "rb") as f:
        pos = size
        step = 1 << 16
        while pos > 0:
            start = max(0, pos - step)
            f.seek(start)
            chunk = f.read(pos - start)
            k = chunk.rfind(b"\n")
            if k >= 0:
                return start + k + 1
            pos = start
    return 0





class RecordingIndex:
    """The index of one recording. Open with :func:`open_index`; call :meth:`update` to index
    what the file holds beyond what is indexed (all of it the first time); then page with
    :meth:`row_refs`, search with :meth:`search`, and read lines with ``reader.events_at``.

    ``rows`` is the number of rows (frames and actions) indexed, ``frames`` of frames;
    ``indexed_to`` the byte offset up to which the recording is indexed; ``location`` says
    where the index lives (a path, or ``":memory:"``).
    """

    def __init__(self, path: str, con: sqlite3.Connection, location: str, warn: Warn,
                 fts: bool = False) -> None:
        self.path = path
        self.location = location
        self._con = con
        self._warn = warn
        self._lock = threading.RLock()
        self.fts = fts and HAS_FTS5
        self.rows = 0
        self.frames = 0
        self.indexed_to = 0
        self.scanned_lines = 0  # lines read by this object's updates (for tests)
        self._conns: dict[int, ConnRecord] = {}
        self._other_id = 0
        self._tail = (0, "")  # offset and hash of the last indexed line
        self._head = (0, "")  # length and hash of the hashed head
        self.rebuilt: str | None = None  # why the index was rebuilt on open, if it was

    # -- opening -------------------------------------------------------------------------

    def _meta(self) -> dict[str, Any]:
        return dict(self._con.execute("SELECT key, value FROM meta").fetchall())

    def _create(self) -> None:
        con = self._con
        con.executescript(SCHEMA)
        con.execute(FTS_TABLE if self.fts else PLAIN_TEXTS)
        con.executemany(
            "INSERT INTO meta VALUES (?, ?)",
            [("schema", SCHEMA_VERSION), ("fts", int(self.fts)), ("indexed_to", 0), ("rows", 0),
             ("frames", 0), ("head_len", 0), ("head_hash", ""), ("tail_off", 0),
             ("tail_hash", ""), ("ino", 0), ("mtime_ns", 0)],
        )
        con.commit()
        self.rows = self.frames = self.indexed_to = self._other_id = 0
        self._conns = {}
        self._tail = (0, "")
        self._head = (0, "")

    def _load(self) -> str | None:
        """Read the state back from an existing index; return why it must be rebuilt, or
        ``None`` when it matches the recording (``sqlite3.DatabaseError`` when damaged)."""
        meta = self._meta()
        if meta.get("schema") != SCHEMA_VERSION:
            return "it was made by another version"
        indexed_to = int(meta["indexed_to"])
        st = os.stat(self.path)
        if st.st_size < indexed_to:
            return "the recording is shorter than what was indexed"
        head_len, head_hash = int(meta["head_len"]), str(meta["head_hash"])
        tail_off, tail_hash = int(meta["tail_off"]), str(meta["tail_hash"])
        unchanged = (int(meta["ino"]), int(meta["mtime_ns"])) == (st.st_ino, st.st_mtime_ns)
        if not unchanged or st.st_size != indexed_to:
            with open(self.path, "rb") as f:
                if _hash_range(f, 0, head_len) != head_hash or (
                    tail_hash and _hash_range(f, tail_off, indexed_to) != tail_hash
                ):
                    return "the recording was replaced"
        self.fts = bool(meta["fts"])
        self.indexed_to = indexed_to
        self.rows = int(meta["rows"])
        self.frames = int(meta["frames"])
        self._head = (head_len, head_hash)
        self._tail = (tail_off, tail_hash)
        self._conns = {r[0]: ConnRecord(*r) for r in self._con.execute("SELECT * FROM connections")}
        self._other_id = self._con.execute("SELECT coalesce(max(id) + 1, 0) FROM others").fetchone()[0]
        return None

    # -- indexing ------------------------------------------------------------------------

    def stale(self) -> bool:
        """Whether the file holds more than is indexed (or less: then ``update`` rebuilds)."""
        try:
            return os.path.getsize(self.path) != self.indexed_to
        except OSError:
            return False

    def update(self, progress: Progress | None = None, *,
               stop: Callable[[], bool] | None = None, batch: int = BATCH) -> int:
        """Index the complete lines the recording has beyond ``indexed_to`` (a torn last line
        waits until it is complete); return the number of rows added. Rebuilds first when the
        file no longer matches (truncated or replaced). ``progress(done, total)`` is called
        after each batch, in bytes; ``stop()`` true ends early (what is committed stays)."""
        try:
            return self._update(progress, stop, batch)
        except sqlite3.DatabaseError as exc:
            if self.location == ":memory:":
                raise
            self._warn(f"index {self.location} is damaged ({exc}); rebuilding it")
            with self._lock:
                self._con.close()
                remove_index(self.location)
                self._con = connect(self.location)
                self._create()
            return self._update(progress, stop, batch)

    def _update(self, progress: Progress | None, stop: Callable[[], bool] | None,
                batch: int) -> int:
        st = os.stat(self.path)
        size = st.st_size
        if size < self.indexed_to:
            with self._lock:
                self._reset("the recording is shorter than what was indexed")
        end = _last_line_end(self.path, size)
        start = self.indexed_to
        if end <= start:
            return 0
        added_before = self.rows
        frames_rows: list[tuple[Any, ...]] = []
        message_rows: list[tuple[Any, ...]] = []
        text_rows: list[tuple[int, str]] = []
        other_rows: list[tuple[Any, ...]] = []
        touched: set[int] = set()
        conns = self._conns
        next_id = self.rows
        frames = self.frames
        other_id = self._other_id
        line = -1  # offset of the line being read
        count = 0
        dirs = DIRS

        def commit(upto: int) -> None:
            nonlocal frames_rows, message_rows, text_rows, other_rows, touched, count
            self._commit(upto, line, next_id, frames, other_id, frames_rows, message_rows,
                         text_rows, other_rows, [conns[c] for c in touched])
            frames_rows, message_rows, text_rows, other_rows = [], [], [], []
            touched = set()
            count = 0
            if progress is not None:
                progress(upto - start, end - start)

        for off, event in scan(self.path, start, warn=self._warn):
            if off >= end:
                break
            if off != line:
                if count >= batch and line >= 0:
                    commit(off)
                    if stop is not None and stop():
                        return self.rows - added_before
                line = off
                self.scanned_lines += 1
            count += 1
            kind = type(event)
            if kind is FrameSeen:
                assert isinstance(event, FrameSeen)
                f = event.frame
                c = event.conn
                info = conns.get(c)
                if info is None:
                    info = conns[c] = ConnRecord(c, ts=event.ts)
                touched.add(c)
                d = event.direction
                if d == "c2s":
                    info.frames_c2s += 1
                    info.bytes_c2s += f.length
                else:
                    info.frames_s2c += 1
                    info.bytes_s2c += f.length
                if f.violations:
                    info.violations += 1
                close_code = None
                tkey: int | None = None
                if f.opcode >= 8:
                    if f.opcode == 8:
                        close_code = f.close_code
                        if info.close_code is None:
                            info.close_code = close_code
                        if f.close_reason:
                            tkey = -(next_id + 1)
                            text_rows.append((tkey, f.close_reason))
                    elif f.text and f.payload:
                        tkey = -(next_id + 1)
                        text_rows.append((tkey, _text(f.payload)))
                elif event.written is not None:  # the relay publishes no message for these
                    if f.text and f.payload:
                        tkey = -(next_id + 1)
                        text_rows.append((tkey, _text(f.payload)))
                elif f.message_no:
                    tkey = (c << 32) | (f.message_no << 1) | (d == "s2c")
                frames_rows.append((
                    next_id, off, KIND_FRAME, c, event.seq, dirs[d], event.ts, f.opcode, f.length,
                    _frame_flags(event), f.message_no, close_code, tkey,
                ))
                next_id += 1
                frames += 1
            elif kind is MessageSeen:
                assert isinstance(event, MessageSeen)
                m = event.message
                c = event.conn
                info = conns.get(c)
                if info is None:
                    info = conns[c] = ConnRecord(c, ts=event.ts)
                touched.add(c)
                if event.direction == "c2s":
                    info.messages_c2s += 1
                else:
                    info.messages_s2c += 1
                mkey = message_key(c, event.direction, event.message_no)
                mflags = (TEXT if m.opcode == 1 else 0) | (TRUNCATED if m.truncated else 0) | (
                    RSV1 if m.compressed else 0)
                message_rows.append((mkey, off, c, dirs[event.direction], event.message_no,
                                     event.ts, m.opcode, m.length, m.frames, mflags))
                if m.opcode == 1 and m.payload:
                    text_rows.append((mkey, _text(m.payload)))
            elif kind is MessageAction:
                assert isinstance(event, MessageAction)
                c = event.conn
                if c not in conns:
                    conns[c] = ConnRecord(c, ts=event.ts)
                    touched.add(c)
                tkey = None
                if event.payload and event.opcode in (1, 9, 10):
                    tkey = -(next_id + 1)
                    text_rows.append((tkey, _text(event.payload)))
                frames_rows.append((
                    next_id, off, KIND_ACTION, c, event.held or 0, dirs.get(event.direction, 0),
                    event.ts, event.opcode, event.length, 0, event.message_no, event.close_code,
                    tkey,
                ))
                next_id += 1
            else:
                self._other(event, off, other_id, other_rows, touched)
                other_id += 1
        commit(end)
        return self.rows - added_before

    def _other(self, event: Event, off: int, other_id: int, rows: list[tuple[Any, ...]],
               touched: set[int]) -> None:
        conn = getattr(event, "conn", 0)
        rows.append((other_id, off, conn, event.type, event.ts))
        if isinstance(event, (ConnectionOpened, HandshakeRejected)):
            info = self._conns.get(conn)
            if info is None:
                info = self._conns[conn] = ConnRecord(conn)
            info.off, info.ts, info.client, info.path = off, event.ts, event.client, event.path
            if isinstance(event, ConnectionOpened):
                info.upstream = event.upstream
                info.subprotocol = event.subprotocol
                info.extensions = event.extensions
            else:
                info.state = "rejected"
                info.closed_ts = event.ts
            touched.add(conn)
        elif isinstance(event, ConnectionClosed):
            info = self._conns.get(conn)
            if info is None:
                info = self._conns[conn] = ConnRecord(conn, ts=event.ts)
            info.state = "closed"
            info.closed_ts = event.ts
            if event.code is not None:
                info.close_code = event.code
            touched.add(conn)
        elif isinstance(event, (FaultInjected, HttpExchange, Notice)):
            pass

    def _commit(self, upto: int, tail_off: int, rows: int, frames: int, other_id: int,
                frames_rows: list[tuple[Any, ...]], message_rows: list[tuple[Any, ...]],
                text_rows: list[tuple[int, str]], other_rows: list[tuple[Any, ...]],
                conns: list[ConnRecord]) -> None:
        """One transaction: the rows of the lines before ``upto`` and the state after them."""
        with open(self.path, "rb") as f:
            tail_hash = _hash_range(f, tail_off, upto) if tail_off >= 0 else ""
            head = self._head
            if head[0] < HEAD_BYTES and upto > head[0]:
                n = min(HEAD_BYTES, upto)
                head = (n, _hash_range(f, 0, n))
            st = os.fstat(f.fileno())
        with self._lock:
            con = self._con
            con.execute("BEGIN IMMEDIATE")
            try:
                con.executemany("INSERT INTO frames VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?)", frames_rows)
                con.executemany("INSERT OR REPLACE INTO messages VALUES (?,?,?,?,?,?,?,?,?,?)",
                                message_rows)
                if text_rows:
                    con.executemany("INSERT OR REPLACE INTO texts(rowid, body) VALUES (?, ?)",
                                    text_rows)
                con.executemany("INSERT INTO others VALUES (?,?,?,?,?)", other_rows)
                con.executemany(
                    "INSERT OR REPLACE INTO connections VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)",
                    [c.values() for c in conns],
                )
                con.executemany(
                    "INSERT OR REPLACE INTO meta VALUES (?, ?)",
                    [("indexed_to", upto), ("rows", rows), ("frames", frames),
                     ("head_len", head[0]), ("head_hash", head[1]), ("tail_off", tail_off),
                     ("tail_hash", tail_hash), ("ino", st.st_ino), ("mtime_ns", st.st_mtime_ns)],
                )
            except BaseException:
                con.rollback()
                raise
            con.commit()
            self.indexed_to = upto
            self.rows = rows
            self.frames = frames
            self._other_id = other_id
            self._head = head
            self._tail = (tail_off, tail_hash)

    def _reset(self, why: str) -> None:
        """Drop everything indexed and start again (caller holds the lock)."""
        con = self._con
        for (name,) in con.execute(
            "SELECT name FROM sqlite_master WHERE type IN ('table', 'view') AND name NOT LIKE "
            "'sqlite_%' AND name NOT LIKE 'texts_%'"
        ).fetchall():
            con.execute(f"DROP TABLE IF EXISTS {name}")
        con.commit()
        self._create()
        self.rebuilt = why

    # -- reading -------------------------------------------------------------------------

    def row_refs(self, start: int, stop: int) -> list[tuple[int, int, int, int, int]]:
        """``(id, line offset, kind, conn, seq)`` of the rows with ids in ``[start, stop)``."""
        with self._lock:
            return self._con.execute(
                "SELECT id, off, kind, conn, seq FROM frames WHERE id >= ? AND id < ? ORDER BY id",
                (start, stop),
            ).fetchall()

    def last_ts(self) -> float:
        """Time of the last row (0 when there is none)."""
        with self._lock:
            row = self._con.execute("SELECT ts FROM frames ORDER BY id DESC LIMIT 1").fetchone()
        return 0.0 if row is None else float(row[0])

    def message_offset(self, conn: int, direction: str, message_no: int) -> int | None:
        """Offset of the line holding a message's ``MessageSeen``, or ``None``."""
        with self._lock:
            row = self._con.execute(
                "SELECT off FROM messages WHERE mkey = ?", (message_key(conn, direction, message_no),)
            ).fetchone()
        return None if row is None else int(row[0])

    def connections(self) -> list[ConnRecord]:
        """Every connection indexed, by id."""
        with self._lock:
            return [ConnRecord(*r) for r in self._con.execute("SELECT * FROM connections ORDER BY conn")]

    def conn_event_offsets(self, conn: int) -> list[int]:
        """Offsets of the lines of ``conn``'s events that are not rows (open, close,
        rejected, faults), in order."""
        with self._lock:
            return [r[0] for r in self._con.execute(
                "SELECT DISTINCT off FROM others WHERE conn = ? ORDER BY off", (conn,))]

    def conn_rows(self, conn: int) -> list[int]:
        """Ids of ``conn``'s rows, ascending."""
        with self._lock:
            return [r[0] for r in self._con.execute(
                "SELECT id FROM frames WHERE conn = ? ORDER BY id", (conn,))]

    def search(self, query: RowQuery) -> Search:
        """A :class:`Search` for ``query`` (full-text hits are looked up once, here)."""
        return Search(self._con, self._lock, self.fts, query)

    def close(self) -> None:
        with self._lock:
            self._con.close()


# -- opening ------------------------------------------------------------------------------


def _locations(path: str, location: str | None) -> list[str]:
    if location is not None:
        return [location]
    beside = path + INDEX_SUFFIX
    key = hashlib.sha256(os.path.realpath(path).encode()).hexdigest()[:24]
    cached = os.path.join(cache_dir(), f"{os.path.basename(path)[:40]}-{key}{INDEX_SUFFIX}")
    return [beside, cached, ":memory:"]


def _writable(location: str) -> bool:
    if location == ":memory:":
        return True
    directory = os.path.dirname(os.path.abspath(location))
    if os.path.exists(location):
        return os.access(location, os.W_OK) and os.access(directory, os.W_OK)
    try:
        os.makedirs(directory, exist_ok=True)
    except OSError:
        return False
    return os.access(directory, os.W_OK)


def open_index(path: str, *, warn: Warn, location: str | None = None,
               fts: bool = False) -> RecordingIndex:
    """Open (or create) the index of the recording at ``path``; nothing is indexed yet: call
    ``update()`` (at once, or in a worker thread while showing what is there).

    ``location``: where the index lives (default: beside the recording, ``path + ".wsidx"``;
    where that cannot be written, the cache directory, then memory, each with a notice
    through ``warn``). An index that no longer matches the recording is emptied and rebuilt
    (``rebuilt`` says why); one that SQLite finds damaged is deleted and rebuilt, with a
    warning. Raises ``RecordingError`` when the recording cannot be read.

    ``fts``: a new index also gets an FTS5 trigram index of its texts (where this SQLite has
    FTS5), which answers text searches of 3 characters or more without reading every text.
    Off by default: on 1M 64-byte texts it took 9 s more to build and 150 MB more disk, while
    a search that reads every text takes about 0.5 s (docs/recording-index.md).
    """
    try:
        os.stat(path)
    except OSError as exc:
        raise RecordingError(f"{path}: cannot read: {exc.strerror or exc}") from None
    candidates = _locations(path, location)
    for n, loc in enumerate(candidates):
        if not _writable(loc):
            continue
        if n:
            warn(f"cannot write an index beside {path}; using {'memory' if loc == ':memory:' else loc}")
        try:
            return _open_at(path, loc, warn, fts)
        except (sqlite3.OperationalError, OSError) as exc:
            if loc == ":memory:":
                raise
            warn(f"index {loc}: {exc}")
    raise AssertionError("unreachable: memory is always writable")  # pragma: no cover


def _open_at(path: str, loc: str, warn: Warn, fts: bool) -> RecordingIndex:
    if loc != ":memory:" and os.path.exists(loc):
        con: sqlite3.Connection | None = None
        try:
            con = connect(loc)
            index = RecordingIndex(path, con, loc, warn, fts)
            why = index._load()
        except sqlite3.DatabaseError as exc:
            warn(f"index {loc} is damaged ({exc}); rebuilding it")
            if con is not None:
                with contextlib.suppress(sqlite3.Error):
                    con.close()
        else:
            if why is not None:
                with index._lock:
                    index._reset(why)
            return index
        remove_index(loc)
    index = RecordingIndex(path, connect(loc), loc, warn, fts)
    index._create()
    return index
