"""JSON-RPC 2.0 over WebSocket, sans-IO.

A message is one JSON object or a batch (a non-empty array of them). An object with a
``method`` is a call (with an ``id``) or a notification (without); one with ``result`` or
``error`` is a response. Each must say ``"jsonrpc": "2.0"`` (JSON-RPC 2.0, section 4).
Requests go either way (a server may call its client), so a response is paired with the
request of the same ``id`` sent the other way; the connection remembers the last 1024 requests'
methods.

Fields: ``kind`` (``call``, ``notify``, ``result``, ``error``, ``batch``), ``method`` (of a
request, and of a response paired with its request), ``id``, ``code`` (of an error), ``count``
(of a batch). A filter on a batch matches any of its elements. Filter prefix ``rpc``:
``rpc:method=getUser``. Chosen by the subprotocols ``jsonrpc``, ``jsonrpc2.0``, ``json-rpc``,
or ``--decode jsonrpc``; never by the look of the traffic (plain JSON is too common).
"""

from __future__ import annotations

from typing import Any

from wsinspect.wire.decoders import Decoded, FieldValue, Handshake, equal_field, register
from wsinspect.wire.decoders._text import Bounded, parse_json, text_of
from wsinspect.wire.sides import OTHER, Direction

__all__ = ["JsonRpc", "JsonRpcConnection"]

PROTOCOL = "jsonrpc"

_IdKey = tuple[str, str, str]  # (direction of the request, type of the id, the id as text)


class _Bad(Exception):
    pass


def _id_key(direction: Direction, value: Any) -> _IdKey:
    return direction, type(value).__name__, str(value)


def _valid_id(value: Any) -> bool:
    return value is None or (isinstance(value, str | int | float) and not isinstance(value, bool))


class JsonRpcConnection:
    """One connection's decoder: the methods of the requests still waiting for a response."""

    def __init__(self) -> None:
        self._methods: Bounded[_IdKey, str] = Bounded(1024)

    def decode(self, direction: Direction, opcode: int, payload: bytes) -> Decoded:
        text, why = text_of(payload)
        if text is None:
            return _error(why or "")
        message, why = parse_json(text)
        if why is not None:
            return _error(why)
        try:
            if isinstance(message, list):
                return self._batch(direction, message)
            fields, summary = self._one(direction, message)
        except _Bad as exc:
            return _error(str(exc))
        return Decoded(PROTOCOL, str(fields["kind"]), f"{PROTOCOL} {summary}", fields, message)

    def _batch(self, direction: Direction, items: list[Any]) -> Decoded:
        if not items:
            raise _Bad("an empty batch")
        elements = []
        for n, item in enumerate(items):
            try:
                fields, summary = self._one(direction, item)
            except _Bad as exc:
                raise _Bad(f"batch element {n}: {exc}") from None
            elements.append({"fields": fields, "summary": summary, "message": item})
        shown = ", ".join(e["summary"] for e in elements[:3]) + (", …" if len(items) > 3 else "")
        fields_: dict[str, FieldValue] = {"kind": "batch", "count": len(items)}
        return Decoded(PROTOCOL, "batch", f"{PROTOCOL} batch of {len(items)}: {shown}", fields_,
                       {"batch": elements})

    def _one(self, direction: Direction, message: Any) -> tuple[dict[str, FieldValue], str]:
        """The fields and summary (without the protocol's name) of one object."""
        if not isinstance(message, dict):
            raise _Bad("not a JSON object")
        version = message.get("jsonrpc")
        if version != "2.0":
            raise _Bad("no \"jsonrpc\": \"2.0\"" if version is None else f"jsonrpc version {version!r}")
        has_id = "id" in message
        ident = message.get("id")
        if not _valid_id(ident):
            raise _Bad("an id that is not a string, a number or null")
        fields: dict[str, FieldValue] = {}
        if ident is not None:
            fields["id"] = ident
        if "method" in message:
            method = message["method"]
            if not isinstance(method, str):
                raise _Bad("a method that is not a string")
            fields["method"] = method
            if has_id:
                fields = {"kind": "call", **fields}
                self._methods.put(_id_key(direction, ident), method)
                return fields, f"call {method} id={_show(ident)}"
            fields = {"kind": "notify", **fields}
            return fields, f"notify {method}"
        if not has_id:
            raise _Bad("neither a method nor an id")
        if ("result" in message) == ("error" in message):
            raise _Bad("a response needs exactly one of result and error")
        method = self._methods.pop(_id_key(OTHER[direction], ident)) if ident is not None else None
        if method is not None:
            fields["method"] = method
        paired = f" ({method})" if method is not None else ""
        if "result" in message:
            return {"kind": "result", **fields}, f"result id={_show(ident)}{paired}"
        error = message["error"]
        if not isinstance(error, dict) or not isinstance(error.get("code"), int):
            raise _Bad("an error object without an integer code")
        fields = {"kind": "error", **fields, "code": error["code"]}
        reason = error.get("message")
        reason_text = f": {reason[:80]}" if isinstance(reason, str) else ""
        return fields, f"error {error['code']} id={_show(ident)}{paired}{reason_text}"


def _show(ident: Any) -> str:
    return "null" if ident is None else str(ident)


def _error(why: str) -> Decoded:
    return Decoded(PROTOCOL, "error", f"{PROTOCOL}: not a JSON-RPC 2.0 message ({why})", error=why)


class JsonRpc:
    """The JSON-RPC 2.0 decoder."""

    name = "jsonrpc"
    filter_prefix = "rpc"
    subprotocols: tuple[str, ...] = ("jsonrpc", "jsonrpc2.0", "json-rpc")

    def recognises(self, handshake: Handshake) -> bool:
        return False

    def start(self, handshake: Handshake) -> JsonRpcConnection:
        return JsonRpcConnection()

    def field_matches(self, decoded: Decoded, key: str, value: str) -> bool:
        if decoded.kind == "batch" and isinstance(decoded.body, dict) and key not in decoded.fields:
            items = decoded.body.get("batch", [])
            return any(equal_field(Decoded(PROTOCOL, "", "", e["fields"]), key, value) for e in items)
        return equal_field(decoded, key, value)


register(JsonRpc())
