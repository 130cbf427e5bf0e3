"""Mock mode (``wsinspect mock``): a scripted WebSocket server, no upstream.

The mock is the relay (``relay.server``) whose upstream is not a TCP connection but an
in-process server (``Hooks.connect_upstream``): for each connection the relay asks
``MockServer.connect`` for its upstream stream, gets one end of a socket pair, and the mock
serves the other end. So a mock refuses a bad request exactly as the proxy does, and its traffic
is logged, recorded, checked and shown like the proxy's.

The server side is a small RFC 6455 server on the ``wire`` code: it validates the relay's
upgrade request (§4.2.1), answers 101 with ``--subprotocol NAME`` when the client offered it and
never an extension (a permessage-deflate offer is declined, RFC 7692 §5), reads the client's
frames with a ``wire.inspector.Inspector`` (a violation fails the connection with its close code,
§7.1.7), answers pings with pongs carrying the same payload (§5.5.3), answers a close with a
close echoing its code (1000 when it had none, §5.5.1) and then ends the connection (the server
closes TCP first, §7.1.1).

Scripts, for each connection (as they are when it opens: ``ScriptFile.refresh``):

- ``on_open(conn)`` once the handshake is done: a plain one runs before the first message is
  read; an ``async`` one runs as the connection's background task, alongside its messages (it
  may loop: ``while True: conn.send("s2c", ...); await trio.sleep(1)``), cancelled when the
  connection ends;
- ``on_message(conn, msg)`` for each complete data message from the client, in order, through
  the scripts in turn (``script.pipeline``): what the last one made of it is sent to the client
  (``None`` from all, or ``DROP``, sends nothing);
- ``on_close(conn, info)`` when it has ended.

``conn.send("s2c", payload)`` and ``conn.close(code, reason)`` queue, and the connection's
``Conn.run`` task writes them in order (answers go through the same queue, so they keep their
place among a hook's own sends). An exception in a hook is published as an error ``Notice`` with
the script's own traceback; with ``close_on_error`` the connection is closed with 1011.
One connection's error never reaches another.
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Callable, Sequence
from functools import partial
from typing import Any

import trio

from wsinspect.events import Notice
from wsinspect.hub import Hub
from wsinspect.relay.hooks import HandshakeInfo, Hooks
from wsinspect.relay.server import Relay, serve
from wsinspect.relay.transport import receive_some, send_all
from wsinspect.script.api import ScriptMessage
from wsinspect.script.conn import CloseInfo, Conn
from wsinspect.script.loader import ScriptFile, ScriptHooks, script_traceback, watch
from wsinspect.script.pipeline import through
from wsinspect.settings import Settings, Upstream
from wsinspect.wire.frames import Frame, Opcode, encode_frame
from wsinspect.wire.handshake import ClientHandshake, HandshakeError, accept_key, validate_upgrade
from wsinspect.wire.inspector import Inspector
from wsinspect.wire.sides import Direction

__all__ = ["MockServer", "mock_settings", "serve_mock"]

READ_SIZE = 64 * 1024
MAX_MESSAGE = 64 << 20  # a client's message over this fails the connection with 1009
CLOSE_TIMEOUT = 5.0  # seconds to wait for the client's close after the mock's own
CLOSE_HOOK_TIME = 1.0  # seconds an async on_close may take once its connection has ended
MESSAGE_BACKLOG = 64  # client messages read ahead of on_message (then reading waits)

_Gone = (trio.BrokenResourceError, trio.ClosedResourceError, OSError)


def mock_settings(settings: Settings, scripts: Sequence[ScriptFile]) -> Settings:
    """``settings`` for the relay in front of the mock: the scripts' names as its upstream
    (``ConnectionOpened.upstream`` reads ``ws://chat_mock.py/path``), no proxy scripts."""
    name = "+".join(s.name for s in scripts) or "mock"
    upstream = Upstream(f"mock://{name}", False, name, 80, "")
    return dataclasses.replace(settings, upstream=upstream, scripts=())


async def serve_mock(
    settings: Settings,
    hub: Hub,
    scripts: Sequence[ScriptFile],
    *,
    subprotocol: str | None = None,
    close_on_error: bool = False,
    task_status: trio.TaskStatus[Relay] = trio.TASK_STATUS_IGNORED,
) -> None:
    """Listen on ``settings``' address and serve every client with the (loaded) ``scripts``
    until cancelled; ``task_status.started(relay)`` once bound."""
    async with trio.open_nursery() as nursery:
        mock = MockServer(hub, scripts, nursery, subprotocol=subprotocol,
                          close_on_error=close_on_error)
        nursery.start_soon(watch, scripts, lambda level, text: mock.notice(level, text, 0))
        hooks = Hooks(connect_upstream=mock.connect)
        relay = await nursery.start(partial(serve, mock_settings(settings, scripts), hub,
                                            hooks=hooks))
        task_status.started(relay)


class MockServer:
    """The in-process upstream of a mock relay: one ``_MockConnection`` per connection, run in
    the mock's own nursery (it ends when the relay closes its end of the pair)."""

    def __init__(self, hub: Hub, scripts: Sequence[ScriptFile], nursery: trio.Nursery, *,
                 subprotocol: str | None = None, close_on_error: bool = False,
                 max_header_size: int = 64 * 1024) -> None:
        self.hub = hub
        self.scripts = list(scripts)
        self.subprotocol = subprotocol
        self.close_on_error = close_on_error
        self.max_header_size = max_header_size
        self._nursery = nursery

    async def connect(self, info: HandshakeInfo) -> trio.abc.Stream:
        """``Hooks.connect_upstream``: the relay's end of a socket pair whose other end this
        mock serves with the scripts as they are now."""
        for f in self.scripts:
            error = f.refresh()
            if error is not None:
                self.notice("warning", f"script reload failed: {error}", info.conn)
        hooks = [f.hooks for f in self.scripts]
        ours, theirs = trio.socket.socketpair()
        connection = _MockConnection(self, trio.SocketStream(ours), info, hooks)
        self._nursery.start_soon(connection.serve)
        return trio.SocketStream(theirs)

    def notice(self, level: str, text: str, conn: int) -> None:
        self.hub.publish(Notice(time.time(), level, text, conn))


class _MockConnection:
    """One client of the mock: the handshake, then the frames, the scripts and the ending."""

    def __init__(self, server: MockServer, stream: trio.SocketStream, info: HandshakeInfo,
                 hooks: list[ScriptHooks]) -> None:
        self.server = server
        self.stream = stream
        self.info = info
        self.hooks = hooks
        self.conn = Conn(info.conn, info.path, request_headers=info.headers,
                         send=self._send, close=self._close, log=self._log,
                         failed=lambda exc: self._failed(None, exc))
        self._write_lock = trio.StrictFIFOLock()
        self._sent_close: tuple[int | None, str] | None = None
        self._got_close: tuple[int | None, str] | None = None
        self._first: str | None = None  # who sent the first close frame
        self._how = "fin"
        self._read_scope = trio.CancelScope()
        self._scope = trio.CancelScope()

    # -- the connection ---------------------------------------------------------------------

    async def serve(self) -> None:
        try:
            trailing = await self._handshake()
            if trailing is None:
                return
            try:
                with self._scope:
                    await self._session(trailing)
            finally:
                await self._closed()
        except _Gone:
            pass
        except Exception as exc:  # a bug of ours: this connection ends, not the mock
            self.server.notice("error", f"mock connection failed: {exc!r}", self.info.conn)
        finally:
            self.stream.socket.close()

    async def _handshake(self) -> bytes | None:
        """Read and answer the upgrade request (the relay's, which validated the client's);
        the bytes that came after it, or ``None`` when refused."""
        hs = ClientHandshake(self.server.max_header_size)
        request = None
        try:
            while request is None:
                data = await receive_some(self.stream, READ_SIZE)
                request = hs.feed(data)
                if request is None and not data:
                    return None
            request = validate_upgrade(request)
        except HandshakeError as exc:
            await send_all(self.stream, hs.refuse(exc.refusal))
            return None
        offered = [p.strip() for p in (request.header("sec-websocket-protocol") or "").split(",")]
        chosen = self.server.subprotocol if self.server.subprotocol in offered else None
        headers = [("Upgrade", "websocket"), ("Connection", "Upgrade"),
                   ("Sec-WebSocket-Accept", accept_key(request.key))]
        if chosen is not None:
            headers.append(("Sec-WebSocket-Protocol", chosen))
        head = "HTTP/1.1 101 Switching Protocols\r\n" + "".join(
            f"{n}: {v}\r\n" for n, v in headers) + "\r\n"
        trailing = hs.trailing_data()
        await send_all(self.stream, head.encode("latin-1"))
        self.conn.response_headers = tuple(headers)
        self.conn.subprotocol = chosen
        return trailing

    async def _session(self, trailing: bytes) -> None:
        send_messages, messages = trio.open_memory_channel[ScriptMessage](MESSAGE_BACKLOG)
        async with trio.open_nursery() as nursery:
            self.conn.attach(nursery.start_soon)
            nursery.start_soon(self.conn.run)
            nursery.start_soon(self._answer, messages)
            for hooks in self.hooks:
                if hooks.on_open is not None:
                    result = self._call(hooks, hooks.on_open, self.conn)
                    if result is not None:  # an async on_open: the connection's background task
                        nursery.start_soon(self._await, hooks, result)
            async with send_messages:
                with self._read_scope:
                    await self._read(trailing, send_messages)
                if self._read_scope.cancelled_caught:
                    self._how = "close-timeout"  # the client never answered our close
            nursery.cancel_scope.cancel()

    async def _read(self, data: bytes, messages: trio.MemorySendChannel[ScriptMessage]) -> None:
        inspector = Inspector("c2s", capture_limit=MAX_MESSAGE, max_message_size=MAX_MESSAGE)
        while True:
            for frame in inspector.feed(data) if data else ():
                if not await self._frame(frame, messages):
                    return
            data = await receive_some(self.stream, READ_SIZE)
            if not data:
                self._first = self._first or "client"
                return

    async def _frame(self, frame: Frame, messages: trio.MemorySendChannel[ScriptMessage]) -> bool:
        """Act on one of the client's frames; ``False`` when the connection is over."""
        errors = [v for v in frame.violations if not v.is_notice]
        if errors:
            # §7.1.7: fail the connection, with the code the broken rule names.
            self._how = f"violation {errors[0].rule}"
            await self._close(errors[0].close_code, errors[0].message[:120])
            return False
        opcode = frame.opcode
        if opcode == Opcode.CLOSE:
            self._got_close = (frame.close_code, frame.close_reason or "")
            self._first = self._first or "client"
            self._how = "close-handshake"
            if self._sent_close is None:
                await self._close(frame.close_code or 1000, "")
            return False
        if self._sent_close is not None:
            return True  # after our close: only the client's close matters (§5.5.1)
        if opcode == Opcode.PING:
            await self._write(encode_frame(Opcode.PONG, frame.payload))
        elif frame.message is not None:
            message = frame.message
            await messages.send(ScriptMessage("c2s", message.opcode == Opcode.TEXT,
                                              message.payload))
        return True

    async def _answer(self, messages: trio.MemoryReceiveChannel[ScriptMessage]) -> None:
        """Each client message through the scripts' ``on_message`` in order; the first answer
        other than ``None`` is sent (queued behind what the hooks sent themselves)."""
        async for msg in messages:
            for opcode, payload in await through(self.hooks, self.conn, msg, self._failed) or ():
                self.conn.send("s2c", payload.decode() if opcode == Opcode.TEXT else payload)

    async def _closed(self) -> None:
        """``on_close`` of every script, with what happened."""
        mock_first = self._first == "mock"
        first_close = self._sent_close if mock_first else self._got_close
        code, reason = first_close if first_close is not None else (None, None)
        info = CloseInfo("upstream" if mock_first else "client", self._how, code, reason,
                         client_close=self._got_close, upstream_close=self._sent_close)
        with trio.CancelScope(shield=True), trio.move_on_after(CLOSE_HOOK_TIME):
            for hooks in self.hooks:
                if hooks.on_close is not None:
                    result = self._call(hooks, hooks.on_close, self.conn, info)
                    if result is not None:
                        await self._await(hooks, result)

    # -- hooks ------------------------------------------------------------------------------

    def _call(self, hooks: ScriptHooks, fn: Callable[..., Any], *args: Any) -> Any:
        """Call a hook; what it returned when it is awaitable (else ``None``); an exception
        is published (``_failed``)."""
        try:
            result = fn(*args)
        except Exception as exc:
            self._failed(hooks, exc)
            return None
        return result if hasattr(result, "__await__") else None

    async def _await(self, hooks: ScriptHooks, awaitable: Any) -> None:
        try:
            await awaitable
        except Exception as exc:
            self._failed(hooks, exc)

    def _failed(self, hooks: ScriptHooks | None, exc: BaseException) -> None:
        close = self.server.close_on_error and self._sent_close is None
        outcome = "closing the connection (1011)" if close else "the connection goes on"
        name = f"script {hooks.name}" if hooks is not None else "a script's task"
        self.server.notice("error", f"{name} failed ({outcome}):\n{script_traceback(exc)}",
                           self.info.conn)
        if close:
            self.conn.close(1011, "script error")

    # -- what ``conn`` does -----------------------------------------------------------------

    async def _send(self, direction: Direction, opcode: int, payload: bytes) -> None:
        if direction != "s2c":
            self.server.notice("warning", "conn.send('c2s', ...): a mock has no server to "
                               "send to (nothing sent)", self.info.conn)
            return
        if self._sent_close is not None:
            self.server.notice("warning", "conn.send after the close frame: nothing sent "
                               "(RFC 6455 §5.5.1)", self.info.conn)
            return
        await self._write(encode_frame(opcode, payload))

    async def _close(self, code: int, reason: str) -> None:
        """Send the mock's close frame (once) and wait ``CLOSE_TIMEOUT`` for the client's."""
        if self._sent_close is not None:
            return
        self._sent_close = (code, reason)
        self._first = self._first or "mock"
        data = reason.encode()[:123]
        await self._write(encode_frame(Opcode.CLOSE, code.to_bytes(2, "big") + data))
        if self._got_close is None:
            self._read_scope.deadline = min(self._read_scope.deadline,
                                            trio.current_time() + CLOSE_TIMEOUT)

    def _log(self, text: str) -> None:
        self.server.notice("info", text, self.info.conn)

    async def _write(self, data: bytes) -> None:
        async with self._write_lock:
            try:
                await send_all(self.stream, data)
            except _Gone:
                self._scope.cancel()  # the relay's end is gone: so is the connection
