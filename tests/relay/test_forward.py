"""Forward mode: real clients configured to use wsinspect as their proxy reach local servers
that play the real hosts, over ws://, wss:// (TLS intercepted with wsinspect's CA) and HTTPS,
and every bad input gets its clear answer."""

from __future__ import annotations

import base64
import dataclasses
import http.client
import socket
import ssl
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import h11
import pytest
import trio
import trustme
from relay_helpers import (
    Collector,
    Proxy,
    echo,
    read_to_eof,
    read_until,
    start_keep_alive_http_server,
    start_raw_server,
    start_ws_server,
)
from websockets.trio.client import connect

from wsinspect.ca import CertificateAuthority
from wsinspect.compose import serve_proxy
from wsinspect.events import (
    ConnectionClosed,
    ConnectionOpened,
    FrameSeen,
    HandshakeRejected,
    HttpExchange,
    MessageSeen,
    Notice,
)
from wsinspect.hub import Hub
from wsinspect.settings import Settings

pytestmark = pytest.mark.trio

StartForward = Callable[..., Awaitable[Proxy]]


@pytest.fixture(scope="module")
def upstream_ca() -> trustme.CA:
    """The CA of the servers that play the real hosts (wsinspect trusts it by --upstream-ca)."""
    return trustme.CA()


@pytest.fixture
def upstream_ca_file(upstream_ca: trustme.CA, tmp_path: Path) -> str:
    path = tmp_path / "upstream-ca.pem"
    upstream_ca.cert_pem.write_to_path(str(path))
    return str(path)


@pytest.fixture
def ca_dir(tmp_path: Path) -> Path:
    return tmp_path / "wsinspect-ca"


@pytest.fixture
def trusting(ca_dir: Path) -> ssl.SSLContext:
    """A client context that trusts wsinspect's CA only (created here on first use)."""
    ca = CertificateAuthority.load_or_create(ca_dir)
    return ssl.create_default_context(cafile=str(ca.cert_path))


@pytest.fixture
def start_forward(nursery: trio.Nursery, ca_dir: Path, upstream_ca_file: str) -> StartForward:
    async def start(**overrides: Any) -> Proxy:
        settings = dataclasses.replace(
            Settings(listen_port=0, forward=True, ca_dir=str(ca_dir), upstream_ca=upstream_ca_file),
            **overrides,
        )
        hub = Hub()
        sink = Collector()
        hub.subscribe(sink, frames=True, messages=True)
        relay = await nursery.start(serve_proxy, settings, hub)
        return Proxy(relay, sink)

    return start


def _server_tls(ca: trustme.CA) -> ssl.SSLContext:
    ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ca.issue_cert("localhost", "127.0.0.1").configure_cert(ctx)
    return ctx


async def _wss_host(nursery: trio.Nursery, ca: trustme.CA) -> int:
    """A wss:// echo server playing a real host; its port."""
    url = await start_ws_server(nursery, echo, ssl=_server_tls(ca))
    return int(url.rsplit(":", 1)[1])


async def _ws_host(nursery: trio.Nursery) -> int:
    url = await start_ws_server(nursery, echo)
    return int(url.rsplit(":", 1)[1])


async def _connect(proxy: Proxy, target: str, extra: str = "") -> tuple[trio.SocketStream, bytes]:
    stream = await trio.open_tcp_stream("127.0.0.1", proxy.port)
    await stream.send_all(f"CONNECT {target} HTTP/1.1\r\nHost: {target}\r\n{extra}\r\n".encode())
    return stream, await read_until(stream, b"\r\n\r\n")


# ---- real clients --------------------------------------------------------------------------


async def test_websockets_reaches_a_ws_host_through_the_proxy(
    nursery: trio.Nursery, start_forward: StartForward
) -> None:
    with trio.fail_after(10):
        port = await _ws_host(nursery)
        proxy = await start_forward()
        async with connect(f"ws://127.0.0.1:{port}/chat?room=1",
                           proxy=f"http://127.0.0.1:{proxy.port}") as ws:
            await ws.send("hello through a tunnel")
            assert await ws.recv() == "hello through a tunnel"
        opened = await proxy.sink.wait_for(ConnectionOpened)
        assert opened.upstream == f"ws://127.0.0.1:{port}/chat?room=1"
        assert opened.path == f"ws://127.0.0.1:{port}/chat?room=1"  # what the client asked for
        texts = [m.message.payload for m in proxy.sink.of(MessageSeen)]
        assert texts.count(b"hello through a tunnel") == 2  # both directions seen


