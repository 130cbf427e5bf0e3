"""Fault specifications: the compact ``--fault`` syntax and the ``[[fault]]`` TOML tables.

One syntax for flags, ``wsinspect ctl fault add`` and the config file::

    KIND[:KEY=VALUE[,KEY=VALUE]...]

    latency:dir=s2c,ms=200,jitter=50
    drop:dir=c2s,match=^ping,p=0.5
    close-after:seconds=30,code=4000,reason="server restart"

A value containing a comma is quoted (``"..."`` or ``'...'``); a boolean key alone means true
(``cut-after:bytes=64k,rst``). In TOML the same keys live in a table with ``kind``::

    [[fault]]
    kind = "latency"
    dir = "s2c"
    ms = 200

Keys every kind takes: ``p`` (probability 0..1 that the fault acts on a frame, message,
connection or handshake; default 1), ``path`` and ``origin`` (regular expressions searched in the
request path with its query, and in the ``Origin`` header: the fault applies only to
connections that match). Frame-level kinds also take ``dir`` (``c2s``, ``s2c`` or ``both``,
the default); message-level kinds take ``match``, a regular expression searched in the payload
of each data message (bytes; text payloads are UTF-8).
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

__all__ = [
    "FAULT_KINDS",
    "IDLE_ACTIONS",
    "FaultSpec",
    "fault_help",
    "parse_fault",
    "parse_idle_action",
    "parse_size",
]

# kind → (keys it takes besides the common ones, one-line description)
_COMMON = ("p", "path", "origin")
_DIR = ("dir",)
FAULT_KINDS: dict[str, tuple[tuple[str, ...], str]] = {
    "latency": ((*_DIR, "ms", "jitter"), "hold each frame ms (± jitter) before sending it; order kept"),
    "throttle": ((*_DIR, "rate"), "send at most rate bytes/s (64k, 1m...)"),
    "refragment": ((*_DIR, "size", "match"), "re-send data messages as frames of size bytes"),
    "drop": ((*_DIR, "match"), "drop data messages (p, match) — not delivered"),
    "duplicate": ((*_DIR, "match"), "send data messages twice"),
    "swallow-pongs": (_DIR, "drop pong frames"),
    "delay-close": ((*_DIR, "ms"), "hold close frames ms before passing them on"),
    "never-close": (_DIR, "drop close frames: the closing handshake never completes"),
    "close-after": (
        (*_DIR, "seconds", "messages", "match", "code", "reason"),
        "close both sides with code after seconds, or after messages data messages",
    ),
    "cut-after": ((*_DIR, "bytes", "rst"), "end both TCP connections (FIN, or RST with rst) "
                  "once bytes have been forwarded"),
    "refuse": (("status", "body"), "answer the handshake with status (default 503); the "
               "upstream is never contacted"),
    "delay-handshake": (("ms",), "wait ms before connecting upstream"),
}

_REQUIRED = {
    "latency": ("ms",),
    "throttle": ("rate",),
    "refragment": ("size",),
    "delay-close": ("ms",),
    "cut-after": ("bytes",),
    "delay-handshake": ("ms",),
}

HANDSHAKE_KINDS = frozenset({"refuse", "delay-handshake"})


def parse_size(value: object) -> int:
    """``65536``, ``64k``, ``1m``, ``2MiB`` → bytes (``ValueError`` if bad or negative)."""
    if isinstance(value, bool):
        raise ValueError("expected a size such as 65536 or 64k")
    if isinstance(value, int):
        n = value
    else:
        t = str(value).strip().lower().removesuffix("ib").removesuffix("b")
        mult = {"k": 1 << 10, "m": 1 << 20, "g": 1 << 30}.get(t[-1:], 1)
        if mult != 1:
            t = t[:-1]
        try:
            n = int(float(t) * mult)
        except ValueError:
            raise ValueError(f"{value!r} is not a size (65536, 64k, 1m)") from None
    if n < 0:
        raise ValueError("must not be negative")
    return n


def _number(value: object, *, allow_inf: bool = False) -> float:
    if isinstance(value, bool):
        raise ValueError("expected a number")
    try:
        n = float(value)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        raise ValueError(f"{value!r} is not a number") from None
    if math.isnan(n) or n < 0 or (math.isinf(n) and not allow_inf):
        raise ValueError(f"{value!r} must be a finite number ≥ 0")
    return n


def _boolean(value: object) -> bool:
    if isinstance(value, bool):
        return value
    text = str(value).strip().lower()
    if text in ("1", "true", "yes", "on"):
        return True
    if text in ("0", "false", "no", "off"):
        return False
    raise ValueError(f"{value!r} is not true or false")


def _regex(value: object, *, binary: bool) -> str:
    text = str(value)
    try:
        re.compile(text.encode() if binary else text)
    except re.error as exc:
        raise ValueError(f"bad regular expression {text!r}: {exc}") from None
    return text


@dataclass(frozen=True, slots=True)
class FaultSpec:
    """One fault as configured. Unused parameters keep their defaults; ``str(spec)`` gives the
    canonical ``--fault`` text."""

    kind: str
    direction: str = "both"
    p: float = 1.0
    path: str | None = None
    origin: str | None = None
    match: str | None = None
    ms: float = 0.0
    jitter: float = 0.0
    rate: int = 0
    size: int = 0
    seconds: float | None = None
    messages: int | None = None
    code: int = 1001
    reason: str = ""
    nbytes: int = 0  # key "bytes"
    rst: bool = False
    status: int = 503
    body: str = ""
    given: tuple[str, ...] = field(default=(), compare=False)  # keys set, for __str__

    # ---- construction -------------------------------------------------------------------
    @classmethod
    def from_mapping(cls, kind: object, values: Mapping[str, object]) -> FaultSpec:
        """Build from key/values (strings from a flag, typed values from TOML).

        ``ValueError`` whose message starts with the offending key (``ms: must be...``)."""
        if not isinstance(kind, str) or kind not in FAULT_KINDS:
            raise ValueError(f"kind: unknown fault {kind!r} (one of {', '.join(FAULT_KINDS)})")
        allowed = set(FAULT_KINDS[kind][0]) | set(_COMMON)
        out: dict[str, Any] = {"kind": kind}
        for key, value in values.items():
            if key not in allowed:
                raise ValueError(
                    f"{key}: {kind} takes no {key!r} (it takes {', '.join(sorted(allowed))})"
                )
            try:
                out[_FIELD.get(key, key)] = _convert(key, value)
            except ValueError as exc:
                raise ValueError(f"{key}: {exc}") from None
        for key in _REQUIRED.get(kind, ()):
            if key not in values:
                raise ValueError(f"{key}: {kind} needs {key}=...")
        if kind == "close-after" and ("seconds" in values) == ("messages" in values):
            raise ValueError("seconds: close-after needs exactly one of seconds=... or messages=...")
        if kind == "refragment" and out.get("size", 1) < 1:
            raise ValueError("size: must be at least 1")
        if kind == "throttle" and out.get("rate", 1) < 1:
            raise ValueError("rate: must be at least 1 byte/s")
        return cls(**out, given=tuple(values))

    # ---- queries ------------------------------------------------------------------------
    @property
    def level(self) -> str:
        """``handshake``, ``session`` (timers and counters) or ``frame``."""
        if self.kind in HANDSHAKE_KINDS:
            return "handshake"
        return "frame"

    def applies_to(self, direction: str) -> bool:
        return self.direction in ("both", direction)

    def matches_connection(self, path: str, origin: str | None) -> bool:
        """Whether the connection's request path (with query) and Origin satisfy ``path=`` and
        ``origin=``. A connection without Origin never matches an ``origin=`` filter."""
        if self.path is not None and not re.search(self.path, path):
            return False
        return not (self.origin is not None and (origin is None or not re.search(self.origin, origin)))

    def matches_payload(self, payload: bytes) -> bool:
        return self.match is None or re.search(self.match.encode(), payload) is not None

    def __str__(self) -> str:
        parts = []
        for key in self.given:
            value = getattr(self, _FIELD.get(key, key))
            if isinstance(value, bool):
                parts.append(key if value else f"{key}=false")
                continue
            if isinstance(value, float) and value.is_integer():
                value = int(value)
            text = str(value)
            if any(c in text for c in ",\"' ") or text == "":
                quote = "'" if '"' in text else '"'
                text = f"{quote}{text}{quote}"
            parts.append(f"{key}={text}")
        return self.kind + (":" + ",".join(parts) if parts else "")


_FIELD = {"dir": "direction", "bytes": "nbytes"}


def _convert(key: str, value: object) -> object:
    if key == "dir":
        if value not in ("c2s", "s2c", "both"):
            raise ValueError(f"{value!r}: expected c2s, s2c or both")
        return value
    if key == "p":
        p = _number(value)
        if p > 1:
            raise ValueError(f"{value!r}: a probability is between 0 and 1")
        return p
    if key in ("path", "origin"):
        return _regex(value, binary=False)
    if key == "match":
        return _regex(value, binary=True)
    if key in ("ms", "jitter", "seconds"):
        return _number(value, allow_inf=key == "ms")
    if key in ("rate", "size", "bytes"):
        return parse_size(value)
    if key in ("messages", "code", "status"):
        if isinstance(value, bool):
            raise ValueError("expected an integer")
        try:
            n = int(str(value))
        except ValueError:
            raise ValueError(f"{value!r} is not an integer") from None
        if key == "messages" and n < 1:
            raise ValueError("must be at least 1")
        if key == "code" and not (1000 <= n <= 4999 and n not in (1004, 1005, 1006, 1015)):
            raise ValueError(f"{n} is not a close code a peer may send (RFC 6455 §7.4)")
        if key == "status" and not 200 <= n <= 599:
            raise ValueError(f"{n} is not an HTTP status (200-599)")
        return n
    if key == "rst":
        return _boolean(value)
    if key in ("reason", "body"):
        text = str(value)
        if key == "reason" and len(text.encode()) > 123:
            raise ValueError("a close reason is at most 123 bytes (RFC 6455 §5.5)")
        return text
    raise ValueError(f"unknown key {key!r}")  # pragma: no cover - guarded by from_mapping


def _split(text: str) -> list[str]:
    """Split ``a=1,b="x,y",c`` on commas outside quotes; quotes are removed."""
    items: list[str] = []
    cur: list[str] = []
    quote = ""
    for ch in text:
        if quote:
            if ch == quote:
                quote = ""
            else:
                cur.append(ch)
        elif ch in "\"'":
            quote = ch
        elif ch == ",":
            items.append("".join(cur))
            cur = []
        else:
            cur.append(ch)
    if quote:
        raise ValueError(f"unclosed {quote} quote")
    items.append("".join(cur))
    return items


def parse_fault(text: str) -> FaultSpec:
    """Parse the ``--fault`` syntax; ``ValueError`` saying what is wrong and where."""
    kind, sep, rest = text.strip().partition(":")
    values: dict[str, str | bool] = {}
    if sep and rest.strip():
        for item in _split(rest):
            item = item.strip()
            if not item:
                continue
            key, eq, value = item.partition("=")
            key = key.strip()
            if key in values:
                raise ValueError(f"fault {text!r}: {key} given twice")
            values[key] = value if eq else True
    try:
        return FaultSpec.from_mapping(kind.strip(), values)
    except ValueError as exc:
        raise ValueError(f"fault {text!r}: {exc}") from None


def fault_help() -> str:
    """The fault reference shown in ``--help``."""
    lines = ["fault kinds (--fault KIND:KEY=VALUE,...; every kind also takes p=, path=, origin=):"]
    for kind, (keys, text) in FAULT_KINDS.items():
        lines.append(f"  {kind} [{', '.join(keys)}]\n      {text}")
    return "\n".join(lines)


IDLE_ACTIONS = ("close-tcp", "reset", "close-frame", "blackhole")


def parse_idle_action(text: str) -> tuple[str, int]:
    """``close-tcp``, ``reset``, ``blackhole``, ``close-frame`` or ``close-frame:4000`` →
    ``(action, close code)``; ``ValueError`` if bad."""
    name, sep, code_text = text.strip().partition(":")
    if name not in IDLE_ACTIONS:
        raise ValueError(f"{text!r}: expected one of close-tcp, reset, close-frame[:CODE], blackhole")
    code = 1001
    if sep:
        if name != "close-frame":
            raise ValueError(f"{text!r}: only close-frame takes a :CODE")
        if not code_text.isdigit():
            raise ValueError(f"{text!r}: the close code must be a number")
        code = int(code_text)
        if not (1000 <= code <= 4999) or code in (1004, 1005, 1006, 1015):
            raise ValueError(f"{text!r}: {code} is not a close code a peer may send (RFC 6455 §7.4)")
    return name, code
