"""The frames table's filter: the words of the filter bar (``dir:c2s op:text #3 re:^order
is:bad sio:event=chat ...``) parsed into a ``FrameFilter`` that says whether a row passes.

Plain Python, tested alone (``tests/tui/test_store.py``); the live store and the recording's
paged view both use it.
"""

from __future__ import annotations

import re
from collections import OrderedDict
from dataclasses import dataclass, replace

from wsinspect.events import FrameSeen, MessageAction, MessageSeen
from wsinspect.tui.decoded import DecodedSource, DecodedTerm, parse_decoded_term
from wsinspect.wire.frames import opcode_from_name
from wsinspect.wire.sides import Direction

__all__ = ["FilterError", "FrameFilter", "Messages", "Row"]

# (conn, direction, message_no) → the reassembled message
Messages = OrderedDict[tuple[int, str, int], MessageSeen]

# One line of the frames table: a frame, or something the proxy did to a message (held,
# resumed, edited, dropped, injected: ``MessageAction``), in the order they happened.
Row = FrameSeen | MessageAction


class FilterError(ValueError):
    """A filter query that does not parse; ``str()`` says which word and why."""


@dataclass(frozen=True, slots=True)
class FrameFilter:
    """Which frames the frames table shows.

    Parsed from the filter bar by :meth:`parse`; words are ANDed:

    - ``dir:c2s`` / ``dir:s2c`` (also ``>`` / ``<``): one direction;
    - ``op:text,binary`` (names or numbers): opcodes;
    - ``conn:3`` or ``#3``: one connection;
    - ``re:PATTERN``: a regular expression searched in the payload (text, or latin-1 for binary);
    - ``is:bad``: frames with violations or not delivered;
    - ``is:held``: messages a breakpoint holds now;
    - ``PREFIX:KEY=VALUE``, ``PREFIX:KIND``, ``PREFIX:``: decoded messages (``sio:event=chat``,
      ``gql:subscribe``, ``mqtt:topic=sensors/#``: ``tui.decoded.DecodedTerm``);
    - any other words: a case-insensitive substring of the payload.

    Action rows (``MessageAction``: held, edited, injected...) match on their connection,
    direction, opcode and payload; ``is:bad`` never matches them.
    """

    direction: Direction | None = None
    opcodes: frozenset[int] | None = None
    conn: int | None = None
    text: str | None = None
    regex: re.Pattern[str] | None = None
    marked: bool = False
    held: bool = False
    decoded: tuple[DecodedTerm, ...] = ()

    @property
    def is_trivial(self) -> bool:
        """True when only ``conn`` (or nothing) is set: no per-frame test needed."""
        return (
            self.direction is None
            and self.opcodes is None
            and self.text is None
            and self.regex is None
            and not self.marked
            and not self.held
            and not self.decoded
        )

    @classmethod
    def parse(cls, query: str) -> FrameFilter:
        direction: Direction | None = None
        opcodes: set[int] | None = None
        conn: int | None = None
        regex: re.Pattern[str] | None = None
        marked = False
        held = False
        words: list[str] = []
        terms: list[DecodedTerm] = []
        for word in query.split():
            key, sep, value = word.partition(":")
            key = key.lower() if sep else ""
            if word in (">", "<", "→", "←"):
                direction = "c2s" if word in (">", "→") else "s2c"
            elif key == "dir":
                aliases: dict[str, Direction] = {
                    "c2s": "c2s", ">": "c2s", "client": "c2s",
                    "s2c": "s2c", "<": "s2c", "server": "s2c",
                }
                if value.lower() not in aliases:
                    raise FilterError(f"{word!r}: direction is c2s or s2c")
                direction = aliases[value.lower()]
            elif key in ("op", "opcode"):
                opcodes = set()
                for name in value.split(","):
                    try:
                        opcodes.add(int(name, 0) if name[:1].isdigit() else opcode_from_name(name))
                    except ValueError:
                        raise FilterError(f"{word!r}: unknown opcode {name!r}") from None
            elif key == "conn" or (word.startswith("#") and word[1:].isdigit()):
                digits = value if key == "conn" else word[1:]
                try:
                    conn = int(digits)
                except ValueError:
                    raise FilterError(f"{word!r}: a connection is a number") from None
            elif key == "re":
                try:
                    regex = re.compile(value)
                except re.error as exc:
                    raise FilterError(f"{word!r}: {exc}") from None
            elif key == "is" and value in ("bad", "marked"):
                marked = True
            elif key == "is" and value == "held":
                held = True
            elif sep and (term := _decoded_term(key, value)) is not None:
                terms.append(term)
            else:
                words.append(word)
        text = " ".join(words).lower() or None
        return cls(
            direction,
            frozenset(opcodes) if opcodes is not None else None,
            conn,
            text,
            regex,
            marked,
            held,
            tuple(terms),
        )

    def with_conn(self, conn: int | None) -> FrameFilter:
        return replace(self, conn=conn)

    def matches(
        self, event: Row, messages: Messages | None = None, held: dict[int, MessageAction] | None = None,
        decoded: DecodedSource | None = None,
    ) -> bool:
        """Whether ``event`` passes. Text and regex search the frame's message when
        ``messages`` has it (so compressed frames match their inflated text, RFC 7692, and
        every fragment of a matching message matches), else the frame's own payload.
        ``held`` (the store's messages held now) answers ``is:held``; ``decoded`` (the store's
        decoded messages) the decoded words."""
        if self.conn is not None and event.conn != self.conn:
            return False
        if self.direction is not None and event.direction != self.direction:
            return False
        if type(event) is MessageAction:
            return not self.decoded and self._matches_action(event, held)
        assert isinstance(event, FrameSeen)
        if self.held:
            return False
        frame = event.frame
        if self.opcodes is not None and frame.opcode not in self.opcodes:
            return False
        if self.marked and event.delivered and not frame.violations:
            return False
        if self.text is not None or self.regex is not None:
            payload = frame.payload
            if messages is not None and frame.message_no:
                message = messages.get((event.conn, event.direction, frame.message_no))
                if message is not None:
                    payload = message.message.payload
            try:
                body = payload.decode("utf-8")
            except UnicodeDecodeError:
                body = payload.decode("latin-1")
            if self.text is not None and self.text not in body.lower():
                return False
            if self.regex is not None and self.regex.search(body) is None:
                return False
        if self.decoded:
            if decoded is None or not frame.message_no:
                return False
            found = decoded.get((event.conn, event.direction, frame.message_no))
            name = decoded.decoder_name(event.conn)
            return all(term.matches(found, name) for term in self.decoded)
        return True

    def _matches_action(self, event: MessageAction, held: dict[int, MessageAction] | None) -> bool:
        if self.opcodes is not None and event.opcode not in self.opcodes:
            return False
        if self.marked:
            return False
        if self.held and (event.action != "held" or held is None or event.held not in held):
            return False
        if self.text is not None or self.regex is not None:
            if event.opcode == 1:
                body = event.payload.decode("utf-8", "replace")
            else:
                body = event.payload.decode("latin-1")
            if self.text is not None and self.text not in body.lower():
                return False
            if self.regex is not None and self.regex.search(body) is None:
                return False
        return True


def _decoded_term(key: str, value: str) -> DecodedTerm | None:
    try:
        return parse_decoded_term(key, value)
    except ValueError as exc:
        raise FilterError(str(exc)) from None
