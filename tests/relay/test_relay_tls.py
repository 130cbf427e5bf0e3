"""TLS on both sides: a wss:// upstream verified against a CA, and wss:// for clients."""

from __future__ import annotations

import ssl
from pathlib import Path

import pytest
import trio
import trustme
from relay_helpers import StartProxy, echo, read_to_eof, start_ws_server, upgrade_request
from websockets.trio.client import connect

from wsinspect.events import HandshakeRejected, Notice

pytestmark = pytest.mark.trio


@pytest.fixture(scope="module")
def ca() -> trustme.CA:
    return trustme.CA()


@pytest.fixture
def ca_file(ca: trustme.CA, tmp_path: Path) -> str:
    path = tmp_path / "ca.pem"
    ca.cert_pem.write_to_path(str(path))
    return str(path)


@pytest.fixture
def serving_tls(ca: trustme.CA, tmp_path: Path) -> tuple[str, str, ssl.SSLContext]:
    """A certificate and key for the proxy to serve TLS with, and a client context trusting
    them."""
    cert = ca.issue_cert("127.0.0.1")
    cert_file, key_file = tmp_path / "cert.pem", tmp_path / "key.pem"
    cert.cert_chain_pems[0].write_to_path(str(cert_file))
    cert.private_key_pem.write_to_path(str(key_file))
    client_ctx = ssl.create_default_context()
    ca.configure_trust(client_ctx)
    return str(cert_file), str(key_file), client_ctx


async def _wss_upstream(nursery: trio.Nursery, ca: trustme.CA) -> str:
    ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ca.issue_cert("localhost", "127.0.0.1").configure_cert(ctx)
    url = await start_ws_server(nursery, echo, ssl=ctx, compression=None)
    return url.replace("ws://", "wss://")


async def test_wss_upstream_verified_with_upstream_ca(
    nursery: trio.Nursery, start_proxy: StartProxy, ca: trustme.CA, ca_file: str
) -> None:
    with trio.fail_after(10):
        proxy = await start_proxy(await _wss_upstream(nursery, ca), upstream_ca=ca_file)
        async with connect(proxy.url(), proxy=None, compression=None) as ws:
            await ws.send("over tls")
            assert await ws.recv() == "over tls"


async def test_wss_upstream_with_an_unknown_ca_gives_502(
    nursery: trio.Nursery, start_proxy: StartProxy, ca: trustme.CA
) -> None:
    with trio.fail_after(10):
        proxy = await start_proxy(await _wss_upstream(nursery, ca))
        stream = await trio.open_tcp_stream("127.0.0.1", proxy.port)
        await stream.send_all(upgrade_request())
        answer = await read_to_eof(stream)
        assert answer.startswith(b"HTTP/1.1 502 ")
        assert b"certificate" in answer
        assert (await proxy.sink.wait_for(HandshakeRejected)).status == 502


async def test_insecure_skips_verification_and_warns_on_every_connection(
    nursery: trio.Nursery, start_proxy: StartProxy, ca: trustme.CA
) -> None:
    with trio.fail_after(10):
        proxy = await start_proxy(await _wss_upstream(nursery, ca), insecure=True)
        for _ in range(2):
            async with connect(proxy.url(), proxy=None, compression=None) as ws:
                await ws.send("x")
                assert await ws.recv() == "x"
        warnings = [n for n in proxy.sink.of(Notice) if n.level == "warning" and n.conn]
        assert len(warnings) == 2 and "not verified" in warnings[0].text


async def test_listening_with_tls_serves_wss_clients(
    nursery: trio.Nursery, start_proxy: StartProxy,
    serving_tls: tuple[str, str, ssl.SSLContext],
) -> None:
    cert_file, key_file, client_ctx = serving_tls
    with trio.fail_after(10):
        upstream = await start_ws_server(nursery, echo, compression=None)
        proxy = await start_proxy(upstream, cert=cert_file, key=key_file)
        async with connect(proxy.url(scheme="wss"), ssl=client_ctx, proxy=None,
                           compression=None) as ws:
            await ws.send("secure hop")
            assert await ws.recv() == "secure hop"


async def test_a_held_message_is_edited_and_a_message_injected_over_tls_both_ways(
    nursery: trio.Nursery, start_proxy: StartProxy, ca: trustme.CA, ca_file: str,
    serving_tls: tuple[str, str, ssl.SSLContext],
) -> None:
    """TLS toward the client and the upstream: the proxy writes its own frames into both."""
    from wsinspect.events import MessageAction
    from wsinspect.intercept.breakpoints import parse_breakpoint
    from wsinspect.intercept.commands import ResumeHeld, SendMessage

    cert_file, key_file, client_ctx = serving_tls
    with trio.fail_after(10):
        proxy = await start_proxy(await _wss_upstream(nursery, ca), upstream_ca=ca_file,
                                  cert=cert_file, key=key_file,
                                  breakpoints=(parse_breakpoint("re:^secret"),))
        async with connect(proxy.url(scheme="wss"), ssl=client_ctx, proxy=None,
                           compression=None) as ws:
            await ws.send("secret plan")
            held = await proxy.sink.wait_for(MessageAction, lambda e: e.action == "held")
            await proxy.relay.execute(ResumeHeld(held.held, b"public plan"))
            assert await ws.recv() == "public plan"  # the edit, echoed by the upstream
            await proxy.relay.execute(SendMessage(1, "upstream", "text", b"to the echo"))
            assert await ws.recv() == "to the echo"
            await proxy.relay.execute(SendMessage(1, "client", "binary", b"\x01\x02"))
            assert await ws.recv() == b"\x01\x02"