async def test_websockets_reaches_a_wss_host_with_tls_intercepted(
    nursery: trio.Nursery, start_forward: StartForward, upstream_ca: trustme.CA,
    trusting: ssl.SSLContext,
) -> None:
    with trio.fail_after(10):
        port = await _wss_host(nursery, upstream_ca)
        proxy = await start_forward()
        async with connect(f"wss://localhost:{port}/secure", ssl=trusting,
                           proxy=f"http://127.0.0.1:{proxy.port}") as ws:
            await ws.send(b"\x00binary\xff")
            assert await ws.recv() == b"\x00binary\xff"
            # What the client verified is wsinspect's leaf for the name it asked for.
            tls = ws.stream
            assert isinstance(tls, trio.SSLStream)
            peer = tls.getpeercert()
            assert ("DNS", "localhost") in peer["subjectAltName"]
            assert tls.selected_alpn_protocol() in (None, "http/1.1")
        opened = await proxy.sink.wait_for(ConnectionOpened)
        assert opened.upstream == f"wss://localhost:{port}/secure"
        frames = [f for f in proxy.sink.of(FrameSeen) if f.frame.opcode == 2]
        assert [f.direction for f in frames] == ["c2s", "s2c"]
        assert frames[0].frame.masked and not frames[1].frame.masked


async def test_an_https_request_with_the_standard_library_keeps_its_connection(
    nursery: trio.Nursery, start_forward: StartForward, upstream_ca: trustme.CA,
    trusting: ssl.SSLContext,
) -> None:
    connections: list[int] = []
    with trio.fail_after(10):
        port = await start_keep_alive_http_server(nursery, connections, _server_tls(upstream_ca))
        proxy = await start_forward()

        def fetch() -> list[tuple[int, bytes]]:
            conn = http.client.HTTPSConnection("127.0.0.1", proxy.port, context=trusting, timeout=5)
            conn.set_tunnel("localhost", port)
            out = []
            for path in ("/first", "/second?x=1"):
                conn.request("GET", path)
                response = conn.getresponse()
                out.append((response.status, response.read()))
            conn.close()
            return out

        answers = await trio.to_thread.run_sync(fetch)
        assert answers == [(200, b"page /first"), (200, b"page /second?x=1")]
        assert len(connections) == 1  # one tunnel, one upstream connection, two requests
        await proxy.sink.wait_for(HttpExchange, lambda e: e.path.endswith("x=1"))
        exchanges = proxy.sink.of(HttpExchange)
        assert [(e.method, e.path, e.status) for e in exchanges] == [
            ("GET", f"https://localhost:{port}/first", 200),
            ("GET", f"https://localhost:{port}/second?x=1", 200),
        ]
        assert len({e.conn for e in exchanges}) == 1


async def test_absolute_form_requests_are_passed_through_with_keep_alive(
    nursery: trio.Nursery, start_forward: StartForward
) -> None:
    connections: list[int] = []
    with trio.fail_after(10):
        port = await start_keep_alive_http_server(nursery, connections)
        proxy = await start_forward()
        stream = await trio.open_tcp_stream("127.0.0.1", proxy.port)
        for path in ("/a", "/b"):
            await stream.send_all(f"GET http://127.0.0.1:{port}{path} HTTP/1.1\r\n"
                                  f"Host: 127.0.0.1:{port}\r\n\r\n".encode())
            head = await read_until(stream, b"page " + path.encode())
            assert head.startswith(b"HTTP/1.1 200 ")
        assert len(connections) == 1
        await proxy.sink.wait_for(HttpExchange, lambda e: e.path.endswith("/b"))
        paths = [e.path for e in proxy.sink.of(HttpExchange)]
        assert paths == [f"http://127.0.0.1:{port}/a", f"http://127.0.0.1:{port}/b"]


async def test_an_absolute_form_websocket_request_is_relayed(
    nursery: trio.Nursery, start_forward: StartForward
) -> None:
    with trio.fail_after(10):
        port = await _ws_host(nursery)
        proxy = await start_forward()
        stream = await trio.open_tcp_stream("127.0.0.1", proxy.port)
        await stream.send_all(
            f"GET ws://127.0.0.1:{port}/abs HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n"
            "Upgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Version: 13\r\n"
            "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n".encode())
        head = await read_until(stream, b"\r\n\r\n")
        assert head.startswith(b"HTTP/1.1 101 ")
        opened = await proxy.sink.wait_for(ConnectionOpened)
        assert opened.upstream == f"ws://127.0.0.1:{port}/abs"


