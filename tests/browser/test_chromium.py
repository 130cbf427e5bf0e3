"""A real browser through wsinspect: headless Chromium talks to a compressing upstream via the
proxy, and the log and the recording show what Chrome really sent.

Chromium negotiates permessage-deflate (RFC 7692) on its own, masks every frame with a fresh key
(RFC 6455 §5.3) and closes with the code the page asks for (§7.1.5): exactly what a user
debugging a web app sees. These tests skip when Chromium or the ``playwright`` package is absent
(``apt-get install chromium``; no browser download is needed, the system one is driven).
"""

from __future__ import annotations

import base64
import json
import random
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from browser_helpers import (
    WS_PATH,
    Process,
    Upstream,
    chromium_page,
    require_chromium,
    running,
)

from wsinspect.events import (
    ConnectionClosed,
    ConnectionOpened,
    Event,
    FrameSeen,
    HttpExchange,
    MessageSeen,
)
from wsinspect.recording.format import to_dict
from wsinspect.recording.reader import read_events

# Text a user would send: ASCII, JSON, non-ASCII (2-, 3- and 4-byte UTF-8), and one large
# message (about 200 KiB) that Chrome compresses and the upstream compresses back.
LARGE = "".join(f"line {i:05d}: grüße, 漢字, 🚀 — the quick brown fox\n" for i in range(3600))
# And about 200 KiB that hardly compresses, so its frames span many reads on both sides.
NOISE = base64.b64encode(random.Random(6455).randbytes(150 * 1024)).decode("ascii")
MESSAGES = [
    "hello",
    '{"op": "subscribe", "topic": "prices"}',
    "grüße · 漢字 · 🚀",
    LARGE,
    "",
    NOISE,
]
CLOSE_CODE = 4000
CLOSE_REASON = "done ✓"


@pytest.fixture(scope="module")
def chromium() -> str:
    return require_chromium()


@pytest.fixture(scope="module")
def upstream() -> Iterator[Upstream]:
    server = Upstream()
    try:
        yield server
    finally:
        server.stop()


def start_proxy(upstream: Upstream, record: Path) -> Process:
    return Process("proxy", "--listen", "127.0.0.1:0", "--upstream", upstream.ws_url,
                   "--log-format", "json", "--record", str(record))


def proxy_port(process: Process) -> int:
    """The port from the proxy's first JSON line, the "listening on ws://..." notice."""
    line = process.wait_for_line(lambda s: '"listening on ' in s)
    match = re.search(r"listening on ws://127\.0\.0\.1:(\d+)", json.loads(line)["text"])
    assert match, line
    return int(match.group(1))


def exchange(page: Any, messages: list[str]) -> dict[str, Any]:
    result: dict[str, Any] = page.evaluate(
        "([m, c, r]) => exchange(m, c, r)", [messages, CLOSE_CODE, CLOSE_REASON]
    )
    return result


def websocket_events(events: list[Event]) -> list[Event]:
    """The events of the one WebSocket connection (the page's HTTP requests are others)."""
    conn = opened_event(events).conn
    return [e for e in events if getattr(e, "conn", None) == conn]


def opened_event(events: list[Event]) -> ConnectionOpened:
    opened = [e for e in events if isinstance(e, ConnectionOpened)]
    assert len(opened) == 1, opened
    return opened[0]


def header(headers: tuple[tuple[str, str], ...], name: str) -> str:
    return ", ".join(v for n, v in headers if n.lower() == name.lower())


@pytest.fixture(scope="module")
def recorded_session(
    chromium: str, upstream: Upstream, tmp_path_factory: pytest.TempPathFactory
) -> dict[str, Any]:
    """Chromium loads the page from the upstream and runs the exchange through the proxy;
    returns what the browser saw, the proxy's JSON log lines and the recording's events. One
    session, several checks on it (each test names one thing a user would look at)."""
    record = tmp_path_factory.mktemp("chrome") / "chrome.jsonl"
    process = start_proxy(upstream, record)
    try:
        port = proxy_port(process)
        with chromium_page(chromium) as page:
            page.goto(f"{upstream.http_url}?ws=ws://127.0.0.1:{port}{WS_PATH}")
            seen = exchange(page, MESSAGES)
        process.wait_for_line(lambda s: json.loads(s)["type"] == "close")
    finally:
        status = process.stop()
    assert status == 0, process.stderr
    return {
        "browser": seen,
        "log": [json.loads(line) for line in process.lines],
        "events": list(read_events(str(record))),
    }


