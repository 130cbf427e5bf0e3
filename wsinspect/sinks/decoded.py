"""Decoding in the consumers of events: one ``Decoding`` per consumer, fed in event order.

The relay never decodes (docs/decoders.md): the JSON log, ``stats``, the TUI's store and
``wsinspect view`` each feed their own :class:`~wsinspect.wire.decoders.Decoding` with the
events they read, off the relay's hot path. :class:`EventDecoder` is that feeding, shared:
``ConnectionOpened`` chooses a connection's decoder, ``MessageSeen`` decodes (only for
connections that have one: the others cost one set lookup), ``ConnectionClosed`` forgets.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

from wsinspect.events import ConnectionClosed, ConnectionOpened, Event, MessageSeen
from wsinspect.wire.decoders import Decoded, Decoding, parse_rule

__all__ = ["MAIN_FIELDS", "EventDecoder", "decoded_json", "decoding_for", "main_field", "new_decoding"]

#: The field ``stats`` counts a decoder's messages by, when the decoder does not name one
#: (``main_field``): the first of these its ``Decoded.fields`` has.
MAIN_FIELDS = ("event", "operation", "dest", "destination", "topic", "method", "op", "type")


def new_decoding(rules: Sequence[str] = (), auto: bool = True) -> Decoding:
    """A ``Decoding`` for ``--decode`` rules (checked already: ``ValueError``/``KeyError``
    otherwise) and auto-detection on or off (``--no-decode``)."""
    return Decoding([parse_rule(r) for r in rules], auto=auto)


def decoding_for(settings: Any) -> Decoding | None:
    """The ``Decoding`` a consumer of ``settings`` (``Settings``, or parsed ``view``/``stats``
    arguments: ``decode`` and ``auto_decode``) uses; ``None`` when nothing can be decoded."""
    rules = tuple(getattr(settings, "decode", ()) or ())
    auto = bool(getattr(settings, "auto_decode", True))
    if not rules and not auto:
        return None
    return new_decoding(rules, auto)


def main_field(decoded: Decoded, decoder: object | None = None) -> str | None:
    """The field ``decoded`` is counted by: the decoder's ``main_field`` attribute if it has
    one, else the first of :data:`MAIN_FIELDS` present."""
    name = getattr(decoder, "main_field", None)
    if isinstance(name, str) and name in decoded.fields:
        return name
    return next((k for k in MAIN_FIELDS if k in decoded.fields), None)


def decoded_json(decoded: Decoded) -> str:
    """``Decoded.to_dict()`` as compact JSON (a body that is not JSON-able is written as text:
    a decoder's slip never breaks a log line)."""
    return json.dumps(decoded.to_dict(), ensure_ascii=False, separators=(",", ":"), default=str)


class EventDecoder:
    """Feeds a ``Decoding`` with events; ``feed`` answers a message's ``Decoded`` (``None``
    when its connection has no decoder, or for any other event)."""

    __slots__ = ("conns", "decoding")

    def __init__(self, decoding: Decoding) -> None:
        self.decoding = decoding
        self.conns: set[int] = set()  # connections with a decoder

    def feed(self, event: Event) -> Decoded | None:
        cls = event.__class__
        if cls is MessageSeen:
            assert isinstance(event, MessageSeen)
            if event.conn not in self.conns:
                return None
            m = event.message
            return self.decoding.message(event.conn, event.direction, m.opcode, m.payload)
        if cls is ConnectionOpened:
            assert isinstance(event, ConnectionOpened)
            if self.decoding.opened(event.conn, event.path, event.subprotocol) is not None:
                self.conns.add(event.conn)
            else:
                self.conns.discard(event.conn)
        elif cls is ConnectionClosed:
            self.conns.discard(event.conn)
            self.decoding.closed(event.conn)
        return None

    def message(self, conn: int, direction: Any, opcode: int, payload: bytes) -> Decoded | None:
        """Decode a message given by its parts (``stats`` reads one-frame messages without
        building their events)."""
        if conn not in self.conns:
            return None
        return self.decoding.message(conn, direction, opcode, payload)
