"""GraphQL over WebSocket, sans-IO: ``graphql-transport-ws`` (the graphql-ws library's
protocol) and the legacy ``graphql-ws`` (Apollo's subscriptions-transport-ws).

Every message is a JSON object with a ``type``: ``connection_init``, ``connection_ack``,
``ping``, ``pong``, ``subscribe``, ``next``, ``error``, ``complete`` in ``graphql-transport-ws``;
``connection_init``, ``connection_ack``, ``connection_error``, ``connection_terminate``, ``ka``,
``start``, ``data``, ``error``, ``complete``, ``stop`` in ``graphql-ws``. Which set applies
follows the negotiated subprotocol (both, when chosen by ``--decode graphql``).

The operation's name comes from ``payload.operationName``, else from the query's first
``query|mutation|subscription NAME``; the connection remembers it by the operation's ``id``
(bounded), so that results (``next``, ``data``), errors and completions name it too.

Fields: ``type`` and ``op`` (both the message type: ``gql:op=subscribe``), ``id``,
``operation`` (the GraphQL operation name), ``operation_type`` (``query``, ``mutation``,
``subscription``). A filter ``gql:op=VALUE`` matches the message type *or* the operation name
(``gql:op=OnMessage`` finds its subscribe, results and completion). Filter prefix ``gql``.
"""

from __future__ import annotations

import re
from typing import Any

from wsinspect.wire.decoders import Decoded, FieldValue, Handshake, equal_field, register
from wsinspect.wire.decoders._text import Bounded, parse_json, text_of
from wsinspect.wire.sides import Direction

__all__ = ["GraphQLConnection", "GraphQLWS"]

PROTOCOL = "graphql"
TRANSPORT_WS = "graphql-transport-ws"
LEGACY_WS = "graphql-ws"
TYPES = {
    TRANSPORT_WS: frozenset({"connection_init", "connection_ack", "ping", "pong", "subscribe",
                             "next", "error", "complete"}),
    LEGACY_WS: frozenset({"connection_init", "connection_ack", "connection_error",
                          "connection_terminate", "ka", "start", "data", "error", "complete",
                          "stop"}),
}
STARTS = frozenset({"subscribe", "start"})  # the messages that carry an operation
ENDS = frozenset({"complete", "stop"})
_OPERATION = re.compile(r"\b(query|mutation|subscription)\b\s*([_A-Za-z][_0-9A-Za-z]*)?")


def operation_of(payload: Any) -> tuple[str | None, str | None]:
    """``(name, type)`` of the operation in a subscribe/start payload, each ``None`` when not
    found: ``payload.operationName``, else the query's first ``query|mutation|subscription
    NAME`` (an anonymous ``{ ... }`` query is a ``query`` with no name)."""
    if not isinstance(payload, dict):
        return None, None
    name = payload.get("operationName")
    name = name if isinstance(name, str) and name else None
    query = payload.get("query")
    if not isinstance(query, str):
        return name, None
    if query.lstrip().startswith("{"):
        return name, "query"
    match = _OPERATION.search(query)
    if match is None:
        return name, None
    return name or match.group(2), match.group(1)


def _error(why: str) -> Decoded:
    return Decoded(PROTOCOL, "error", f"{PROTOCOL}: not a GraphQL over WebSocket message ({why})",
                   error=why)


def _first_error(payload: Any) -> str | None:
    """The first error message of an ``error`` payload (a list of errors, or one object)."""
    first = payload[0] if isinstance(payload, list) and payload else payload
    if isinstance(first, dict) and isinstance(first.get("message"), str):
        return str(first["message"])
    return None


class GraphQLConnection:
    """One connection's decoder: the operations' names by id, while they run."""

    def __init__(self, subprotocol: str | None = None) -> None:
        self.subprotocol = subprotocol if subprotocol in TYPES else None
        self.types = TYPES[self.subprotocol] if self.subprotocol else TYPES[TRANSPORT_WS] | TYPES[LEGACY_WS]
        self._operations: Bounded[str, tuple[str | None, str | None]] = Bounded(1024)

    def decode(self, direction: Direction, opcode: int, payload: bytes) -> Decoded:
        text, why = text_of(payload)
        if text is None:
            return _error(why or "")
        message, why = parse_json(text)
        if why is not None:
            return _error(why)
        if not isinstance(message, dict):
            return _error("not a JSON object")
        kind = message.get("type")
        if not isinstance(kind, str):
            return _error("no string 'type'")
        if kind not in self.types:
            return _error(f"unknown message type {kind!r}")
        fields: dict[str, FieldValue] = {"type": kind, "op": kind}
        words = [PROTOCOL, kind]
        op_id = message.get("id")
        if isinstance(op_id, str | int) and not isinstance(op_id, bool):
            fields["id"] = op_id
            words.append(f"id={op_id}")
            key = str(op_id)
            if kind in STARTS:
                name, op_type = operation_of(message.get("payload"))
                self._operations.put(key, (name, op_type))
            else:
                name, op_type = self._operations.get(key) or (None, None)
                if kind in ENDS:
                    self._operations.pop(key)
            if name is not None:
                fields["operation"] = name
                words.append(f"op={name}")
            if op_type is not None:
                fields["operation_type"] = op_type
        elif kind in STARTS or kind in ("next", "data"):
            return _error(f"a {kind} message without an id")
        if kind in ("error", "connection_error"):
            reason = _first_error(message.get("payload"))
            if reason is not None:
                words.append(f"- {reason[:80]}")
        elif kind in ("next", "data"):
            result = message.get("payload")
            if isinstance(result, dict) and result.get("errors"):
                words.append(f"- {len(result['errors'])} error(s)"
                             if isinstance(result["errors"], list) else "- errors")
        body = dict(message)
        if self.subprotocol:
            body["subprotocol"] = self.subprotocol
        return Decoded(PROTOCOL, kind, " ".join(words), fields, body)


class GraphQLWS:
    """The GraphQL over WebSocket decoder: chosen by its subprotocols, or ``--decode graphql``."""

    name = "graphql"
    filter_prefix = "gql"
    subprotocols: tuple[str, ...] = (TRANSPORT_WS, LEGACY_WS)

    def recognises(self, handshake: Handshake) -> bool:
        return False  # the subprotocol says it; a path alone does not

    def start(self, handshake: Handshake) -> GraphQLConnection:
        return GraphQLConnection((handshake.subprotocol or "").lower() or None)

    def field_matches(self, decoded: Decoded, key: str, value: str) -> bool:
        if key == "op":
            return equal_field(decoded, "op", value) or equal_field(decoded, "operation", value)
        return equal_field(decoded, key, value)


register(GraphQLWS())
