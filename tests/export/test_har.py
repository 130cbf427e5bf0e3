"""HAR 1.2 export in Chrome DevTools' WebSocket shape, and reading Chrome's HAR files."""

from __future__ import annotations

import argparse
import base64
import json
from pathlib import Path

from recording_samples import T0, every_kind

from wsinspect.commands import export
from wsinspect.events import ConnectionOpened, Event, FrameSeen, MessageSeen
from wsinspect.recording.reader import read_events, read_recording
from wsinspect.recording.writer import Recorder

# What Chrome DevTools saves for a page with one WebSocket (trimmed, same shape and names).
CHROME_HAR = {
    "log": {
        "version": "1.2",
        "creator": {"name": "WebInspector", "version": "537.36"},
        "pages": [{"startedDateTime": "2024-01-01T10:00:00.000Z", "id": "page_1", "title": "x",
                   "pageTimings": {}}],
        "entries": [
            {
                "_resourceType": "document",
                "request": {"method": "GET", "url": "https://example.org/", "headers": []},
                "response": {"status": 200, "headers": []},
                "startedDateTime": "2024-01-01T10:00:00.000Z",
            },
            {
                "_initiator": {"type": "script"},
                "_priority": "High",
                "_resourceType": "websocket",
                "cache": {},
                "connection": "1234",
                "pageref": "page_1",
                "request": {
                    "method": "GET",
                    "url": "wss://example.org/live?room=7",
                    "httpVersion": "HTTP/1.1",
                    "headers": [
                        {"name": "Host", "value": "example.org"},
                        {"name": "Sec-WebSocket-Protocol", "value": "v1.chat"},
                    ],
                    "queryString": [{"name": "room", "value": "7"}],
                    "cookies": [],
                    "headersSize": 420,
                    "bodySize": 0,
                },
                "response": {
                    "status": 101,
                    "statusText": "Switching Protocols",
                    "httpVersion": "HTTP/1.1",
                    "headers": [{"name": "Sec-WebSocket-Protocol", "value": "v1.chat"}],
                    "cookies": [],
                    "content": {"size": 0, "mimeType": "x-unknown"},
                    "redirectURL": "",
                    "headersSize": 130,
                    "bodySize": 0,
                    "_transferSize": 130,
                    "_error": None,
                },
                "serverIPAddress": "93.184.216.34",
                "startedDateTime": "2024-01-01T10:00:01.000Z",
                "time": 12.5,
                "timings": {"blocked": -1, "dns": -1, "ssl": -1, "connect": -1, "send": 0,
                            "wait": 0, "receive": 0},
                "_webSocketMessages": [
                    {"type": "send", "time": 1704103201.5, "opcode": 1, "data": '{"join":7}'},
                    {"type": "receive", "time": 1704103201.6, "opcode": 1, "data": '{"ok":true}'},
                    {"type": "receive", "time": 1704103201.7, "opcode": 2, "data": "AAEC"},
                ],
            },
        ],
    }
}


def run_export(argv: list[str]) -> int:
    parser = argparse.ArgumentParser()
    export.configure(parser)
    return export.run(parser.parse_args(argv))


def exported(tmp_path: Path, events: list[Event]) -> dict:
    rec = tmp_path / "rec.jsonl"
    r = Recorder.create(str(rec))
    for event in events:
        r.publish(event)
    r.close()
    out = tmp_path / "out.har"
    assert run_export([str(rec), "--format", "har", "-o", str(out)]) == 0
    return json.loads(out.read_text("utf-8"))


def test_har_has_one_websocket_entry_per_connection(tmp_path: Path) -> None:
    doc = exported(tmp_path, every_kind())
    assert doc["log"]["version"] == "1.2"
    assert doc["log"]["creator"]["name"] == "wsinspect"
    entries = doc["log"]["entries"]
    # conns 1 and 2 opened, 3 was refused; the plain HTTP exchange is not a WebSocket
    assert [e["_wsinspect"]["conn"] for e in entries] == [1, 2, 3]
    assert all(e["_resourceType"] == "websocket" for e in entries)
    for entry in entries:
        for key in ("startedDateTime", "time", "request", "response", "cache", "timings"):
            assert key in entry
        assert entry["request"]["method"] == "GET"
        for key in ("url", "httpVersion", "cookies", "headers", "queryString", "headersSize", "bodySize"):
            assert key in entry["request"]
        for key in ("status", "statusText", "content", "redirectURL", "headersSize", "bodySize"):
            assert key in entry["response"]
    assert entries[2]["response"]["status"] == 403


