"""Breakpoints: which messages stop before they are forwarded (sans-IO: no sockets, no Trio).

A breakpoint is written in the language of the TUI's ``/`` filter, as words separated by spaces
(``dir:c2s op:text re:^order``), or as ``KEY=VALUE`` pairs separated by commas, as ``--fault``
specs are (``dir=c2s,match=^order``). Every key narrows it; a breakpoint with none stops every
data message:

- ``dir`` — ``c2s`` (also ``>``, ``client``) or ``s2c`` (``<``, ``server``);
- ``conn`` — a connection number (``#3`` as a word);
- ``op`` — ``text``, ``binary`` or both (``op=text+binary``, ``op:text,binary``);
- ``match`` (``re``) — a regular expression searched in the message's text (binary messages:
  their bytes read as latin-1); compressed messages are matched on what they inflate to;
- ``text`` (any other word) — a case-insensitive substring of the message's text.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from wsinspect.wire.sides import Direction

__all__ = ["Breakpoint", "BreakpointError", "parse_breakpoint"]

_DIRECTIONS: dict[str, Direction] = {
    "c2s": "c2s", ">": "c2s", "→": "c2s", "client": "c2s",
    "s2c": "s2c", "<": "s2c", "←": "s2c", "server": "s2c",
}
_OPCODES = {"text": 1, "binary": 2, "1": 1, "2": 2}
_KEYS = frozenset({"dir", "conn", "op", "opcode", "match", "re", "text"})


class BreakpointError(ValueError):
    """A breakpoint that does not parse; ``str()`` says which part and why."""


@dataclass(frozen=True, slots=True)
class Breakpoint:
    """One breakpoint; ``id`` is given when it is armed (``0`` before)."""

    spec: str
    direction: Direction | None = None
    conn: int | None = None
    opcodes: frozenset[int] | None = None
    regex: re.Pattern[str] | None = None
    text: str | None = None  # lower case
    id: int = 0

    @property
    def reads_payload(self) -> bool:
        return self.regex is not None or self.text is not None

    def could_match(self, conn: int, direction: Direction, opcode: int) -> bool:
        """Whether a message of ``opcode`` on ``conn`` going ``direction`` may match (all but
        its payload is known from its first frame)."""
        return (
            (self.direction is None or self.direction == direction)
            and (self.conn is None or self.conn == conn)
            and (self.opcodes is None or opcode in self.opcodes)
        )

    def matches(self, conn: int, direction: Direction, opcode: int, payload: bytes) -> bool:
        if not self.could_match(conn, direction, opcode):
            return False
        if not self.reads_payload:
            return True
        text = payload.decode("utf-8", "replace") if opcode == 1 else payload.decode("latin-1")
        if self.regex is not None and self.regex.search(text) is None:
            return False
        return self.text is None or self.text in text.lower()

    def to_dict(self) -> dict[str, object]:
        return {
            "id": self.id,
            "spec": self.spec,
            "dir": self.direction,
            "conn": self.conn,
            "op": sorted(self.opcodes) if self.opcodes is not None else None,
            "match": self.regex.pattern if self.regex is not None else None,
            "text": self.text,
        }


def _pairs(spec: str) -> list[tuple[str, str]]:
    """``(key, value)`` per part; a bare word is ``("", word)``."""
    if "=" in spec:
        parts = [p.strip() for p in spec.split(",")]
        if any(not p for p in parts):
            raise BreakpointError(f"{spec!r}: an empty part between commas")
        out = []
        for part in parts:
            key, sep, value = part.partition("=")
            if not sep:
                raise BreakpointError(f"{part!r}: expected KEY=VALUE (dir, conn, op, match, text)")
            out.append((key.strip().lower(), value.strip()))
        return out
    out = []
    for word in spec.split():
        if word in _DIRECTIONS and len(word) == 1:
            out.append(("dir", word))
        elif word.startswith("#") and word[1:].isdigit():
            out.append(("conn", word[1:]))
        else:
            key, sep, value = word.partition(":")
            known = sep and key.lower() in _KEYS  # (as in the filter: other words are text)
            out.append((key.lower(), value) if known else ("", word))
    return out


def parse_breakpoint(spec: str) -> Breakpoint:
    """Parse a breakpoint (see the module's doc); ``BreakpointError`` says what is wrong."""
    spec = spec.strip()
    direction: Direction | None = None
    conn: int | None = None
    opcodes: set[int] | None = None
    regex: re.Pattern[str] | None = None
    words: list[str] = []
    for key, value in _pairs(spec):
        if key == "dir":
            if value.lower() not in _DIRECTIONS:
                raise BreakpointError(f"dir {value!r}: a direction is c2s or s2c")
            direction = _DIRECTIONS[value.lower()]
        elif key == "conn":
            try:
                conn = int(value.removeprefix("#"))
            except ValueError:
                raise BreakpointError(f"conn {value!r}: a connection is a number") from None
        elif key in ("op", "opcode"):
            opcodes = set()
            for name in re.split(r"[+,|]", value.lower()):
                if name not in _OPCODES:
                    raise BreakpointError(
                        f"op {name!r}: breakpoints stop data messages, text or binary")
                opcodes.add(_OPCODES[name])
        elif key in ("match", "re"):
            try:
                regex = re.compile(value)
            except re.error as exc:
                raise BreakpointError(f"match {value!r}: {exc}") from None
        elif key in ("text", ""):
            if value:
                words.append(value)
        else:
            raise BreakpointError(f"unknown key {key!r}: use dir, conn, op, match or text")
    text = " ".join(words).lower() or None
    return Breakpoint(spec, direction, conn, frozenset(opcodes) if opcodes else None, regex, text)
