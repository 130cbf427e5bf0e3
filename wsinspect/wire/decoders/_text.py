"""Small helpers shared by the text protocols' decoders (Socket.IO, GraphQL over WebSocket,
STOMP, JSON-RPC): text and JSON that never raise, a JSON-able description of bytes, and a
bounded memory of earlier messages (request ids, subscription ids)."""

from __future__ import annotations

import json
from collections import OrderedDict
from typing import Any, Generic, TypeVar

__all__ = ["Bounded", "describe_bytes", "parse_json", "text_of"]

K = TypeVar("K")
V = TypeVar("V")

#: How many bytes of an attachment or a binary body are shown in hex.
HEX_PREVIEW = 32


def text_of(payload: bytes) -> tuple[str, None] | tuple[None, str]:
    """``(text, None)`` for UTF-8 ``payload``, else ``(None, why)``."""
    try:
        return payload.decode("utf-8"), None
    except UnicodeDecodeError as exc:
        return None, f"not UTF-8 at byte {exc.start}"


def parse_json(text: str) -> tuple[Any, str | None]:
    """``(value, None)``, or ``(None, why)`` when ``text`` is not JSON (a truncated message is
    not JSON either)."""
    try:
        return json.loads(text), None
    except (ValueError, RecursionError) as exc:
        return None, f"bad JSON ({exc})" if isinstance(exc, ValueError) else "bad JSON (too deep)"


def describe_bytes(data: bytes) -> dict[str, Any]:
    """What the detail pane shows of binary data: its length and the first bytes in hex."""
    shown = data[:HEX_PREVIEW].hex()
    return {"bytes": len(data), "hex": shown + ("…" if len(data) > HEX_PREVIEW else "")}


class Bounded(Generic[K, V]):
    """A mapping that forgets its oldest entries past ``limit``: what a decoder remembers of a
    connection (a request's method by its id) stays bounded however long the connection lives."""

    def __init__(self, limit: int = 1024) -> None:
        self.limit = limit
        self._items: OrderedDict[K, V] = OrderedDict()

    def __len__(self) -> int:
        return len(self._items)

    def put(self, key: K, value: V) -> None:
        self._items[key] = value
        self._items.move_to_end(key)
        while len(self._items) > self.limit:
            self._items.popitem(last=False)

    def get(self, key: K) -> V | None:
        return self._items.get(key)

    def pop(self, key: K) -> V | None:
        return self._items.pop(key, None)