def test_handshake_is_the_request_and_response(tmp_path: Path) -> None:
    entry = exported(tmp_path, every_kind())["log"]["entries"][0]
    assert entry["request"]["url"] == "ws://127.0.0.1:9000/chat?room=1"
    assert entry["request"]["queryString"] == [{"name": "room", "value": "1"}]
    assert {"name": "Sec-WebSocket-Protocol", "value": "chat"} in entry["request"]["headers"]
    assert entry["response"]["status"] == 101
    assert entry["response"]["statusText"] == "Switching Protocols"
    assert entry["startedDateTime"] == "2023-11-14T22:13:20.000Z"


def test_messages_are_listed_like_chrome_devtools(tmp_path: Path) -> None:
    messages = exported(tmp_path, every_kind())["log"]["entries"][0]["_webSocketMessages"]
    assert [(m["type"], m["opcode"]) for m in messages] == [
        ("send", 1), ("receive", 1), ("send", 1), ("send", 2), ("receive", 2), ("send", 8),
        ("receive", 8),
    ]
    assert messages[0]["data"] == "héllo"
    assert messages[2]["data"] == "fragmented"  # one item per message, not per frame
    assert base64.b64decode(messages[3]["data"]) == bytes(range(256)) * 2
    assert base64.b64decode(messages[4]["data"]) == b"\xff\xfe\x00"
    assert all(T0 < m["time"] < T0 + 2 for m in messages)  # epoch seconds


def test_what_the_proxy_wrote_is_a_message_marked_written(tmp_path: Path) -> None:
    messages = exported(tmp_path, every_kind())["log"]["entries"][1]["_webSocketMessages"]
    written = [(m["type"], m["data"], m["_written"]) for m in messages if "_written" in m]
    assert written == [("receive", "fixed", "edited")]  # the injected ping is no message
    back = [e for e in read_events(str(tmp_path / "out.har")) if isinstance(e, FrameSeen)]
    assert [(e.frame.payload, e.written) for e in back if e.written] == [(b"fixed", "edited")]


def test_truncated_message_says_so(tmp_path: Path) -> None:
    messages = exported(tmp_path, every_kind())["log"]["entries"][1]["_webSocketMessages"]
    big = messages[0]
    assert (big["_truncated"], big["_length"]) == (True, 5000)
    assert len(base64.b64decode(big["data"])) == 1000


def test_chrome_har_reads_as_open_frames_and_messages(tmp_path: Path) -> None:
    path = tmp_path / "chrome.har"
    path.write_text(json.dumps(CHROME_HAR, indent=2), "utf-8")
    recording = read_recording(str(path))
    assert recording.kind == "har"
    events = list(recording.events)
    opened = events[0]
    assert isinstance(opened, ConnectionOpened)
    assert (opened.path, opened.upstream, opened.subprotocol) == ("/live?room=7", "wss://example.org", "v1.chat")
    frames = [e for e in events if isinstance(e, FrameSeen)]
    assert [(f.direction, f.frame.opcode, f.frame.payload) for f in frames] == [
        ("c2s", 1, b'{"join":7}'), ("s2c", 1, b'{"ok":true}'), ("s2c", 2, b"\x00\x01\x02"),
    ]
    assert frames[0].frame.masked and not frames[1].frame.masked
    assert len([e for e in events if isinstance(e, MessageSeen)]) == 3


def test_our_har_reads_back_with_the_same_messages(tmp_path: Path) -> None:
    exported(tmp_path, every_kind())
    original = [e for e in read_events(str(tmp_path / "rec.jsonl")) if isinstance(e, MessageSeen)]
    back = [e for e in read_events(str(tmp_path / "out.har")) if isinstance(e, MessageSeen)]
    assert [(m.conn, m.direction, m.message.payload) for m in back] == [
        (m.conn, m.direction, m.message.payload) for m in original
    ]
