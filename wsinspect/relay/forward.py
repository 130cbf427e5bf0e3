"""Forward mode (``--forward``): wsinspect as the HTTP proxy a client is configured to use.

A client reaches any host through it in one of two ways (RFC 9110 §9.3.6, RFC 9112 §3.2.2):
- ``CONNECT host:port`` opens a tunnel, which is how browsers and the ``websockets`` library
  reach ``wss://`` (and often ``ws://``) through a proxy. The proxy connects to the host first
  (so an unreachable one gets 502 with the reason), answers 200, then reads the tunnel's first
  bytes: a TLS ClientHello is terminated with a leaf certificate for its SNI name, signed by
  wsinspect's CA (``wsinspect.ca``), and the tunnel's requests go to the host over the proxy's
  own TLS, verified as in reverse mode; plain bytes are read as HTTP requests. Either way the
  tunnel is then an ordinary client connection (``opening.handle_client``) whose upstream is
  the CONNECT target: the same handshakes, relay, events and hooks as reverse mode. Hosts the
  user excludes (``--ignore-hosts``, or outside ``--allow-hosts``) are tunnelled blindly.
- an absolute-form request (``GET http://host/path``, ``GET ws://host/chat`` with an upgrade)
  goes to the host it names, with keep-alive on the client connection.

Every request to the proxy itself needs ``Proxy-Authorization`` when ``--proxy-auth`` is set
(407 otherwise).
"""

from __future__ import annotations

import base64
import binascii
import hmac
import re
import ssl
import time
from collections.abc import Callable
from typing import TYPE_CHECKING
from urllib.parse import urlsplit

import trio

from wsinspect.events import HttpExchange, Notice
from wsinspect.relay.opening import (
    handle_client,
    peer_name,
    read_request,
    refuse_request,
    send_refusal,
)
from wsinspect.relay.transport import PrefixedStream, receive_some
from wsinspect.relay.upstream import Route, UpstreamError, connect_tcp
from wsinspect.settings import Settings, Upstream
from wsinspect.wire.handshake import ClientHandshake, UpgradeRequest
from wsinspect.wire.refusal import Refusal
from wsinspect.wire.tls_hello import HelloError, looks_like_tls, read_client_hello

if TYPE_CHECKING:
    from wsinspect.relay.server import Relay

__all__ = ["ForwardPolicy", "handle_forward_client"]

READ_SIZE = 16 * 1024
TUNNEL_READ = 64 * 1024
_AUTHENTICATE = (("Proxy-Authenticate", 'Basic realm="wsinspect"'),)
# TLS alerts by which a client says it does not trust the certificate it was shown.
_CERT_REJECTED = ("UNKNOWN_CA", "BAD_CERTIFICATE", "CERTIFICATE_UNKNOWN", "UNSUPPORTED_CERTIFICATE",
                  "CERTIFICATE_EXPIRED", "ACCESS_DENIED", "DECRYPT_ERROR")


class ForwardPolicy:
    """The forward proxy's decisions: which hosts are intercepted, and whether a request
    carries the credentials ``--proxy-auth`` asks for. Sans-IO."""

    def __init__(self, settings: Settings) -> None:
        self.ignore = [re.compile(p) for p in settings.ignore_hosts]
        self.allow = [re.compile(p) for p in settings.allow_hosts]
        self.credentials = settings.proxy_auth

    def intercepts(self, host: str, port: int, server_name: str | None = None) -> bool:
        """Whether a tunnel to ``host:port`` (asking TLS for ``server_name``) is looked into.
        Each pattern is searched in ``host:port`` and in the SNI name."""
        names = [f"{host}:{port}"] + ([f"{server_name}:{port}"] if server_name else [])

        def matches(patterns: list[re.Pattern[str]]) -> bool:
            return any(p.search(name) for p in patterns for name in names)

        if self.allow and not matches(self.allow):
            return False
        return not matches(self.ignore)

    def authorized(self, request: UpgradeRequest) -> bool:
        """Whether ``request`` carries ``Proxy-Authorization: Basic`` with the credentials
        (always, when none are required)."""
        if self.credentials is None:
            return True
        scheme, _, token = (request.header("proxy-authorization") or "").strip().partition(" ")
        if scheme.lower() != "basic":
            return False
        try:
            given = base64.b64decode(token.strip(), validate=True)
        except (binascii.Error, ValueError):
            return False
        return hmac.compare_digest(given, self.credentials.encode("utf-8"))

    def route_for(self, request: UpgradeRequest, upstream_ssl: ssl.SSLContext) -> Route | Refusal:
        """Where a request made to the proxy itself goes: the host of its absolute-form target.
        407 without the credentials, 400 for any other target."""
        if not self.authorized(request):
            return Refusal(407, "proxy authentication required", _AUTHENTICATE)
        if request.method.upper() == "CONNECT":
            return Refusal(400, "CONNECT must be the first request on a connection to the proxy")
        parts = urlsplit(request.target)
        scheme = parts.scheme.lower()
        if scheme not in ("http", "https", "ws", "wss") or not parts.hostname:
            return Refusal(400, f"{request.method} {request.target[:200]}: a forward proxy takes "
                           "CONNECT host:port or a request for a whole URL (GET http://host/path)")
        secure = scheme in ("https", "wss")
        try:
            port = parts.port or (443 if secure else 80)
        except ValueError:
            return Refusal(400, f"bad port in {request.target[:200]!r}")
        return _route(parts.hostname, port, secure, upstream_ssl)


