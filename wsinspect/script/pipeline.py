"""A message through the scripts' ``on_message``, in order (``--script`` repeated).

Each script sees what the scripts before it made of the message: a replacement is the message
the next ones get (each message of a list goes through the rest on its own), ``DROP`` ends it.
``None`` from every script leaves the message as it came. The proxy and the mock both use this;
an exception in a hook (or an answer that means nothing) is handed to ``failed`` and counts as
``None``.
"""

from __future__ import annotations

from collections.abc import Callable, Coroutine, Sequence
from typing import Any

from wsinspect.script.api import ScriptMessage, answer_messages
from wsinspect.script.loader import ScriptHooks, call_hook

__all__ = ["Failed", "NotReady", "through", "through_now"]

Failed = Callable[[ScriptHooks, BaseException], None]
Sent = list[tuple[int, bytes]]  # (opcode, payload) of each message to send instead


class NotReady(Exception):
    """``through_now``: a hook waited (an ``async`` one); use ``through``."""


async def through(hooks: Sequence[ScriptHooks], conn: Any, msg: ScriptMessage,
                  failed: Failed) -> Sent | None:
    """What the scripts send instead of ``msg`` (``[]``: nothing), or ``None``: as it came."""
    current = [msg]
    changed = False
    for h in hooks:
        fn = h.on_message
        if fn is None:
            continue
        out: list[ScriptMessage] = []
        for m in current:
            try:
                sent = answer_messages(await call_hook(fn, conn, m))
            except Exception as exc:
                failed(h, exc)
                sent = None
            if sent is None:
                out.append(m)
            else:
                changed = True
                out.extend(ScriptMessage(m.direction, opcode == 1, data) for opcode, data in sent)
        current = out
        if not current:
            break
    return [(1 if m.is_text else 2, m.data) for m in current] if changed else None


def through_now(hooks: Sequence[ScriptHooks], conn: Any, msg: ScriptMessage,
                failed: Failed) -> Sent | None:
    """``through`` without waiting, for plain hooks; ``NotReady`` if one of them waited."""
    coro: Coroutine[Any, Any, Sent | None] = through(hooks, conn, msg, failed)
    try:
        coro.send(None)
    except StopIteration as done:
        return done.value  # type: ignore[no-any-return]
    coro.close()
    raise NotReady
