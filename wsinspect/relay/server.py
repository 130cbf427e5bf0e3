"""The listener: accept clients (TCP, or TLS with ``--cert/--key``) and relay each one.

``serve(settings, hub)`` is started with ``await nursery.start(serve, settings, hub)`` and hands
back the ``Relay``: its bound ``address``, its open ``sessions`` and ``execute(command)``.
Each client is handled in its own task; an error there is published and never stops the
listener or another connection.
"""

from __future__ import annotations

import contextlib
import ssl
import time
from typing import Any

import trio

from wsinspect.config import ConfigError, Settings
from wsinspect.events import Notice
from wsinspect.faults.runtime import install as install_faults
from wsinspect.hub import Hub
from wsinspect.relay.hooks import Hooks
from wsinspect.relay.opening import handle_client
from wsinspect.relay.session import Session
from wsinspect.relay.upstream import client_ssl_context

__all__ = ["Relay", "raise_fd_limit", "serve", "server_ssl_context"]


def raise_fd_limit() -> None:
    """Lift the soft open-files limit to the hard one: each relayed connection holds two
    sockets, and the usual soft limit of 1024 would cap the proxy near 500 connections."""
    try:
        import resource
    except ImportError:  # pragma: no cover - not on Windows
        return
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if hard == resource.RLIM_INFINITY:
        hard = 1 << 20
    if soft != resource.RLIM_INFINITY and soft < hard:
        with contextlib.suppress(ValueError, OSError):
            resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))


def server_ssl_context(cert: str, key: str) -> ssl.SSLContext:
    """TLS for the listening side (``--cert``/``--key``); ALPN says HTTP/1.1 (WebSocket)."""
    ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ctx.load_cert_chain(cert, key)
    ctx.set_alpn_protocols(["http/1.1"])
    return ctx


class Relay:
    """A running proxy. ``address`` is the bound ``(host, port)``; ``sessions`` maps a
    connection id to its open ``Session``; ``hooks`` are the plug-in points (``relay.hooks``)."""

    def __init__(self, settings: Settings, hub: Hub, hooks: Hooks | None = None) -> None:
        if settings.upstream is None:
            raise ConfigError("--upstream is required")
        self.settings = settings
        self.hub = hub
        self.hooks = hooks if hooks is not None else Hooks()
        self.sessions: dict[int, Session] = {}
        self.address: tuple[str, int] = (settings.listen_host, settings.listen_port)
        self._next_conn = 0
        self.upstream_ssl = (
            client_ssl_context(settings.upstream_ca, settings.insecure)
            if settings.upstream.secure
            else None
        )

    @property
    def light(self) -> bool:
        """Whether new sessions may use the light inspection tier (``wire.walker``): nothing
        can observe or alter their frames — no sink wants frame or message events, no
        ``--strict`` and no control socket (a fault added at run time needs full frames).
        A session hook that installs a frame stage switches its session to full inspection."""
        s = self.settings
        return not (self.hub.wants_traffic or s.strict or s.control)

    def next_conn_id(self) -> int:
        self._next_conn += 1
        return self._next_conn

    async def execute(self, command: object) -> Any:
        """Run a control command (``wsinspect.relay.control``) and return its result."""
        from wsinspect.relay.control import execute

        return await execute(self, command)

    async def handle(self, stream: trio.abc.Stream) -> None:
        conn = self.next_conn_id()
        try:
            await handle_client(self, stream, conn)
        except Exception as exc:  # one connection's failure never reaches the listener
            self.hub.publish(Notice(time.time(), "error", f"connection failed: {exc!r}", conn))
        finally:
            await trio.aclose_forcefully(stream)


async def serve(
    settings: Settings,
    hub: Hub,
    *,
    hooks: Hooks | None = None,
    task_status: trio.TaskStatus[Relay] = trio.TASK_STATUS_IGNORED,
) -> None:
    """Listen and relay until cancelled; ``task_status.started(relay)`` once bound."""
    raise_fd_limit()
    relay = Relay(settings, hub, hooks)
    install_faults(relay)  # Origin policy, idle timeout and --fault from the settings
    listeners: list[Any] = list(
        await trio.open_tcp_listeners(settings.listen_port, host=settings.listen_host)
    )
    sock = listeners[0].socket
    relay.address = sock.getsockname()[:2]
    scheme = "ws"
    if settings.cert and settings.key:
        ctx = server_ssl_context(settings.cert, settings.key)
        listeners = [trio.SSLListener(lst, ctx, https_compatible=True) for lst in listeners]
        scheme = "wss"
    host, port = relay.address
    shown = f"[{host}]" if ":" in host else host
    assert settings.upstream is not None
    now = time.time()
    hub.publish(Notice(now, "info", f"listening on {scheme}://{shown}:{port}, relaying to {settings.upstream.url}"))  # fmt: skip
    if not settings.listen_is_loopback:
        hub.publish(Notice(now, "warning",
                           f"listening on {host}, not loopback: anyone who can reach this "
                           f"address can reach {settings.upstream.url} through it"))  # fmt: skip
    if settings.upstream.secure and settings.insecure:
        hub.publish(Notice(now, "warning", "--insecure: upstream TLS certificates are not verified"))  # fmt: skip
    control = None
    if settings.control:
        from wsinspect.faults.control_socket import open_control_listener, serve_control

        try:
            control = await open_control_listener(settings.control)
        except OSError as exc:
            raise ConfigError(f"--control {settings.control}: {exc.strerror or exc}") from None
    async with trio.open_nursery() as nursery:
        if control is not None:
            nursery.start_soon(serve_control, relay, control)
        task_status.started(relay)
        await trio.serve_listeners(relay.handle, listeners)
