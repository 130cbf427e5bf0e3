"""Decoders of the application protocols carried in WebSocket messages, sans-IO.

A decoder turns a data message into a ``Decoded`` view: a one-line ``summary``
(``socket.io event "chat" ns=/ ack=3``), the ``fields`` filters match on (``event``, ``op``,
``dest``, ``topic``...), and the decoded ``body`` for the detail pane. Decoding never touches
the wire: it runs in the consumers of events (the TUI store, ``cat``, ``stats``, the JSON log),
never in the relay, and a message that does not parse as its protocol gives a ``Decoded`` with
``error`` set (shown raw, with the reason).

Which decoder a connection gets is decided once, when it opens, by :class:`Decoding`: an explicit
rule (``--decode NAME[:PATH_REGEX]``, the config file, or a choice made in the TUI) first, then
the negotiated subprotocol (``graphql-transport-ws``, ``v12.stomp``, ``mqtt``...), then the
handshake's look (``EIO=4`` in a Socket.IO path's query). Protocols that need the connection's
earlier messages (Socket.IO's binary attachments, MQTT packets split across messages) keep that
in the per-connection state their ``start`` returns.

To add a protocol: write a :class:`Decoder` and :func:`register` it (user scripts may too).
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any, Protocol

from wsinspect.wire.sides import Direction

__all__ = [
    "DecodeRule",
    "Decoded",
    "Decoder",
    "Decoding",
    "Handshake",
    "MessageDecoder",
    "decoder_for_prefix",
    "decoder_names",
    "equal_field",
    "get_decoder",
    "parse_rule",
    "register",
]

#: A field value a filter can match: text or a number (``sio:event=chat``, ``mqtt:qos=1``).
FieldValue = str | int | float | bool


@dataclass(frozen=True, slots=True)
class Decoded:
    """One message as its protocol sees it.

    ``protocol`` names the decoder (``socket.io``); ``kind`` the message type within it
    (``event``, ``subscribe``, ``SEND``, ``call``, ``PUBLISH``); ``summary`` is the one line the
    frames table, ``cat`` and the log show; ``fields`` are what filters match
    (``sio:event=chat`` looks for ``fields["event"] == "chat"``) and what ``stats`` counts;
    ``body`` is the decoded structure (JSON-able: dicts, lists, text, numbers) shown in the
    detail pane. ``error`` says why the message is not a valid message of the protocol (it is
    then shown raw; ``summary`` says so too). ``continued`` marks a message that is part of a
    larger unit still incomplete (a Socket.IO packet waiting for its binary attachments, an
    MQTT packet split across messages): it has no summary of its own yet.
    """

    protocol: str
    kind: str
    summary: str
    fields: dict[str, FieldValue] = field(default_factory=dict)
    body: Any = None
    error: str | None = None
    continued: bool = False

    def to_dict(self) -> dict[str, Any]:
        """The JSON form: ``"decoded"`` on message lines of ``--log-format json`` and ``cat``."""
        d: dict[str, Any] = {"protocol": self.protocol, "kind": self.kind, "summary": self.summary}
        if self.fields:
            d["fields"] = self.fields
        if self.body is not None:
            d["body"] = self.body
        if self.error is not None:
            d["error"] = self.error
        if self.continued:
            d["continued"] = True
        return d


@dataclass(frozen=True, slots=True)
class Handshake:
    """What a decoder may look at to recognise its protocol: the client's request target (path
    and query) and the negotiated subprotocol."""

    path: str
    subprotocol: str | None = None


class MessageDecoder(Protocol):
    """The per-connection state of a decoder: ``decode`` is called with every data message of
    the connection, both directions, in the order they were seen."""

    def decode(self, direction: Direction, opcode: int, payload: bytes) -> Decoded: ...


class Decoder(Protocol):
    """A protocol: ``name`` (what ``--decode`` uses), ``filter_prefix`` (what filters use:
    ``sio`` in ``sio:event=chat``), the ``subprotocols`` that select it, ``recognises(handshake)``
    for traffic recognisable by its handshake alone, ``start(handshake)`` for a new connection's
    state, and ``field_matches(decoded, key, value)`` for a filter's ``key=value`` (equality of
    the text forms, unless the protocol knows better: MQTT topic wildcards)."""

    name: str
    filter_prefix: str
    subprotocols: tuple[str, ...]

    def recognises(self, handshake: Handshake) -> bool: ...

    def start(self, handshake: Handshake) -> MessageDecoder: ...

    def field_matches(self, decoded: Decoded, key: str, value: str) -> bool: ...


def equal_field(decoded: Decoded, key: str, value: str) -> bool:
    """The usual ``field_matches``: the field is there and its text form is ``value``
    (booleans as ``true``/``false``)."""
    if key not in decoded.fields:
        return False
    have = decoded.fields[key]
    text = ("true" if have else "false") if isinstance(have, bool) else str(have)
    return text == value


_REGISTRY: dict[str, Decoder] = {}


def register(decoder: Decoder, *, replace: bool = False) -> None:
    """Make ``decoder`` available by its name (``ValueError`` for a name taken, unless
    ``replace``)."""
    if decoder.name in _REGISTRY and not replace:
        raise ValueError(f"a decoder named {decoder.name!r} is already registered")
    _REGISTRY[decoder.name] = decoder


def get_decoder(name: str) -> Decoder:
    """The registered decoder ``name``; ``KeyError`` naming the known ones."""
    _load_builtins()
    try:
        return _REGISTRY[name]
    except KeyError:
        raise KeyError(f"unknown decoder {name!r} (known: {', '.join(decoder_names())})") from None


def decoder_names() -> list[str]:
    _load_builtins()
    return sorted(_REGISTRY)


_BUILTINS: list[str] = ["socketio", "graphql_ws", "stomp", "jsonrpc", "mqtt", "protobuf"]  # module names under wsinspect.wire.decoders, imported on first use


def _load_builtins() -> None:
    while _BUILTINS:
        __import__(f"wsinspect.wire.decoders.{_BUILTINS.pop()}")


@dataclass(frozen=True, slots=True)
class DecodeRule:
    """``--decode NAME[:PATH_REGEX]``: decode with ``name`` the connections whose request target
    matches ``path`` (every connection when ``None``)."""

    name: str
    path: re.Pattern[str] | None = None

    def applies(self, handshake: Handshake) -> bool:
        return self.path is None or self.path.search(handshake.path) is not None


def parse_rule(text: str) -> DecodeRule:
    """``NAME`` or ``NAME:PATH_REGEX``; ``ValueError`` saying what is wrong (an unknown name, a
    bad regex)."""
    name, sep, pattern = text.partition(":")
    name = name.strip()
    get_decoder(name)  # raises for an unknown name
    if not sep:
        return DecodeRule(name)
    try:
        return DecodeRule(name, re.compile(pattern))
    except re.error as exc:
        raise ValueError(f"--decode {text!r}: bad path regex ({exc})") from None


class Decoding:
    """The decoders of the connections a consumer sees: ``opened`` chooses one per connection,
    ``message`` decodes, ``closed`` forgets. ``rules`` come first, in order; then the
    subprotocol, then recognition; ``auto=False`` keeps to the rules. ``choose`` changes a
    connection's decoder at run time (``None``: raw), for the messages that follow."""

    def __init__(self, rules: Iterable[DecodeRule] = (), *, auto: bool = True) -> None:
        self.rules = list(rules)
        self.auto = auto
        self._conns: dict[int, tuple[Decoder, MessageDecoder] | None] = {}
        self._handshakes: dict[int, Handshake] = {}

    def select(self, handshake: Handshake) -> Decoder | None:
        """The decoder a connection with this handshake gets (``None``: none)."""
        for rule in self.rules:
            if rule.applies(handshake):
                return get_decoder(rule.name)
        if not self.auto:
            return None
        _load_builtins()
        sub = (handshake.subprotocol or "").lower()
        if sub:
            for decoder in _REGISTRY.values():
                if sub in decoder.subprotocols:
                    return decoder
        for decoder in _REGISTRY.values():
            if decoder.recognises(handshake):
                return decoder
        return None

    def opened(self, conn: int, path: str, subprotocol: str | None) -> Decoder | None:
        handshake = Handshake(path, subprotocol)
        self._handshakes[conn] = handshake
        decoder = self.select(handshake)
        self._conns[conn] = (decoder, decoder.start(handshake)) if decoder is not None else None
        return decoder

    def choose(self, conn: int, name: str | None) -> None:
        """Decode connection ``conn``'s next messages with ``name`` (``None``: not at all)."""
        handshake = self._handshakes.get(conn, Handshake("/"))
        decoder = get_decoder(name) if name is not None else None
        self._conns[conn] = (decoder, decoder.start(handshake)) if decoder is not None else None

    def decoder_of(self, conn: int) -> Decoder | None:
        entry = self._conns.get(conn)
        return entry[0] if entry is not None else None

    def message(self, conn: int, direction: Direction, opcode: int, payload: bytes) -> Decoded | None:
        """The decoded view of a data message (``None`` when its connection has no decoder).
        A decoder that raises is a bug in it, not in the message: the view says so, and the
        connection's next messages are tried again."""
        entry = self._conns.get(conn)
        if entry is None:
            return None
        decoder, state = entry
        try:
            return state.decode(direction, opcode, payload)
        except Exception as exc:  # a decoder's bug must never break a view
            return Decoded(decoder.name, "error", f"{decoder.name}: cannot decode ({exc!r})",
                           error=f"decoder failed: {exc!r}")

    def closed(self, conn: int) -> None:
        self._conns.pop(conn, None)
        self._handshakes.pop(conn, None)


def decoder_for_prefix(prefix: str) -> Decoder | None:
    """The decoder whose filter prefix is ``prefix`` (``sio``), if any."""
    _load_builtins()
    return next((d for d in _REGISTRY.values() if d.filter_prefix == prefix), None)
