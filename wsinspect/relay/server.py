"""The listener: accept clients (TCP, or TLS with ``--cert/--key``) and relay each one.

``serve(settings, hub)`` is started with ``await nursery.start(serve, settings, hub)`` and hands
back the ``Relay``: its bound ``address``, its open ``sessions`` and ``execute(command)``.
What plugs into a relay (faults, policies) is passed as ``attach``: each is called with the new
``Relay`` before it listens and adds its hooks and commands, so the relay imports none of them.
Each client is handled in its own task; an error there is published and never stops the
listener or another connection.
"""

from __future__ import annotations

import contextlib
import errno
import gc
import socket
import ssl
import time
from collections.abc import Awaitable, Callable, Sequence
from typing import Any

import trio

from wsinspect.ca import CertificateAuthority, default_ca_dir
from wsinspect.events import Notice
from wsinspect.hub import Hub
from wsinspect.relay.control import Commands, add_connection_commands
from wsinspect.relay.control_socket import open_control_listener, serve_control
from wsinspect.relay.forward import ForwardPolicy, handle_forward_client
from wsinspect.relay.hooks import Hooks
from wsinspect.relay.observers import Tier, choose_tier
from wsinspect.relay.opening import Router, handle_client
from wsinspect.relay.session import Session
from wsinspect.relay.upstream import Route, client_ssl_context
from wsinspect.settings import ConfigError, ResourceError, Settings

__all__ = ["Relay", "raise_fd_limit", "serve", "server_ssl_context", "tune_gc"]


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


# CPython's cycle collector runs a young collection every 700 net container allocations and
# promotes what it finds alive. Opening a connection allocates a few hundred containers (tasks,
# coroutines, cancel scopes, h11 state), most of which live only for the handshake: with the
# default thresholds a collection catches many of them alive, promotes them, and generation-1
# and full collections traverse them again as open connections pile up. Measured opening 1,000
# connections at a time: ~165 µs of collector time per connection (a quarter of the proxy's
# CPU), ~50 µs with these thresholds, under which they mostly die by reference count before a
# collection sees them. The relay makes no reference cycles per connection, so no garbage
# waits longer for it.
GC_THRESHOLDS = (20_000, 20, 10)


def tune_gc() -> None:
    """Raise the cycle collector's thresholds to ``GC_THRESHOLDS`` (never lower them)."""
    current = gc.get_threshold()
    if current[0] and current[0] < GC_THRESHOLDS[0]:
        gc.set_threshold(*(max(a, b) for a, b in zip(current, GC_THRESHOLDS, strict=True)))


# accept(2) errors that mean "overloaded for now": wait and accept again (as trio's
# serve_listeners does) instead of stopping the listener.
_OVERLOAD = {errno.EMFILE, errno.ENFILE, errno.ENOMEM, errno.ENOBUFS}
# accept(2) errors about one pending connection (it was reset or aborted before we took it,
# or a network error Linux reports on accept): skip it, as trio's SocketListener does.
_SKIP = {
    getattr(errno, name)
    for name in ("ECONNABORTED", "ECONNRESET", "EPERM", "EPROTO", "ENETDOWN", "ENOPROTOOPT",
                 "EHOSTDOWN", "ENONET", "EHOSTUNREACH", "EOPNOTSUPP", "ENETUNREACH", "ETIMEDOUT")
    if hasattr(errno, name)
}
ACCEPT_BURST = 64  # connections accepted in a row before other tasks get a turn


async def _accept_loop(
    listener: trio.SocketListener,
    ssl_context: ssl.SSLContext | None,
    nursery: trio.Nursery,
    relay: Relay,
) -> None:
    """Accept connections on ``listener`` until cancelled, each handled in its own task.

    Pending connections are taken with ``accept()`` on the OS socket until it says EAGAIN,
    and only then is readability awaited: under a burst of connections this is one schedule
    point per ``ACCEPT_BURST`` accepts rather than trio's cancel scope and checkpoints for
    each (trio's ``serve_listeners`` accepts one connection per loop iteration).
    """
    sock = socket.socket(fileno=listener.socket.detach())
    sock.setblocking(False)
    with sock:
        while True:
            for _ in range(ACCEPT_BURST):
                try:
                    conn, _addr = sock.accept()
                except BlockingIOError:
                    await trio.lowlevel.wait_readable(sock)
                    break
                except OSError as exc:
                    if exc.errno in _SKIP:
                        continue
                    if exc.errno not in _OVERLOAD:
                        raise
                    relay.hub.publish(Notice(time.time(), "error", f"accept failed: {exc}"))
                    await trio.sleep(0.1)
                    break
                stream: trio.abc.Stream = trio.SocketStream(trio.socket.from_stdlib_socket(conn))
                if ssl_context is not None:
                    stream = trio.SSLStream(stream, ssl_context, server_side=True,
                                            https_compatible=True)
                nursery.start_soon(relay.handle, stream)
            else:  # a whole burst accepted: let the new handlers (and everyone else) run
                await trio.lowlevel.checkpoint()


def server_ssl_context(cert: str, key: str) -> ssl.SSLContext:
    """TLS for the listening side (``--cert``/``--key``); ALPN says HTTP/1.1 (WebSocket)."""
    ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ctx.load_cert_chain(cert, key)
    ctx.set_alpn_protocols(["http/1.1"])
    return ctx


