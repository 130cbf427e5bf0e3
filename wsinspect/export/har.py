"""HAR 1.2 (HTTP Archive) export, and reading the HAR files Chrome DevTools saves.

Chrome DevTools writes each WebSocket as one entry whose request/response are the opening
handshake (RFC 6455 §4), with ``"_resourceType": "websocket"`` and ``"_webSocketMessages"``: a
list of ``{"type": "send"|"receive", "time": <epoch seconds>, "opcode": n, "data": str}``, where
``data`` is the text of a text message (opcode 1) and base64 otherwise. wsinspect writes the same
shape, so its exports open in Chrome's and other HAR viewers, and reads that shape back.

What a HAR cannot hold: frame boundaries, masks, control frames other than close, and payloads
beyond the capture limit. An export keeps one item per data *message* (plus close frames as
opcode 8), marks cut payloads with ``_truncated``/``_length``, and a HAR read back yields one
unfragmented frame (and one message) per item.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Callable, Iterable
from datetime import UTC, datetime
from typing import IO, Any
from urllib.parse import parse_qsl, urlsplit

from wsinspect import __version__
from wsinspect.events import (
    ConnectionClosed,
    ConnectionOpened,
    Event,
    FrameSeen,
    HandshakeRejected,
    MessageSeen,
)
from wsinspect.wire.frames import Frame
from wsinspect.wire.messages import Message
from wsinspect.wire.sides import Direction

__all__ = ["har_events", "looks_like_har", "write_har"]

_STATUS_TEXT = {101: "Switching Protocols", 400: "Bad Request", 403: "Forbidden",
                426: "Upgrade Required", 431: "Request Header Fields Too Large",
                502: "Bad Gateway", 504: "Gateway Timeout"}


def _iso(ts: float) -> str:
    return datetime.fromtimestamp(ts, UTC).isoformat(timespec="milliseconds").replace(
        "+00:00", "Z"
    )


def _headers(pairs: Iterable[tuple[str, str]]) -> list[dict[str, str]]:
    return [{"name": n, "value": v} for n, v in pairs]


def _cookies(pairs: Iterable[tuple[str, str]], header: str) -> list[dict[str, str]]:
    out = []
    for name, value in pairs:
        if name.lower() != header:
            continue
        parts = value.split(";") if header == "cookie" else value.split(";")[:1]
        for part in parts:
            key, sep, val = part.strip().partition("=")
            if sep:
                out.append({"name": key, "value": val})
    return out


def _url(upstream: str, path: str) -> str:
    """The URL the client asked for, on the upstream's scheme and host (the proxy appends the
    client's path to the upstream's prefix)."""
    if not upstream:
        return "ws://unknown" + path
    parts = urlsplit(upstream)
    if parts.path and parts.path != "/" and (parts.path + ("?" + parts.query if parts.query else "")).endswith(path):
        return upstream
    return f"{parts.scheme}://{parts.netloc}{parts.path.rstrip('/')}{path}"


class _Conn:
    __slots__ = ("close", "messages", "open", "rejected")

    def __init__(self) -> None:
        self.open: ConnectionOpened | None = None
        self.rejected: HandshakeRejected | None = None
        self.close: ConnectionClosed | None = None
        self.messages: list[dict[str, Any]] = []


#: Frames of the proxy's that carry a message of their own (a re-compressed one is the sender's
#: message again, already in the HAR as that message).
WRITTEN = ("edited", "injected")


def _item(direction: Direction, ts: float, opcode: int, payload: bytes, length: int) -> dict[str, Any]:
    if opcode == 1:
        data = payload.decode("utf-8", "replace")
    else:
        data = base64.b64encode(payload).decode("ascii")
    item: dict[str, Any] = {
        "type": "send" if direction == "c2s" else "receive",
        "time": ts,
        "opcode": opcode,
        "data": data,
    }
    if length > len(payload):
        item["_truncated"] = True
        item["_length"] = length
    return item


def write_har(events: Iterable[Event], out: IO[str]) -> int:
    """Write the WebSocket connections of ``events`` as a HAR 1.2 document; return the number
    of entries. Refused handshakes become entries too (with their status and no messages)."""
    conns: dict[int, _Conn] = {}
    for event in events:
        if isinstance(event, ConnectionOpened):
            conns.setdefault(event.conn, _Conn()).open = event
        elif isinstance(event, HandshakeRejected):
            conns.setdefault(event.conn, _Conn()).rejected = event
        elif isinstance(event, ConnectionClosed):
            conns.setdefault(event.conn, _Conn()).close = event
        elif isinstance(event, MessageSeen):
            m = event.message
            conns.setdefault(event.conn, _Conn()).messages.append(
                _item(event.direction, event.ts, m.opcode, m.payload, m.length)
            )
        elif isinstance(event, FrameSeen) and (
            event.frame.opcode == 8 or (event.written in WRITTEN and event.frame.opcode < 8)
        ):
            # Close frames, and the messages the proxy wrote itself (they have no message
            # event): marked ``_written``, beside the sender's own message.
            f = event.frame
            item = _item(event.direction, event.ts, f.opcode, f.payload, f.length)
            if event.written is not None:
                item["_written"] = event.written
            conns.setdefault(event.conn, _Conn()).messages.append(item)
    entries = []
    for conn_id, c in sorted(conns.items()):
        entry = _entry(conn_id, c)
        if entry is not None:
            entries.append(entry)
    doc = {
        "log": {
            "version": "1.2",
            "creator": {"name": "wsinspect", "version": __version__},
            "pages": [],
            "entries": entries,
        }
    }
    json.dump(doc, out, ensure_ascii=False, indent=1)
    out.write("\n")
    return len(entries)


def _entry(conn_id: int, c: _Conn) -> dict[str, Any] | None:
    if c.open is not None:
        o = c.open
        ts, path, upstream, status = o.ts, o.path, o.upstream, o.status
        req_h, resp_h, client = o.request_headers, o.response_headers, o.client
    elif c.rejected is not None:
        r = c.rejected
        ts, path, upstream, status = r.ts, r.path, "", r.status
        req_h, resp_h, client = r.request_headers, (), r.client
    else:
        return None
    host = next((v for n, v in req_h if n.lower() == "host"), "")
    if not upstream and host:
        upstream = f"ws://{host}"
    url = _url(upstream, path)
    end = c.close.ts if c.close is not None else max([ts] + [m["time"] for m in c.messages])
    entry: dict[str, Any] = {
        "startedDateTime": _iso(ts),
        "time": max(0.0, (end - ts) * 1000),
        "request": {
            "method": "GET",
            "url": url,
            "httpVersion": "HTTP/1.1",
            "cookies": _cookies(req_h, "cookie"),
            "headers": _headers(req_h),
            "queryString": [
                {"name": k, "value": v}
                for k, v in parse_qsl(urlsplit(url).query, keep_blank_values=True)
            ],
            "headersSize": -1,
            "bodySize": 0,
        },
        "response": {
            "status": status,
            "statusText": _STATUS_TEXT.get(status, ""),
            "httpVersion": "HTTP/1.1",
            "cookies": _cookies(resp_h, "set-cookie"),
            "headers": _headers(resp_h),
            "content": {"size": 0, "mimeType": "x-unknown"},
            "redirectURL": "",
            "headersSize": -1,
            "bodySize": 0,
        },
        "cache": {},
        "timings": {"blocked": -1, "dns": -1, "connect": -1, "send": 0, "wait": 0, "receive": 0},
        "_resourceType": "websocket",
        "_webSocketMessages": c.messages,
        "_wsinspect": {"conn": conn_id, "client": client},
    }
    if c.rejected is not None:
        entry["_wsinspect"]["rejected"] = c.rejected.reason
    if c.close is not None:
        cl = c.close
        entry["_wsinspect"]["close"] = {"initiator": cl.initiator, "how": cl.how,
                                        "code": cl.code, "reason": cl.reason}
    return entry


# -- reading a HAR (Chrome DevTools, or our own export)


def looks_like_har(doc: Any) -> bool:
    return (
        isinstance(doc, dict)
        and isinstance(doc.get("log"), dict)
        and isinstance(doc["log"].get("entries"), list)
    )


def _parse_time(text: str) -> float:
    try:
        return datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp()
    except (ValueError, AttributeError):
        return 0.0


def _is_websocket(entry: dict[str, Any]) -> bool:
    if entry.get("_resourceType") == "websocket" or "_webSocketMessages" in entry:
        return True
    url = str(entry.get("request", {}).get("url", ""))
    return url.startswith(("ws://", "wss://"))


def har_events(doc: dict[str, Any], *, warn: Callable[[str], None]) -> list[Event]:
    """Turn each WebSocket entry of a HAR into ``open`` + ``frame``/``message`` events, sorted
    by time; other entries are ignored. Frames get no mask key and no header bytes (a HAR keeps
    neither); client frames are marked masked, as RFC 6455 §5.1 requires."""
    events: list[Event] = []
    skipped = 0
    conn = 0
    for entry in doc["log"]["entries"]:
        if not isinstance(entry, dict) or not _is_websocket(entry):
            continue
        try:
            conn += 1
            events.extend(_entry_events(conn, entry))
        except (KeyError, TypeError, ValueError):
            skipped += 1
    if skipped:
        warn(f"{skipped} malformed WebSocket entries in the HAR skipped")
    events.sort(key=lambda e: e.ts)
    return events


def _entry_events(conn: int, entry: dict[str, Any]) -> list[Event]:
    request = entry.get("request", {})
    response = entry.get("response", {})
    parts = urlsplit(str(request.get("url", "")))
    path = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
    req_h = tuple((str(h["name"]), str(h["value"])) for h in request.get("headers", ()))
    resp_h = tuple((str(h["name"]), str(h["value"])) for h in response.get("headers", ()))

    def header(name: str) -> str | None:
        return next((v for n, v in resp_h if n.lower() == name), None)

    ts = _parse_time(str(entry.get("startedDateTime", "")))
    extra = entry.get("_wsinspect", {}) if isinstance(entry.get("_wsinspect"), dict) else {}
    out: list[Event] = [
        ConnectionOpened(
            conn=conn,
            ts=ts,
            client=str(extra.get("client", "")),
            path=path,
            upstream=f"{parts.scheme}://{parts.netloc}",
            request_headers=req_h,
            status=int(response.get("status", 101) or 101),
            response_headers=resp_h,
            subprotocol=header("sec-websocket-protocol"),
            extensions=header("sec-websocket-extensions"),
        )
    ]
    counts = {"c2s": 0, "s2c": 0}
    for seq, item in enumerate(entry.get("_webSocketMessages", ()), start=1):
        direction: Direction = "c2s" if item["type"] == "send" else "s2c"
        opcode = int(item.get("opcode", 1))
        data = str(item.get("data", ""))
        payload = data.encode("utf-8") if opcode == 1 else base64.b64decode(data)
        length = int(item.get("_length", len(payload)))
        when = float(item["time"])
        written = item.get("_written")  # a message of wsinspect's (our own HAR): a frame only
        written = written if written in WRITTEN else None
        message_no = 0
        if opcode < 8 and written is None:
            counts[direction] += 1
            message_no = counts[direction]
        frame = Frame(
            fin=True, rsv1=False, rsv2=False, rsv3=False, opcode=opcode,
            masked=direction == "c2s", mask_key=None, length=length, header=b"",
            payload=payload, message_no=message_no, text=opcode in (1, 9, 10),
        )
        out.append(FrameSeen(conn, seq, direction, when, frame, True, written))
        if opcode < 8 and written is None:
            message = Message(opcode, payload, length, length, 1, truncated=length > len(payload))
            out.append(MessageSeen(conn, direction, when, message, message_no))
    return out
