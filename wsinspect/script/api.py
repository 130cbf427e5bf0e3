"""What a script sees: the ``DROP`` answer, the message a hook gets, what a hook's answer
means, and ``register_decoder`` for a protocol of the script's own (sans-IO: no sockets, no
Trio)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final

from wsinspect.wire.decoders import Decoder, register
from wsinspect.wire.sides import Direction

__all__ = ["DROP", "ScriptMessage", "answer_messages", "register_decoder"]


class _Drop:
    """``on_message`` returns this to drop the message."""

    __slots__ = ()

    def __repr__(self) -> str:
        return "DROP"


DROP: Final = _Drop()

@dataclass(frozen=True, slots=True)
class ScriptMessage:
    """One complete data message: ``direction`` is ``"c2s"`` or ``"s2c"``; ``text`` for a
    text message (``is_text``), ``data`` the bytes (inflated when it was compressed), at most
    the capture limit: ``length`` is the whole message's size, and ``complete`` says whether
    ``data`` is all of it (an answer built from a cut ``data`` replaces the whole message)."""

    direction: Direction
    is_text: bool
    data: bytes
    length: int = -1
    complete: bool = True

    def __post_init__(self) -> None:
        if self.length < 0:
            object.__setattr__(self, "length", len(self.data))

    @property
    def text(self) -> str:
        return self.data.decode("utf-8", "replace")


def answer_messages(answer: object) -> list[tuple[int, bytes]] | None:
    """What an answer sends: ``None`` for "as it came", else the ``(opcode, payload)`` of each
    message (``[]`` drops it). ``TypeError`` for an answer that means nothing."""
    if answer is None:
        return None
    if answer is DROP:
        return []
    items = answer if isinstance(answer, list | tuple) else [answer]
    out = []
    for item in items:
        if isinstance(item, str):
            out.append((1, item.encode()))
        elif isinstance(item, bytes | bytearray | memoryview):
            out.append((2, bytes(item)))
        else:
            raise TypeError(
                f"on_message returned {type(item).__name__}: return None, a str, bytes, "
                "DROP or a list of str/bytes")
    return out


def register_decoder(decoder: Decoder) -> Decoder:
    """Make a script's own decoder known (docs/decoders.md): ``--decode NAME`` can name it, its
    ``subprotocols`` and ``recognises`` choose it for new connections, the TUI lists it. Call
    it at the script's top level; loading the script again replaces the previous version
    (same ``name``). Returns ``decoder``, so it can decorate an instance's creation."""
    for attr in ("name", "filter_prefix", "subprotocols", "recognises", "start", "field_matches"):
        if not hasattr(decoder, attr):
            raise TypeError(f"register_decoder: {type(decoder).__name__} has no {attr!r} "
                            "(see wsinspect.wire.decoders.Decoder)")
    register(decoder, replace=True)
    return decoder