def test_chromium_receives_exactly_the_echoes_through_the_proxy(
    recorded_session: dict[str, Any],
) -> None:
    seen = recorded_session["browser"]
    assert seen["received"] == MESSAGES
    assert (seen["code"], seen["reason"], seen["wasClean"]) == (CLOSE_CODE, CLOSE_REASON, True)


def test_the_recording_shows_chromes_deflate_offer_and_the_negotiated_extension(
    recorded_session: dict[str, Any],
) -> None:
    events = websocket_events(recorded_session["events"])
    opened = opened_event(events)
    offer = header(opened.request_headers, "Sec-WebSocket-Extensions")
    assert "permessage-deflate" in offer and "client_max_window_bits" in offer
    assert "Chrome/" in header(opened.request_headers, "User-Agent")
    assert opened.path == WS_PATH
    assert opened.extensions is not None and opened.extensions.startswith("permessage-deflate")
    assert recorded_session["browser"]["extensions"] == opened.extensions  # what Chrome got


def test_chromes_frames_are_masked_and_the_servers_are_not(
    recorded_session: dict[str, Any],
) -> None:
    frames = [e for e in websocket_events(recorded_session["events"]) if isinstance(e, FrameSeen)]
    c2s = [f.frame for f in frames if f.direction == "c2s"]
    s2c = [f.frame for f in frames if f.direction == "s2c"]
    assert c2s and s2c
    assert all(f.masked and f.mask_key is not None and len(f.mask_key) == 4 for f in c2s)
    # Chrome draws a fresh key for every frame (§5.3): a handful of frames never share one.
    assert len({f.mask_key for f in c2s}) == len(c2s)
    assert not any(f.masked for f in s2c)


def test_message_events_hold_the_inflated_text_both_ways(
    recorded_session: dict[str, Any],
) -> None:
    messages = [e for e in websocket_events(recorded_session["events"])
                if isinstance(e, MessageSeen)]
    for direction in ("c2s", "s2c"):
        mine = [m.message for m in messages if m.direction == direction]
        assert [m.payload.decode("utf-8") for m in mine] == MESSAGES, direction
        assert all(m.opcode == 1 and not m.truncated for m in mine)
        large = mine[MESSAGES.index(LARGE)]
        assert large.compressed and large.length == len(LARGE.encode("utf-8"))
        assert large.wire_len < large.length // 4  # it really was compressed on the wire


def test_chrome_compresses_every_data_message(recorded_session: dict[str, Any]) -> None:
    events = websocket_events(recorded_session["events"])
    frames = [e.frame for e in events if isinstance(e, FrameSeen) and e.direction == "c2s"]
    # RSV1 on each message's first frame, never on a continuation (RFC 7692 §6.1). Chrome
    # 156 sends a large message that hardly compresses as several frames: each message event
    # says how many frames it was reassembled from.
    firsts = [f for f in frames if f.opcode in (1, 2)]
    assert len(firsts) == len(MESSAGES) and all(f.rsv1 for f in firsts)
    assert not any(f.rsv1 for f in frames if f.opcode == 0)
    counts = [m.message.frames for m in events
              if isinstance(m, MessageSeen) and m.direction == "c2s"]
    assert counts == [sum(f.message_no == n for f in frames) for n in range(1, len(counts) + 1)]


def test_large_echoes_arrive_fragmented_and_are_reassembled(
    recorded_session: dict[str, Any],
) -> None:
    events = websocket_events(recorded_session["events"])
    s2c = {m.message_no: m.message for m in events
           if isinstance(m, MessageSeen) and m.direction == "s2c"}
    fragmented = [m for m in s2c.values() if m.frames > 1]
    assert [m.payload.decode() for m in fragmented] == [LARGE, NOISE]
    # RSV1 marks only the first frame of a compressed message (RFC 7692 §6.1).
    frames = [e.frame for e in events if isinstance(e, FrameSeen) and e.direction == "s2c"
              and e.frame.opcode in (0, 1)]
    first_of = [f for f in frames if f.opcode == 1]
    assert all(f.rsv1 for f in first_of)
    assert not any(f.rsv1 for f in frames if f.opcode == 0)


