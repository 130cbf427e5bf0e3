"""One module per subcommand; each has ``configure(parser)`` and ``run(args) -> int``.

Modules import their heavy dependencies (Textual, the relay) inside ``run`` so that
``wsinspect --help`` and light commands start fast.
"""

from __future__ import annotations


def is_interrupt(exc: BaseException) -> bool:
    """Whether ``exc`` is Ctrl-C: a ``KeyboardInterrupt``, or a group of nothing else (Trio
    delivers it inside a nursery's exception group when it lands in a child task)."""
    if isinstance(exc, BaseExceptionGroup):
        return all(is_interrupt(e) for e in exc.exceptions)
    return isinstance(exc, KeyboardInterrupt)