def _route(host: str, port: int, secure: bool, upstream_ssl: ssl.SSLContext,
           server_name: str | None = None, tcp: trio.abc.Stream | None = None) -> Route:
    shown = f"[{host}]" if ":" in host else host
    url = f"{'wss' if secure else 'ws'}://{shown}:{port}"
    upstream = Upstream(url, secure, host, port, "")
    return Route(upstream, upstream_ssl if secure else None, server_name, tcp, forward=True)


def parse_authority(target: str) -> tuple[str, int] | None:
    """``host:port`` of a CONNECT (``[v6]:port`` for IPv6); ``None`` when malformed."""
    host, sep, port = target.rpartition(":")
    if not sep or not port.isdigit() or not 0 < int(port) < 65536:
        return None
    if host.startswith("[") and host.endswith("]"):
        host = host[1:-1]
    if not host or any(c in host for c in "/[]@ ") or (":" in host and not target.startswith("[")):
        return None
    return host.lower(), int(port)


async def handle_forward_client(relay: Relay, stream: trio.abc.Stream, conn: int) -> None:
    """Serve one connection to the forward proxy: a CONNECT tunnel, or absolute-form requests."""
    assert relay.forward is not None and relay.upstream_ssl is not None
    policy, upstream_ssl = relay.forward, relay.upstream_ssl
    client = peer_name(stream)
    hs = ClientHandshake(relay.settings.max_header_size)
    request = await read_request(relay, conn, stream, hs, client, first=True)
    if request is None:
        return
    if request.method.upper() != "CONNECT":
        await handle_client(relay, stream, conn, lambda r: policy.route_for(r, upstream_ssl),
                            hs=hs, request=request, client=client)
        return
    if not policy.authorized(request):
        refusal = Refusal(407, "proxy authentication required", _AUTHENTICATE)
        await refuse_request(relay, conn, client, stream, hs, refusal, request)
        return
    await _tunnel(relay, stream, conn, hs, request, client)


async def _tunnel(
    relay: Relay, stream: trio.abc.Stream, conn: int, hs: ClientHandshake,
    request: UpgradeRequest, client: str,
) -> None:
    settings = relay.settings
    assert relay.forward is not None and relay.upstream_ssl is not None
    started = trio.current_time()
    ts = time.time()

    def log_tunnel(status: int, size: int) -> None:
        relay.hub.publish(HttpExchange(conn, ts, client, "CONNECT", request.target, status, size,
                                       trio.current_time() - started))

    async def answer(refusal: Refusal) -> None:
        log_tunnel(refusal.status, 0)
        await send_refusal(stream, hs, refusal)

    authority = parse_authority(request.target)
    if authority is None:
        await answer(Refusal(400, f"CONNECT {request.target[:200]!r}: expected host:port"))
        return
    host, port = authority
    tcp: trio.abc.Stream | None = None
    with trio.move_on_after(settings.handshake_timeout):
        try:
            tcp = await connect_tcp(host, port)
        except UpstreamError as exc:
            await answer(exc.refusal)
            return
    if tcp is None:
        await answer(Refusal(504, f"{host}:{port} did not accept a connection within "
                                  f"{settings.handshake_timeout:g} s"))
        return
    route: Route | None = None
    try:
        try:
            await stream.send_all(b"HTTP/1.1 200 Connection established\r\n\r\n")
        except (trio.BrokenResourceError, trio.ClosedResourceError, OSError):
            return
        # Bytes the client sent right behind its CONNECT (it need not wait for the 200).
        first = bytes(hs.conn.trailing_data[0])
        if not relay.forward.intercepts(host, port):
            await _blind(relay, stream, tcp, first, log_tunnel)
            return
        sniffed = await _sniff(relay, stream, conn, first, request.target)
        if sniffed is None:
            return
        first = sniffed
        if not looks_like_tls(first):
            plain = route = _route(host, port, False, relay.upstream_ssl, tcp=tcp)
            await handle_client(relay, stream, conn, lambda r: plain, initial=first, client=client)
            return
        try:
            hello = read_client_hello(first)
        except HelloError as exc:
            relay.hub.publish(Notice(time.time(), "warning",
                                     f"tunnel to {request.target}: {exc}; tunnelled as it is", conn))
            hello = None
        name = hello.server_name if hello is not None else None
        if hello is None or not relay.forward.intercepts(host, port, name):
            await _blind(relay, stream, tcp, first, log_tunnel)
            return
        tls = await _terminate_tls(relay, stream, conn, client, first, name or host)
        if tls is None:
            return
        secure = route = _route(host, port, True, relay.upstream_ssl, server_name=name, tcp=tcp)
        try:
            await handle_client(relay, tls, conn, lambda r: secure, client=client)
        finally:
            await trio.aclose_forcefully(tls)
    finally:
        if route is not None:
            await route.aclose()
        elif tcp is not None:
            await trio.aclose_forcefully(tcp)


