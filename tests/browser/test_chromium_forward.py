"""Headless Chromium configured with wsinspect as its proxy (``--proxy-server``), as a user
debugs an app whose URL cannot change: it loads an https page from a local server playing the
real host, then that page's wss WebSocket echoes, all through CONNECT tunnels whose TLS
wsinspect intercepts with its own CA (trusted here by its SPKI hash, as the docs show)."""

from __future__ import annotations

import json
import re
import ssl
from pathlib import Path

import trustme
from browser_helpers import WS_PATH, Upstream, chromium_page, require_chromium, running

from wsinspect.ca import CertificateAuthority
from wsinspect.events import ConnectionOpened, HttpExchange, MessageSeen
from wsinspect.recording.reader import read_events

EXCHANGE = """(url) => new Promise((resolve, reject) => {
  const ws = new WebSocket(url);
  const got = [];
  ws.onerror = () => reject(new Error("WebSocket error"));
  ws.onopen = () => { ws.send("through a forward proxy"); ws.send("grüße"); };
  ws.onmessage = (e) => { got.push(e.data); if (got.length === 2) ws.close(1000, "done"); };
  ws.onclose = (e) => resolve({got, code: e.code, url: ws.url});
})"""


def test_chromium_loads_an_https_page_and_its_wss_socket_through_the_forward_proxy(
    tmp_path: Path,
) -> None:
    executable = require_chromium()
    real_ca = trustme.CA()  # the real host's CA: wsinspect trusts it, Chromium never sees it
    server_ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    real_ca.issue_cert("localhost").configure_cert(server_ctx)
    real_ca_file = tmp_path / "real-ca.pem"
    real_ca.cert_pem.write_to_path(str(real_ca_file))
    ca_dir = tmp_path / "ca"
    spki = CertificateAuthority.load_or_create(ca_dir).spki_sha256_base64
    record = tmp_path / "forward.jsonl"
    upstream = Upstream(ssl=server_ctx)
    try:
        with running("proxy", "--forward", "--listen", "127.0.0.1:0", "--ca-dir", str(ca_dir),
                     "--upstream-ca", str(real_ca_file), "--log-format", "json",
                     "--record", str(record)) as process:
            line = process.wait_for_line(lambda s: "forward proxy on" in s)
            port = int(re.search(r"http://127\.0\.0\.1:(\d+)", line).group(1))  # type: ignore[union-attr]
            switches = (
                f"--proxy-server=http://127.0.0.1:{port}",
                "--proxy-bypass-list=<-loopback>",  # Chromium bypasses proxies for localhost
                f"--ignore-certificate-errors-spki-list={spki}",
            )
            with chromium_page(executable, args=switches) as page:
                response = page.goto(f"https://localhost:{upstream.port}/")
                assert response is not None and response.status == 200
                assert page.title() == "browser test"
                seen = page.evaluate(EXCHANGE, f"wss://localhost:{upstream.port}{WS_PATH}")
            process.wait_for_line(lambda s: json.loads(s)["type"] == "close")
    finally:
        upstream.stop()
    assert seen["got"] == ["through a forward proxy", "grüße"]
    assert seen["code"] == 1000
    events = list(read_events(str(record)))
    pages = [e for e in events if isinstance(e, HttpExchange)]
    assert ("GET", f"https://localhost:{upstream.port}/", 200) in [
        (e.method, e.path, e.status) for e in pages]
    opened = [e for e in events if isinstance(e, ConnectionOpened)]
    assert [e.upstream for e in opened] == [f"wss://localhost:{upstream.port}{WS_PATH}"]
    for direction in ("c2s", "s2c"):
        texts = [e.message.payload.decode() for e in events
                 if isinstance(e, MessageSeen) and e.direction == direction]
        assert texts == ["through a forward proxy", "grüße"], direction