# ---- what the user chose --------------------------------------------------------------------


async def test_ignored_hosts_are_tunnelled_blindly_and_logged_as_tunnels(
    nursery: trio.Nursery, start_forward: StartForward, upstream_ca: trustme.CA
) -> None:
    with trio.fail_after(10):
        port = await _wss_host(nursery, upstream_ca)
        proxy = await start_forward(ignore_hosts=(r"^localhost:",))
        pinned = ssl.create_default_context()
        upstream_ca.configure_trust(pinned)  # trusts the real host's CA only, as a pinning app
        async with connect(f"wss://localhost:{port}/", ssl=pinned,
                           proxy=f"http://127.0.0.1:{proxy.port}") as ws:
            await ws.send("pinned")
            assert await ws.recv() == "pinned"
        tunnel = await proxy.sink.wait_for(HttpExchange)
        assert (tunnel.method, tunnel.path, tunnel.status) == ("CONNECT", f"localhost:{port}", 200)
        assert tunnel.size > 0
        assert not proxy.sink.of(ConnectionOpened)


async def test_allow_hosts_intercepts_only_the_hosts_it_names(
    nursery: trio.Nursery, start_forward: StartForward, upstream_ca: trustme.CA
) -> None:
    with trio.fail_after(10):
        port = await _wss_host(nursery, upstream_ca)
        proxy = await start_forward(allow_hosts=(r"^api\.example\.com$",))
        pinned = ssl.create_default_context()
        upstream_ca.configure_trust(pinned)
        async with connect(f"wss://localhost:{port}/", ssl=pinned,
                           proxy=f"http://127.0.0.1:{proxy.port}") as ws:
            await ws.send("not intercepted")
            assert await ws.recv() == "not intercepted"
        assert (await proxy.sink.wait_for(HttpExchange)).method == "CONNECT"
        assert not proxy.sink.of(FrameSeen)


async def test_proxy_auth_answers_407_without_credentials_and_passes_with_them(
    nursery: trio.Nursery, start_forward: StartForward
) -> None:
    with trio.fail_after(10):
        port = await _ws_host(nursery)
        proxy = await start_forward(proxy_auth="alice:s3cret")
        _stream, head = await _connect(proxy, f"127.0.0.1:{port}")
        assert head.startswith(b"HTTP/1.1 407 ")
        assert b'proxy-authenticate: basic realm="wsinspect"' in head.lower()
        wrong = base64.b64encode(b"alice:nope").decode()
        _stream, head = await _connect(proxy, f"127.0.0.1:{port}",
                                       f"Proxy-Authorization: Basic {wrong}\r\n")
        assert head.startswith(b"HTTP/1.1 407 ")
        async with connect(f"ws://127.0.0.1:{port}/",
                           proxy=f"http://alice:s3cret@127.0.0.1:{proxy.port}") as ws:
            await ws.send("authorised")
            assert await ws.recv() == "authorised"


async def test_proxy_credentials_are_not_sent_on_and_are_redacted(
    nursery: trio.Nursery, start_forward: StartForward
) -> None:
    seen: list[h11.Request] = []

    async def handler(stream: trio.SocketStream) -> None:
        conn = h11.Connection(h11.SERVER)
        while not isinstance(event := conn.next_event(), h11.EndOfMessage):
            if event is h11.NEED_DATA:
                conn.receive_data(await stream.receive_some(65536))
            elif isinstance(event, h11.Request):
                seen.append(event)
        await stream.send_all(conn.send(h11.Response(status_code=204, headers=[])) or b"")
        await stream.send_all(conn.send(h11.EndOfMessage()) or b"")

    with trio.fail_after(10):
        _host, port = await start_raw_server(nursery, handler)
        proxy = await start_forward(proxy_auth="alice:s3cret")
        token = base64.b64encode(b"alice:s3cret").decode()
        stream = await trio.open_tcp_stream("127.0.0.1", proxy.port)
        await stream.send_all(f"GET http://127.0.0.1:{port}/x HTTP/1.1\r\nHost: 127.0.0.1\r\n"
                              f"Proxy-Authorization: Basic {token}\r\n\r\n".encode())
        assert (await read_until(stream, b"\r\n\r\n")).startswith(b"HTTP/1.1 204 ")
        assert seen and b"proxy-authorization" not in dict(seen[0].headers)


