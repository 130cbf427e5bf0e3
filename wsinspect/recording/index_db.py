"""The tables of a recording's index (``recording.index``), and the queries over them.

The schema is documented in docs/recording-index.md. Rows (``frames``) are frames and message
actions numbered from 0 in file order; ``tkey`` links a row to its searchable text in
``texts``: the message's key (:func:`message_key`) for the frames of a data message, the
negative ``-(id + 1)`` for a control frame's or an action's own text.
"""

from __future__ import annotations

import contextlib
import itertools
import os
import re
import sqlite3
import threading
from dataclasses import dataclass
from typing import Any

__all__ = [
    "BAD",
    "DIRS",
    "FTS_TABLE",
    "HAS_FTS5",
    "INDEX_SUFFIX",
    "KIND_ACTION",
    "KIND_FRAME",
    "PLAIN_TEXTS",
    "SCHEMA",
    "SCHEMA_VERSION",
    "ConnRecord",
    "RowQuery",
    "Search",
    "cache_dir",
    "connect",
    "message_key",
    "remove_index",
]

INDEX_SUFFIX = ".wsidx"
SCHEMA_VERSION = 1

KIND_FRAME = 0
KIND_ACTION = 1

# frames.flags
FIN, RSV1, RSV2, RSV3, MASKED = 1, 2, 4, 8, 16
VIOLATION, UNDELIVERED, WRITTEN, TRUNCATED, TEXT = 32, 64, 128, 256, 512
BAD = VIOLATION | UNDELIVERED

DIRS = {"c2s": 0, "s2c": 1}

SCHEMA = """
CREATE TABLE meta(key TEXT PRIMARY KEY, value) WITHOUT ROWID;
CREATE TABLE frames(
    id INTEGER PRIMARY KEY,  -- row number: frames and actions in file order, from 0
    off INTEGER NOT NULL,    -- byte offset of the line the event is on
    kind INTEGER NOT NULL,   -- 0 frame, 1 message action
    conn INTEGER NOT NULL,
    seq INTEGER NOT NULL,    -- frame: its seq; action: its held id (or 0)
    dir INTEGER NOT NULL,    -- 0 c2s, 1 s2c
    ts REAL NOT NULL,
    opcode INTEGER NOT NULL,
    len INTEGER NOT NULL,
    flags INTEGER NOT NULL,  -- FIN 1 RSV1 2 RSV2 4 RSV3 8 MASKED 16 VIOLATION 32
                             -- UNDELIVERED 64 WRITTEN 128 TRUNCATED 256 TEXT 512
    message_no INTEGER NOT NULL,
    close_code INTEGER,
    tkey INTEGER             -- key of its searchable text in ``texts`` (NULL: none)
);
CREATE INDEX frames_conn ON frames(conn, id);
CREATE TABLE messages(
    mkey INTEGER PRIMARY KEY,  -- message_key(conn, dir, message_no)
    off INTEGER NOT NULL, conn INTEGER NOT NULL, dir INTEGER NOT NULL,
    message_no INTEGER NOT NULL, ts REAL NOT NULL, opcode INTEGER NOT NULL,
    len INTEGER NOT NULL, frames INTEGER NOT NULL, flags INTEGER NOT NULL
);
CREATE TABLE connections(
    conn INTEGER PRIMARY KEY, off INTEGER, ts REAL, client TEXT, path TEXT, upstream TEXT,
    subprotocol TEXT, extensions TEXT, state TEXT, close_code INTEGER, closed_ts REAL,
    frames_c2s INTEGER, frames_s2c INTEGER, bytes_c2s INTEGER, bytes_s2c INTEGER,
    messages_c2s INTEGER, messages_s2c INTEGER, violations INTEGER
);
CREATE TABLE others(  -- every other event: open, close, rejected, http, fault, notice
    id INTEGER PRIMARY KEY, off INTEGER NOT NULL, conn INTEGER NOT NULL, type TEXT NOT NULL,
    ts REAL NOT NULL
);
CREATE INDEX others_conn ON others(conn);
"""

FTS_TABLE = "CREATE VIRTUAL TABLE texts USING fts5(body, tokenize='trigram')"
PLAIN_TEXTS = "CREATE TABLE texts(body TEXT)"  # rowid = tkey


def message_key(conn: int, direction: str, message_no: int) -> int:
    """The ``messages.mkey`` (and text key) of a message: unique per connection, direction
    and message number."""
    return (conn << 32) | (message_no << 1) | (direction == "s2c")


def _has_fts5() -> bool:
    try:
        con = sqlite3.connect(":memory:")
        try:
            con.execute("CREATE VIRTUAL TABLE t USING fts5(x, tokenize='trigram')")
        finally:
            con.close()
    except sqlite3.Error:
        return False
    return True


HAS_FTS5 = _has_fts5()


@dataclass(slots=True)
class ConnRecord:
    """One connection as the index knows it (what the TUI's connections list shows)."""

    conn: int
    off: int = -1  # offset of its open (or rejected) line; -1 when not seen
    ts: float = 0.0
    client: str = ""
    path: str = ""
    upstream: str = ""
    subprotocol: str | None = None
    extensions: str | None = None
    state: str = "open"
    close_code: int | None = None
    closed_ts: float | None = None
    frames_c2s: int = 0
    frames_s2c: int = 0
    bytes_c2s: int = 0
    bytes_s2c: int = 0
    messages_c2s: int = 0
    messages_s2c: int = 0
    violations: int = 0

    def values(self) -> tuple[Any, ...]:
        return (
            self.conn, self.off, self.ts, self.client, self.path, self.upstream,
            self.subprotocol, self.extensions, self.state, self.close_code, self.closed_ts,
            self.frames_c2s, self.frames_s2c, self.bytes_c2s, self.bytes_s2c,
            self.messages_c2s, self.messages_s2c, self.violations,
        )