def test_the_close_code_is_seen_both_ways_and_the_handshake_completes(
    recorded_session: dict[str, Any],
) -> None:
    events = websocket_events(recorded_session["events"])
    closed = [e for e in events if isinstance(e, ConnectionClosed)][-1]
    assert (closed.initiator, closed.how) == ("client", "close-handshake")
    assert closed.client_close == (CLOSE_CODE, CLOSE_REASON)
    assert closed.upstream_close is not None and closed.upstream_close[0] == CLOSE_CODE
    close_frames = [(e.direction, e.frame.close_code) for e in events
                    if isinstance(e, FrameSeen) and e.frame.opcode == 8]
    assert close_frames == [("c2s", CLOSE_CODE), ("s2c", CLOSE_CODE)]


def test_clean_browser_traffic_has_no_violations(recorded_session: dict[str, Any]) -> None:
    frames = [e for e in recorded_session["events"] if isinstance(e, FrameSeen)]
    assert frames
    assert [(f.seq, f.frame.violations) for f in frames if f.frame.violations] == []
    notes = [m.message.note for m in recorded_session["events"] if isinstance(m, MessageSeen)]
    assert not any(notes)


def test_the_json_log_and_the_recording_agree(recorded_session: dict[str, Any]) -> None:
    log = [d for d in recorded_session["log"] if d["type"] == "message"]
    recorded = [to_dict(e) for e in recorded_session["events"] if isinstance(e, MessageSeen)]
    assert [(d["dir"], d["payload"]) for d in log] == [(d["dir"], d["payload"]) for d in recorded]


# -- issue 2: the page itself loads through the proxy, and its WebSocket follows -------------------


def test_a_page_loaded_through_the_proxy_opens_its_websocket_through_it(
    chromium: str, upstream: Upstream, tmp_path: Path
) -> None:
    record = tmp_path / "page.jsonl"
    with running("proxy", "--listen", "127.0.0.1:0", "--upstream", upstream.ws_url,
                 "--log-format", "json", "--record", str(record)) as process:
        port = proxy_port(process)
        with chromium_page(chromium) as page:
            response = page.goto(f"http://127.0.0.1:{port}/")
            assert response is not None and response.status == 200
            assert page.title() == "browser test"
            seen = exchange(page, ["through the proxy", "ünïcödé"])
        process.wait_for_line(lambda s: json.loads(s)["type"] == "close")
    assert seen["url"] == f"ws://127.0.0.1:{port}{WS_PATH}"
    assert seen["received"] == ["through the proxy", "ünïcödé"]
    events = list(read_events(str(record)))
    pages = [e for e in events if isinstance(e, HttpExchange)]
    assert [(e.method, e.path, e.status) for e in pages][:1] == [("GET", "/", 200)]
    assert pages[0].size > 0
    ws = websocket_events(events)
    assert header(opened_event(ws).request_headers, "Origin") == f"http://127.0.0.1:{port}"
    for direction in ("c2s", "s2c"):
        messages = [e.message.payload.decode() for e in ws
                    if isinstance(e, MessageSeen) and e.direction == direction]
        assert messages == ["through the proxy", "ünïcödé"], direction


# -- `wsinspect demo`: the newcomer's first command, with a real browser ----------------------------


def start_demo() -> tuple[Process, str]:
    process = Process("demo", "--no-tui", "--port", "0", "--listen", "127.0.0.1:0")
    line = process.wait_for_line(lambda s: s.startswith("wsinspect demo: open http://"))
    match = re.search(r"open (http://\S+) in a browser", line)
    assert match, line
    return process, match.group(1)


def out_lines(page: Any) -> list[str]:
    lines: list[str] = page.eval_on_selector_all("#out > div", "ds => ds.map(d => d.textContent)")
    return lines