async def _sniff(relay: Relay, stream: trio.abc.Stream, conn: int, first: bytes,
                 target: str) -> bytes | None:
    """The tunnel's first bytes: enough to tell TLS from HTTP, and a TLS client's whole
    ClientHello (or what it sent until it stopped being one). ``None`` when the client sent
    nothing within the handshake timeout or left."""
    data = bytearray(first)
    with trio.move_on_after(relay.settings.handshake_timeout) as scope:
        try:
            while True:
                if len(data) >= 2:
                    if not looks_like_tls(bytes(data[:2])):
                        return bytes(data)
                    try:
                        if read_client_hello(bytes(data)) is not None:
                            return bytes(data)
                    except HelloError:
                        return bytes(data)
                chunk = await receive_some(stream, READ_SIZE)
                if not chunk:
                    return bytes(data) if data else None
                data += chunk
        except (trio.BrokenResourceError, trio.ClosedResourceError, OSError):
            return None
    if scope.cancelled_caught:
        relay.hub.publish(Notice(time.time(), "info", f"tunnel to {target} closed: the client sent "
                                 f"nothing within {relay.settings.handshake_timeout:g} s", conn))
    return None


async def _terminate_tls(
    relay: Relay, stream: trio.abc.Stream, conn: int, client: str, hello: bytes, name: str,
) -> trio.SSLStream[PrefixedStream] | None:
    """The client's TLS, terminated with a leaf certificate for ``name``; ``None`` (and one
    log line saying why) when the handshake fails."""
    ca = relay.ca
    assert ca is not None and isinstance(stream, trio.SocketStream)
    try:
        context = ca.server_context(name)
    except ValueError as exc:  # a name no certificate can carry
        relay.hub.publish(Notice(time.time(), "warning",
                                 f"TLS with client {client}: cannot make a certificate for "
                                 f"{name!r} ({exc})", conn))
        return None
    tls = trio.SSLStream(PrefixedStream(stream, hello), context,
                         server_side=True, https_compatible=True)
    with trio.move_on_after(relay.settings.handshake_timeout) as scope:
        try:
            await tls.do_handshake()
            return tls
        except (trio.BrokenResourceError, trio.ClosedResourceError, ssl.SSLError, OSError) as exc:
            reason = _tls_reason(exc)
            if any(alert in reason.upper() for alert in _CERT_REJECTED):
                text = (f"client {client} rejected wsinspect's certificate for {name} ({reason}): "
                        "it does not trust wsinspect's CA; run `wsinspect ca` to see how")
            elif "EOF" in reason.upper() or not reason:
                # Some clients hang up without an alert when they distrust the certificate.
                text = (f"client {client} closed the connection during TLS for {name}: if it "
                        "does not trust wsinspect's CA, run `wsinspect ca` to see how")
            else:
                text = f"TLS with client {client} for {name} failed: {reason}"
            relay.hub.publish(Notice(time.time(), "warning", text, conn))
    if scope.cancelled_caught:
        relay.hub.publish(Notice(time.time(), "warning", f"TLS with client {client} for {name}: "
                                 f"no handshake within {relay.settings.handshake_timeout:g} s", conn))
    await trio.aclose_forcefully(tls)
    return None


def _tls_reason(exc: BaseException) -> str:
    cur: BaseException | None = exc
    while cur is not None:
        if isinstance(cur, ssl.SSLError):
            return str(cur.reason or cur)
        cur = cur.__cause__ or cur.__context__
    return str(exc) or type(exc).__name__


async def _blind(relay: Relay, client: trio.abc.Stream, upstream: trio.abc.Stream, first: bytes,
                 log_tunnel: Callable[[int, int], None]) -> None:
    """Copy bytes both ways, unread, until both sides are done; one ``tunnel`` log line."""
    moved = [0]

    async def copy(src: trio.abc.Stream, dst: trio.abc.Stream) -> None:
        try:
            while data := await src.receive_some(TUNNEL_READ):
                moved[0] += len(data)
                await dst.send_all(data)
            if isinstance(dst, trio.abc.HalfCloseableStream):
                await dst.send_eof()
        except (trio.BrokenResourceError, trio.ClosedResourceError, OSError):
            nursery.cancel_scope.cancel()

    try:
        if first:
            moved[0] += len(first)
            await upstream.send_all(first)
        async with trio.open_nursery() as nursery:
            nursery.start_soon(copy, client, upstream)
            nursery.start_soon(copy, upstream, client)
    except (trio.BrokenResourceError, trio.ClosedResourceError, OSError):
        pass
    log_tunnel(200, moved[0])