# ---- bad input and failures -----------------------------------------------------------------


async def test_connect_to_a_refusing_port_gets_502_with_the_reason(
    start_forward: StartForward
) -> None:
    with trio.fail_after(10):
        proxy = await start_forward()
        closed = trio.socket.socket()
        await closed.bind(("127.0.0.1", 0))
        port = closed.getsockname()[1]
        closed.close()
        stream, head = await _connect(proxy, f"127.0.0.1:{port}")
        body = head + await read_to_eof(stream)
        assert body.startswith(b"HTTP/1.1 502 ")
        assert b"refused" in body.lower()
        tunnel = await proxy.sink.wait_for(HttpExchange)
        assert (tunnel.method, tunnel.status) == ("CONNECT", 502)


async def test_connect_to_a_host_that_does_not_resolve_gets_502(start_forward: StartForward) -> None:
    with trio.fail_after(20):
        proxy = await start_forward()
        stream, head = await _connect(proxy, "no-such-host.invalid:443")
        body = head + await read_to_eof(stream)
        assert body.startswith((b"HTTP/1.1 502 ", b"HTTP/1.1 504 "))
        assert b"no-such-host.invalid" in body


@pytest.mark.parametrize("request_bytes", [
    b"\x16\x03\x01garbage that is no request\r\n\r\n",
    b"GET /not-absolute HTTP/1.1\r\nHost: x\r\n\r\n",
    b"CONNECT nonsense HTTP/1.1\r\nHost: x\r\n\r\n",
    b"CONNECT [::1:443 HTTP/1.1\r\nHost: x\r\n\r\n",
])
async def test_garbage_and_requests_a_proxy_cannot_serve_get_400(
    start_forward: StartForward, request_bytes: bytes
) -> None:
    with trio.fail_after(10):
        proxy = await start_forward()
        stream = await trio.open_tcp_stream("127.0.0.1", proxy.port)
        await stream.send_all(request_bytes)
        assert (await read_to_eof(stream)).startswith(b"HTTP/1.1 400 ")


async def test_a_silent_tunnel_is_closed_after_the_handshake_timeout(
    nursery: trio.Nursery, start_forward: StartForward
) -> None:
    with trio.fail_after(10):
        port = await _ws_host(nursery)
        proxy = await start_forward(handshake_timeout=0.3)
        stream, head = await _connect(proxy, f"127.0.0.1:{port}")
        assert head.startswith(b"HTTP/1.1 200 ")
        assert await read_to_eof(stream) == b""
        notice = await proxy.sink.wait_for(Notice, lambda n: "sent nothing" in n.text)
        assert f"127.0.0.1:{port}" in notice.text


async def test_a_client_that_rejects_the_certificate_gets_a_log_line_naming_wsinspect_ca(
    nursery: trio.Nursery, start_forward: StartForward, upstream_ca: trustme.CA
) -> None:
    with trio.fail_after(10):
        port = await _wss_host(nursery, upstream_ca)
        proxy = await start_forward()

        def handshake() -> None:  # a blocking OpenSSL client: it sends its alert, as browsers do
            with socket.create_connection(("127.0.0.1", proxy.port), timeout=5) as sock:
                sock.sendall(f"CONNECT localhost:{port} HTTP/1.1\r\nHost: x\r\n\r\n".encode())
                assert sock.recv(1024).startswith(b"HTTP/1.1 200 ")
                untrusting = ssl.create_default_context()  # the system store only
                with pytest.raises(ssl.SSLCertVerificationError):
                    untrusting.wrap_socket(sock, server_hostname="localhost")

        await trio.to_thread.run_sync(handshake)
        notice = await proxy.sink.wait_for(Notice, lambda n: "rejected" in n.text)
        assert "localhost" in notice.text and "wsinspect ca" in notice.text


async def test_an_upstream_whose_certificate_fails_verification_gives_502(
    nursery: trio.Nursery, start_forward: StartForward, upstream_ca: trustme.CA,
    trusting: ssl.SSLContext,
) -> None:
    with trio.fail_after(10):
        port = await _wss_host(nursery, upstream_ca)
        proxy = await start_forward(upstream_ca=None)  # the real host's CA is not trusted
        with pytest.raises(Exception, match="502"):
            async with connect(f"wss://localhost:{port}/", ssl=trusting,
                               proxy=f"http://127.0.0.1:{proxy.port}"):
                pass
        rejected = await proxy.sink.wait_for(HandshakeRejected)
        assert rejected.status == 502 and "certificate" in rejected.reason