def test_the_demo_page_echoes_through_the_proxy_and_the_console_logs_each_frame() -> None:
    chromium = require_chromium()
    text = "héllo demo — 漢字"
    process, url = start_demo()
    try:
        with chromium_page(chromium) as page:
            problems: list[str] = []
            page.on("console", lambda m: problems.append(m.text) if m.type == "error" else None)
            page.on("pageerror", lambda e: problems.append(str(e)))
            page.goto(url)
            page.wait_for_function(
                "() => document.getElementById('out').textContent.includes('connected')"
            )
            page.fill("#msg", text)
            page.click("#send")
            page.wait_for_function(
                "t => document.getElementById('out').textContent.includes('← ' + t)", arg=text
            )
            page.click("#close")
            page.wait_for_function(
                "() => document.getElementById('out').textContent.includes('closed')"
            )
            shown = out_lines(page)
        process.wait_for_line(lambda s: " closed by client " in s)
    finally:
        process.stop()
    assert shown[:3] == ["connected", f"→ {text}", f"← {text}"]
    assert shown[3].startswith("closed: 1000")
    assert problems == []
    log = "\n".join(process.lines)
    # Chrome offered permessage-deflate and the demo's echo server took it.
    assert re.search(r"#1 open 127\.0\.0\.1:\d+ /echo .*extensions=permessage-deflate", log), log
    # Chrome's frame: compressed (RSV1), masked with its key; the echo: compressed, unmasked.
    assert re.search(r"#1 → text FIN RSV1 mask=[0-9a-f]{8} len=\d+ 0x[0-9a-f]+", log), log
    assert re.search(r"#1 ← text FIN RSV1 len=\d+ 0x[0-9a-f]+", log), log
    # ...and the messages, inflated: the text typed in the page, both ways.
    size = len(text.encode())
    for arrow in "→←":
        pattern = rf'#1 {arrow} message text len={size} wire_len=\d+ frames=1 "{text}"'
        assert re.search(pattern, log), log
    assert re.search(
        r'#1 → close FIN mask=[0-9a-f]{8} len=\d+ 1000 \(normal closure\) "bye from the demo page"',
        log,
    ), log
    assert "#1 closed by client (close-handshake)" in log


def test_a_long_message_stays_inside_the_demo_pages_output_box() -> None:
    chromium = require_chromium()
    process, url = start_demo()
    try:
        with chromium_page(chromium) as page:
            page.goto(url)
            page.wait_for_function(
                "() => document.getElementById('out').textContent.includes('connected')"
            )
            page.fill("#msg", "x" * 5000)
            page.click("#send")
            page.wait_for_function("() => document.querySelectorAll('#out > div').length >= 3")
            overflow = page.eval_on_selector("#out", "o => o.scrollWidth - o.clientWidth")
            shown = out_lines(page)
    finally:
        process.stop()
    assert overflow <= 0  # no horizontal scrolling: long words wrap
    assert all(len(line) < 1000 for line in shown)  # and long messages are cut for display
    assert "5000" in shown[2]  # ...saying how long they were


# -- what else a browser brings: cookies, Origin, subprotocols, binary, large messages, TLS --------

BIG_BINARY = 3 * 1024 * 1024


