"""The control socket: ``--control PATH`` lets ``wsinspect ctl`` act on a running proxy.

A Unix socket, created with owner-only permissions (0600: only the user who runs the proxy can
cut its connections). The protocol is JSON Lines: one request object per line, one answer per
line, any number per connection::

    → {"cmd": "close", "conn": 3, "code": 4000}
    ← {"ok": true, "result": "#3 closed with 4000"}
    ← {"ok": false, "error": "no open connection #9"}

Each request names a command its relay registered (``relay.commands``): every relay answers
``list``, ``close`` (conn, code=1000, reason), ``cut`` (conn, rst=false) and ``blackhole`` (conn,
on=true), where ``conn`` is a connection id as the log shows it (``#3`` → 3); faults add
``faults``, ``idle-cut``, ``latency``, ``fault-add`` and ``fault-clear`` (``faults.commands``).
A request becomes the same command object the TUI executes.
"""

from __future__ import annotations

import contextlib
import json
import os
import stat
from typing import TYPE_CHECKING, Any

import trio

from wsinspect.relay.control import ControlError

if TYPE_CHECKING:
    from wsinspect.relay.server import Relay

__all__ = ["MAX_REQUEST", "ControlListener", "open_control_listener", "serve_control"]

MAX_REQUEST = 64 * 1024  # bytes in one request line


async def _answer(relay: Relay, line: bytes) -> dict[str, Any]:
    try:
        req = json.loads(line)
        if not isinstance(req, dict):
            raise ControlError("a request is a JSON object")
        result = await relay.execute(relay.commands.from_request(req))
    except json.JSONDecodeError as exc:
        return {"ok": False, "error": f"not JSON: {exc}"}
    except ControlError as exc:
        return {"ok": False, "error": str(exc)}
    return {"ok": True, "result": result}


async def _client(relay: Relay, stream: trio.SocketStream) -> None:
    buf = b""
    async with stream:
        while True:
            try:
                chunk = await stream.receive_some(65536)
            except trio.BrokenResourceError:
                return
            if not chunk:
                return
            buf += chunk
            while b"\n" in buf:
                line, buf = buf.split(b"\n", 1)
                if line.strip():
                    answer = await _answer(relay, line)
                    await stream.send_all(json.dumps(answer).encode() + b"\n")
            if len(buf) > MAX_REQUEST:
                await stream.send_all(b'{"ok": false, "error": "request too long"}\n')
                return


def _clear_stale(path: str) -> None:
    """Remove a socket file left by a proxy that is gone; refuse to touch anything else."""
    try:
        st = os.lstat(path)
    except FileNotFoundError:
        return
    if not stat.S_ISSOCK(st.st_mode):
        raise OSError(f"{path} exists and is not a socket")
    import socket

    probe = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        probe.connect(path)
    except OSError:
        os.unlink(path)  # nobody listens: stale
        return
    finally:
        probe.close()
    raise OSError(f"{path} is in use by another running proxy")


class ControlListener:
    """The bound control socket: ``path`` and the Trio listener on it."""

    def __init__(self, path: str, sock: trio.socket.SocketType) -> None:
        self.path = path
        self.sock = sock
        self.listener = trio.SocketListener(sock)

    def close(self) -> None:
        with contextlib.suppress(OSError):
            os.unlink(self.path)
        self.sock.close()


async def open_control_listener(path: str) -> ControlListener:
    """Create the Unix socket ``path`` with mode 0600 and listen on it; ``OSError`` (its
    message names the problem) if it cannot be created or another proxy uses it."""
    _clear_stale(path)
    sock = trio.socket.socket(trio.socket.AF_UNIX, trio.socket.SOCK_STREAM)
    old = os.umask(0o177)  # created 0600: nobody else may even connect
    try:
        await sock.bind(path)
        os.chmod(path, 0o600)
        sock.listen(16)
    except OSError:
        sock.close()
        raise
    finally:
        os.umask(old)
    return ControlListener(path, sock)


async def serve_control(relay: Relay, control: ControlListener | str, *,
                        task_status: trio.TaskStatus[str] = trio.TASK_STATUS_IGNORED) -> None:
    """Answer requests on the control socket until cancelled; removes the socket file on exit.
    ``control`` is an opened listener or a path to open."""
    if isinstance(control, str):
        control = await open_control_listener(control)
    try:
        task_status.started(control.path)

        async def handler(stream: trio.SocketStream) -> None:
            await _client(relay, stream)

        await trio.serve_listeners(handler, [control.listener])
    finally:
        control.close()