async def test_the_ca_key_is_never_in_the_events(
    nursery: trio.Nursery, start_forward: StartForward, upstream_ca: trustme.CA,
    trusting: ssl.SSLContext, ca_dir: Path,
) -> None:
    with trio.fail_after(10):
        port = await _wss_host(nursery, upstream_ca)
        proxy = await start_forward()
        async with connect(f"wss://localhost:{port}/", ssl=trusting,
                           proxy=f"http://127.0.0.1:{proxy.port}") as ws:
            await ws.send("x")
            await ws.recv()
        key = CertificateAuthority.load_or_create(ca_dir).key_path.read_text()
        body = "".join(line for line in key.splitlines() if "-----" not in line)
        assert body[:40] not in repr(proxy.sink.events)


async def test_hostile_bytes_never_break_the_proxy_or_another_connection(
    nursery: trio.Nursery, start_forward: StartForward
) -> None:
    import random

    rng = random.Random(13)
    with trio.fail_after(30):
        port = await _ws_host(nursery)
        proxy = await start_forward(handshake_timeout=0.5)
        heads = [b"", b"\x16\x03\x01", b"\x16\x03\x01\x00\x05\x01\x00\x00\x01\x00",
                 b"GET / HTTP/1.1\r\n", b"\x16\x03\x03\x00\x10" + bytes(16)]
        for i in range(24):
            junk = rng.choice(heads) + rng.randbytes(rng.randrange(0, 300))
            stream = await trio.open_tcp_stream("127.0.0.1", proxy.port)
            if i % 2:  # inside a tunnel
                await stream.send_all(f"CONNECT 127.0.0.1:{port} HTTP/1.1\r\nHost: x\r\n\r\n".encode())
            with trio.move_on_after(0.5):
                try:
                    await stream.send_all(junk)
                    await read_to_eof(stream)
                except (trio.BrokenResourceError, trio.ClosedResourceError):
                    pass
            await stream.aclose()
        async with connect(f"ws://127.0.0.1:{port}/", proxy=f"http://127.0.0.1:{proxy.port}") as ws:
            await ws.send("still fine")
            assert await ws.recv() == "still fine"
        failures = [n.text for n in proxy.sink.of(Notice) if "connection failed" in n.text]
        assert failures == []


async def test_faults_act_on_websockets_in_a_tunnel_as_in_reverse_mode(
    nursery: trio.Nursery, start_forward: StartForward
) -> None:
    from wsinspect.faults.spec import parse_fault

    with trio.fail_after(10):
        port = await _ws_host(nursery)
        proxy = await start_forward(faults=(parse_fault("drop:dir=c2s,match=^secret"),))
        async with connect(f"ws://127.0.0.1:{port}/", proxy=f"http://127.0.0.1:{proxy.port}") as ws:
            await ws.send("secret one")
            await ws.send("public")
            assert await ws.recv() == "public"  # the dropped message never reached the host


async def test_the_frames_seen_are_the_same_as_in_reverse_mode(
    nursery: trio.Nursery, start_forward: StartForward, start_proxy: Any
) -> None:
    def shape(sink: Collector) -> list[tuple[object, ...]]:
        return [(f.direction, f.frame.opcode, f.frame.fin, f.frame.rsv1, f.frame.length,
                 f.frame.masked, f.frame.payload, f.frame.violations) for f in sink.of(FrameSeen)]

    with trio.fail_after(10):
        port = await _ws_host(nursery)
        forward = await start_forward()
        reverse = await start_proxy(f"ws://127.0.0.1:{port}")
        for url, proxy_url in ((f"ws://127.0.0.1:{port}/same", f"http://127.0.0.1:{forward.port}"),
                               (reverse.url("/same"), None)):
            async with connect(url, proxy=proxy_url, compression=None) as ws:
                for message in ("one", b"\x00two", "three " * 100):
                    await ws.send(message)
                    assert await ws.recv() == message
        for proxy in (forward, reverse):
            await proxy.sink.wait_for(ConnectionClosed)
        assert shape(forward.sink) == shape(reverse.sink)
        assert len(shape(forward.sink)) == 8  # three messages and a close each way
