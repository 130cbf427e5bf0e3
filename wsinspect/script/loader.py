"""Loading a script file, and loading it again when it changes (sans-IO but for the file).

``ScriptFile(path).load()`` runs the file as a module of its own and keeps its hooks
(``on_open``, ``on_message``, ``on_close``, each plain or ``async``). ``refresh()`` loads it
again when its modification time changed: new connections get the new hooks, and a file that
does not load (a syntax error, an exception at import) keeps the previous hooks running; the
error says the file and the line. ``watch`` looks at the files twice a second, so an error is
said when the file is saved, not when the next connection opens.
"""

from __future__ import annotations

import inspect
import os
import sys
import traceback
import types
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import trio

__all__ = ["HOOK_NAMES", "ScriptError", "ScriptFile", "ScriptHooks", "call_hook",
           "script_traceback", "watch"]

HOOK_NAMES = ("on_open", "on_message", "on_close")
WATCH_EVERY = 0.5  # seconds between two looks at a script file's modification time


class ScriptError(Exception):
    """A script that cannot be loaded; ``str()`` is ``FILE:LINE: what``."""


@dataclass(frozen=True, slots=True)
class ScriptHooks:
    """The hooks one version of a script defines (``None`` where it defines none)."""

    name: str
    on_open: Callable[..., Any] | None = None
    on_message: Callable[..., Any] | None = None
    on_close: Callable[..., Any] | None = None

    @property
    def sync_on_message(self) -> bool:
        """``on_message`` is a plain function (it can decide without waiting)."""
        fn = self.on_message
        return fn is not None and not inspect.iscoroutinefunction(fn)


async def call_hook(fn: Callable[..., Any], *args: Any) -> Any:
    """Call a hook, plain or ``async``, and return what it returned."""
    result = fn(*args)
    if inspect.isawaitable(result):
        result = await result
    return result


def script_traceback(exc: BaseException) -> str:
    """``exc``'s traceback without wsinspect's own frames: what the script author needs."""
    package = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    frames = [f for f in traceback.extract_tb(exc.__traceback__)
              if not os.path.abspath(f.filename).startswith(package + os.sep)]
    lines = ["Traceback (most recent call last):\n", *traceback.format_list(frames),
             *traceback.format_exception_only(exc)]
    return "".join(lines).rstrip()


async def watch(files: Sequence[ScriptFile], report: Callable[[str, str], None]) -> None:
    """Load each file again as soon as it changes (every ``WATCH_EVERY`` seconds), until
    cancelled: ``report(level, text)`` says it was reloaded, or why it was not (the previous
    version stays)."""
    while True:
        await trio.sleep(WATCH_EVERY)
        for f in files:
            before = f.hooks
            error = f.refresh()
            if error is not None:
                report("warning", f"script reload failed: {error}")
            elif f.hooks is not before:
                report("info", f"script {f.path} reloaded: new connections use it")


def where(exc: BaseException, path: str) -> str:
    """``path:LINE: ExcType: message``, the line being the deepest one in the script."""
    if isinstance(exc, SyntaxError):
        return f"{path}:{exc.lineno}: SyntaxError: {exc.msg}"
    line = next((f.lineno for f in reversed(traceback.extract_tb(exc.__traceback__))
                 if os.path.abspath(f.filename) == os.path.abspath(path)), None)
    at = f":{line}" if line is not None else ""
    return f"{path}{at}: {type(exc).__name__}: {exc}"


class ScriptFile:
    """One ``--script`` file: its current hooks and the modification time they came from."""

    def __init__(self, path: str) -> None:
        self.path = path
        self.name = os.path.basename(path)
        self.hooks = ScriptHooks(self.name)
        self._mtime: float | None = None

    def load(self) -> ScriptHooks:
        """Run the file and take its hooks; ``ScriptError`` (file, line, what) if it fails."""
        try:
            self._mtime = os.stat(self.path).st_mtime
            with open(self.path, encoding="utf-8") as f:
                source = f.read()
        except OSError as exc:
            raise ScriptError(f"{self.path}: cannot read the script: {exc.strerror or exc}") from None
        module = types.ModuleType(f"wsinspect_script_{self.name.removesuffix('.py')}")
        module.__file__ = self.path
        # Registered while it runs, as an imported module is: what looks a class's module up
        # by name (``@dataclass``, pickle, typing) finds it. A reload replaces it.
        previous = sys.modules.get(module.__name__)
        sys.modules[module.__name__] = module
        try:
            exec(compile(source, self.path, "exec"), module.__dict__)
        except Exception as exc:
            if previous is not None:
                sys.modules[module.__name__] = previous
            else:
                sys.modules.pop(module.__name__, None)
            raise ScriptError(where(exc, self.path)) from None
        hooks: dict[str, Callable[..., Any] | None] = {}
        for name in HOOK_NAMES:
            fn = getattr(module, name, None)
            if fn is not None and not callable(fn):
                raise ScriptError(f"{self.path}: {name} is not a function")
            hooks[name] = fn
        self.hooks = ScriptHooks(self.name, **hooks)
        return self.hooks

    def refresh(self) -> str | None:
        """Load the file again if it changed since; the error when it does not load (the
        previous hooks stay), ``None`` otherwise."""
        try:
            mtime = os.stat(self.path).st_mtime
        except OSError as exc:
            return f"{self.path}: cannot read the script: {exc.strerror or exc} (keeping the previous version)"
        if mtime == self._mtime:
            return None
        self._mtime = mtime  # (a broken version is reported once, not on every connection)
        try:
            self.load()
        except ScriptError as exc:
            return f"{exc} (keeping the previous version)"
        return None