@dataclass(frozen=True, slots=True)
class RowQuery:
    """Which rows a search wants; fields are ANDed, ``None`` means any.

    ``text`` is a case-insensitive substring of the row's text (a data frame's message, a
    control frame's or an action's own payload; text payloads only), ``regex`` a regular
    expression searched in it, ``bad`` frames with violations or not delivered, ``kind`` a
    row kind (``KIND_FRAME``, ``KIND_ACTION``)."""

    direction: str | None = None
    opcodes: frozenset[int] | None = None
    conn: int | None = None
    text: str | None = None
    regex: str | None = None
    bad: bool = False
    kind: int | None = None
    nothing: bool = False  # matches no row (a filter the index cannot answer as true)


class Search:
    """One query over the rows, answered a range of row ids at a time (so results can stream
    in, in row order, with progress). Create with ``RecordingIndex.search``; ``close``
    frees what it prepared (a temporary table of full-text hits)."""

    def __init__(self, con: sqlite3.Connection, lock: threading.RLock, fts: bool,
                 query: RowQuery) -> None:
        self._con = con
        self._lock = lock
        self.query = query
        self._hits: str | None = None
        where: list[str] = []
        params: list[Any] = []
        join = ""
        q = query
        if q.direction is not None:
            where.append("f.dir = ?")
            params.append(DIRS.get(q.direction, -1))
        if q.opcodes is not None:
            where.append(f"f.opcode IN ({','.join(str(int(o)) for o in sorted(q.opcodes)) or 'NULL'})")
        if q.conn is not None:
            where.append("f.conn = ?")
            params.append(q.conn)
        if q.kind is not None:
            where.append("f.kind = ?")
            params.append(q.kind)
        if q.bad:
            where.append(f"f.kind = 0 AND (f.flags & {BAD}) != 0")
        if q.nothing:
            where.append("0")
        if q.text is not None or q.regex is not None:
            text = q.text.lower() if q.text is not None else None
            if text is not None and fts and len(text) >= 3 and q.regex is None:
                self._hits = self._fts_hits(text)
                where.append(f"f.tkey IN (SELECT k FROM temp.{self._hits})")
            else:
                join = " JOIN texts t ON t.rowid = f.tkey"
                if text is not None:
                    where.append("instr(lower(t.body), ?) > 0")
                    params.append(text)
                if q.regex is not None:
                    where.append("regexp(?, t.body)")
                    params.append(q.regex)
        cond = " AND ".join(where) or "1"
        self._sql = f"SELECT f.id FROM frames f{join} WHERE f.id >= ? AND f.id < ? AND {cond} ORDER BY f.id"
        self._params = params

    def _fts_hits(self, text: str) -> str:
        """Look the full-text hits up once, into a temporary table; return its name."""
        with self._lock:
            name = f"hits{next(_SEARCHES)}"
            self._con.execute(f"CREATE TEMP TABLE {name}(k INTEGER PRIMARY KEY)")
            phrase = '"' + text.replace('"', '""') + '"'
            self._con.execute(
                f"INSERT INTO temp.{name} SELECT rowid FROM texts WHERE texts MATCH ?", (phrase,)
            )
            return name

    def rows(self, start: int, stop: int) -> list[int]:
        """Ids of the matching rows in ``[start, stop)``, ascending."""
        with self._lock:
            cur = self._con.execute(self._sql, (start, stop, *self._params))
            return [r[0] for r in cur]

    def close(self) -> None:
        if self._hits is not None:
            with self._lock:
                self._con.execute(f"DROP TABLE IF EXISTS temp.{self._hits}")
            self._hits = None


def _regexp(pattern: str, body: str | None) -> bool:
    if body is None:
        return False
    compiled = _REGEX_CACHE.get(pattern)
    if compiled is None:
        compiled = _REGEX_CACHE[pattern] = re.compile(pattern)
        if len(_REGEX_CACHE) > 32:
            _REGEX_CACHE.pop(next(iter(_REGEX_CACHE)))
    return compiled.search(body) is not None


_REGEX_CACHE: dict[str, re.Pattern[str]] = {}
_SEARCHES = itertools.count(1)


def connect(location: str) -> sqlite3.Connection:
    con = sqlite3.connect(location, check_same_thread=False, isolation_level=None, timeout=10)
    # Autocommit mode: transactions are explicit (``BEGIN IMMEDIATE`` per batch).
    con.execute("PRAGMA journal_mode=WAL" if location != ":memory:" else "PRAGMA journal_mode=MEMORY")
    con.execute("PRAGMA synchronous=OFF")  # a cache: rebuilt if a crash damages it
    con.execute("PRAGMA cache_size=-16000")  # 16 MB
    con.create_function("regexp", 2, _regexp, deterministic=True)
    return con


def remove_index(location: str) -> None:
    for suffix in ("", "-wal", "-shm", "-journal"):
        with contextlib.suppress(FileNotFoundError):
            os.unlink(location + suffix)


def cache_dir() -> str:
    """Where indexes of recordings in unwritable directories go."""
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return os.path.join(base, "wsinspect", "index")