@pytest.fixture(scope="module")
def chat_session(chromium: str, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """The page and its WebSocket through the proxy, with a cookie set for the proxy's origin,
    subprotocols offered, binary messages (one of 3 MiB) and a 64 KiB capture limit."""
    upstream = Upstream(subprotocols=["superchat"])
    record = tmp_path_factory.mktemp("chat") / "chat.jsonl"
    try:
        with running("proxy", "--listen", "127.0.0.1:0", "--upstream", upstream.ws_url,
                     "--log-format", "json", "--record", str(record),
                     "--capture-limit", "64k") as process:
            port = proxy_port(process)
            with chromium_page(chromium) as page:
                origin = f"http://127.0.0.1:{port}"
                page.context.add_cookies([{"name": "session", "value": "abc123", "url": origin}])
                page.goto(f"{origin}/?ws=ws://127.0.0.1:{port}{WS_PATH}?room=1")
                seen = page.evaluate(
                    "([m, c, r, p]) => exchange(m, c, r, p)",
                    [
                        ["hi", {"binary": 4}, {"binary": BIG_BINARY}],
                        1000,
                        "ok",
                        ["chat", "superchat"],
                    ],
                )
            process.wait_for_line(lambda s: json.loads(s)["type"] == "close")
    finally:
        upstream.stop()
    return {"browser": seen, "port": port, "upstream": upstream,
            "events": list(read_events(str(record)))}


def test_chromes_cookie_origin_and_subprotocols_reach_the_upstream(
    chat_session: dict[str, Any],
) -> None:
    port = chat_session["port"]
    request = chat_session["upstream"].requests[0]
    assert request.path == f"{WS_PATH}?room=1"
    assert request.headers["Cookie"] == "session=abc123"
    assert request.headers["Origin"] == f"http://127.0.0.1:{port}"
    assert "Chrome/" in request.headers["User-Agent"]
    assert request.headers["Sec-WebSocket-Protocol"] == "chat, superchat"
    assert request.headers["Host"] == f"127.0.0.1:{chat_session['upstream'].port}"


def test_the_upstreams_subprotocol_choice_reaches_chromium(chat_session: dict[str, Any]) -> None:
    assert chat_session["browser"]["protocol"] == "superchat"
    assert opened_event(chat_session["events"]).subprotocol == "superchat"


def test_binary_messages_arrive_intact_even_past_the_capture_limit(
    chat_session: dict[str, Any],
) -> None:
    assert chat_session["browser"]["received"] == [
        "hi",
        {"binary": 4, "intact": True},
        {"binary": BIG_BINARY, "intact": True},
    ]
    messages = [e.message for e in websocket_events(chat_session["events"])
                if isinstance(e, MessageSeen)]
    big = [m for m in messages if m.length == BIG_BINARY]
    assert len(big) == 2  # both ways
    pattern = bytes(i * 7919 % 251 for i in range(64 * 1024))
    for m in big:
        # Recorded up to the capture limit, with the full length beside it.
        assert m.opcode == 2 and m.truncated and m.payload == pattern[: len(m.payload)]
        assert 0 < len(m.payload) <= 64 * 1024


def test_chromium_loads_the_page_and_talks_wss_through_a_tls_listener(
    chromium: str, upstream: Upstream, tmp_path: Path
) -> None:
    import trustme

    cert = trustme.CA().issue_cert("127.0.0.1")
    cert_file, key_file = tmp_path / "cert.pem", tmp_path / "key.pem"
    cert.cert_chain_pems[0].write_to_path(str(cert_file))
    cert.private_key_pem.write_to_path(str(key_file))
    record = tmp_path / "tls.jsonl"
    with running("proxy", "--listen", "127.0.0.1:0", "--upstream", upstream.ws_url,
                 "--cert", str(cert_file), "--key", str(key_file), "--log-format", "json",
                 "--record", str(record)) as process:
        line = process.wait_for_line(lambda s: "listening on wss://" in s)
        port = int(re.search(r"wss://127\.0\.0\.1:(\d+)", line).group(1))  # type: ignore[union-attr]
        # The test CA is not in Chromium's trust store; a user would add theirs.
        with chromium_page(chromium, ignore_https_errors=True) as page:
            response = page.goto(f"https://127.0.0.1:{port}/")
            assert response is not None and response.status == 200
            seen = exchange(page, ["over TLS ✓"])
        process.wait_for_line(lambda s: json.loads(s)["type"] == "close")
    assert seen["url"] == f"wss://127.0.0.1:{port}{WS_PATH}"
    assert seen["received"] == ["over TLS ✓"]
    assert (seen["code"], seen["wasClean"]) == (CLOSE_CODE, True)
    events = list(read_events(str(record)))
    assert [(e.method, e.path, e.status) for e in events if isinstance(e, HttpExchange)][:1] == [
        ("GET", "/", 200)
    ]
    shown = [
        e.message.payload.decode() for e in websocket_events(events) if isinstance(e, MessageSeen)
    ]
    assert shown == ["over TLS ✓", "over TLS ✓"]