class Relay:
    """A running proxy. ``address`` is the bound ``(host, port)``; ``sessions`` maps a
    connection id to its open ``Session``; ``hooks`` are the plug-in points (``relay.hooks``);
    ``commands`` the control commands it answers (``relay.control``); ``tasks`` async callables
    that what attaches to the relay wants run as long as it listens (a script's watcher)."""

    def __init__(self, settings: Settings, hub: Hub, hooks: Hooks | None = None) -> None:
        if settings.upstream is None and not settings.forward:
            raise ConfigError("--upstream is required (or --forward)")
        self.settings = settings
        self.hub = hub
        self.hooks = hooks if hooks is not None else Hooks()
        self.sessions: dict[int, Session] = {}
        self.address: tuple[str, int] = (settings.listen_host, settings.listen_port)
        self._next_conn = 0
        self.commands = Commands()
        add_connection_commands(self)
        self.tasks: list[Callable[[], Awaitable[None]]] = []
        secure = settings.forward or (settings.upstream is not None and settings.upstream.secure)
        self.upstream_ssl = (
            client_ssl_context(settings.upstream_ca, settings.insecure) if secure else None
        )
        # Reverse mode: every request goes to --upstream. Forward mode: where each asks
        # (relay.forward), with TLS in tunnels intercepted by wsinspect's CA.
        self.forward: ForwardPolicy | None = None
        self.ca: CertificateAuthority | None = None
        if settings.forward:
            self.forward = ForwardPolicy(settings)
            self.ca = CertificateAuthority.load_or_create(default_ca_dir(settings.ca_dir))
            self._router: Router | None = None
        else:
            assert settings.upstream is not None
            route = Route(settings.upstream, self.upstream_ssl)
            self._router = lambda request: route

    @property
    def tier(self) -> Tier:
        """The inspection tier of new sessions (``relay.observers.choose_tier``): the light
        tier only where nothing can observe or alter frames. A session hook that installs a
        frame stage switches that direction to full inspection."""
        s = self.settings
        return choose_tier(self.hub, strict=s.strict, control=bool(s.control))[0]

    def next_conn_id(self) -> int:
        self._next_conn += 1
        return self._next_conn

    async def execute(self, command: object) -> Any:
        """Run a control command (``wsinspect.relay.control``) and return its result."""
        return await self.commands.execute(command)

    async def handle(self, stream: trio.abc.Stream) -> None:
        conn = self.next_conn_id()
        try:
            if self._router is None:
                await handle_forward_client(self, stream, conn)
            else:
                await handle_client(self, stream, conn, self._router)
        except Exception as exc:  # one connection's failure never reaches the listener
            self.hub.publish(Notice(time.time(), "error", f"connection failed: {exc!r}", conn))
        finally:
            if type(stream) is trio.SocketStream:
                # All ``aclose`` does for a plain socket, without the checkpoint (and the
                # cancel scope ``aclose_forcefully`` wraps it in); closing twice is harmless.
                stream.socket.close()
            else:
                await trio.aclose_forcefully(stream)


async def serve(
    settings: Settings,
    hub: Hub,
    *,
    hooks: Hooks | None = None,
    attach: Sequence[Callable[[Relay], object]] = (),
    task_status: trio.TaskStatus[Relay] = trio.TASK_STATUS_IGNORED,
) -> None:
    """Listen and relay until cancelled; ``task_status.started(relay)`` once bound.
    ``attach``: callables given the new relay before it listens (``wsinspect.compose``).

    Process-wide, like the open-files limit it lifts, it also raises the cycle collector's
    thresholds (``tune_gc``)."""
    raise_fd_limit()
    tune_gc()
    relay = Relay(settings, hub, hooks)
    for plug_in in attach:
        plug_in(relay)
    listeners = await trio.open_tcp_listeners(settings.listen_port, host=settings.listen_host)
    relay.address = listeners[0].socket.getsockname()[:2]
    scheme = "ws"
    ctx = None
    if settings.cert and settings.key:
        ctx = server_ssl_context(settings.cert, settings.key)
        scheme = "wss"
    host, port = relay.address
    shown = f"[{host}]" if ":" in host else host
    now = time.time()
    if settings.upstream is not None:
        target = settings.upstream.url
        hub.publish(Notice(now, "info", f"listening on {scheme}://{shown}:{port}, relaying to {target}"))
    else:
        target = "any host"
        assert relay.ca is not None
        hub.publish(Notice(now, "info",
                           f"forward proxy on http://{shown}:{port}: point clients at it "
                           f"(HTTPS_PROXY=http://{shown}:{port}); TLS is intercepted with the CA "
                           f"{relay.ca.cert_path} (`wsinspect ca` says how to trust it)"))
    if not settings.listen_is_loopback:
        hub.publish(Notice(now, "warning",
                           f"listening on {host}, not loopback: anyone who can reach this "
                           f"address can reach {target} through it"))
    if relay.upstream_ssl is not None and settings.insecure:
        hub.publish(Notice(now, "warning", "--insecure: upstream TLS certificates are not verified"))
    control = None
    if settings.control:
        try:
            control = await open_control_listener(settings.control)
        except OSError as exc:
            raise ResourceError(f"--control {settings.control}: {exc.strerror or exc}") from None
    async with trio.open_nursery() as nursery:
        if control is not None:
            nursery.start_soon(serve_control, relay, control)
        for listener in listeners:
            nursery.start_soon(_accept_loop, listener, ctx, nursery, relay)
        for task in relay.tasks:
            nursery.start_soon(task)
        task_status.started(relay)
