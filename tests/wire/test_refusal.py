"""One ``Refusal`` value for every refused handshake, and the response it is rendered to
(sans-IO: no sockets, the upstream's answers are fed to the upstream handshake machine)."""

from __future__ import annotations

import dataclasses

import h11
import pytest

from wsinspect.wire.handshake import (
    ClientHandshake,
    HandshakeError,
    UpstreamHandshake,
    validate_upgrade,
)
from wsinspect.wire.refusal import Refusal

REQUEST = (
    b"GET /chat HTTP/1.1\r\nHost: proxy:8080\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
    b"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n"
)


def _head_and_body(response: bytes) -> tuple[list[str], bytes]:
    head, _, body = response.partition(b"\r\n\r\n")
    return head.decode("latin-1").split("\r\n"), body


def _upstream_refusal(answer: bytes, body_limit: int = 64 * 1024) -> Refusal:
    refusal = UpstreamHandshake(body_limit=body_limit).feed(answer)
    assert isinstance(refusal, Refusal)
    return refusal


def test_the_status_line_has_the_standard_phrase_by_default() -> None:
    assert Refusal(403, "no").phrase == "Forbidden"
    assert Refusal(426, "no").response().startswith(b"HTTP/1.1 426 Upgrade Required\r\n")
    assert Refusal(599, "no").response().startswith(b"HTTP/1.1 599 Error\r\n")


def test_a_phrase_given_is_kept_on_the_status_line() -> None:
    assert Refusal(403, "no", phrase="Go Away").response().startswith(b"HTTP/1.1 403 Go Away\r\n")


def test_the_default_body_is_the_reason_as_one_line_of_plain_text() -> None:
    lines, body = _head_and_body(Refusal(400, "missing Host header").response())
    assert body == b"missing Host header\n"
    assert lines[1:] == [
        "Content-Type: text/plain; charset=utf-8",
        f"Content-Length: {len(body)}",
        "Connection: close",
    ]


def test_a_reason_outside_latin_1_is_sent_as_utf_8() -> None:
    refusal = Refusal(403, "origin ✗")
    assert refusal.response_body == "origin ✗\n".encode()
    assert refusal.response().endswith("origin ✗\n".encode())


def test_a_body_given_replaces_the_reason_and_has_no_content_type() -> None:
    lines, body = _head_and_body(Refusal(503, "fault", body=b"down for maintenance\n").response())
    assert body == b"down for maintenance\n"
    assert lines[1:] == ["Content-Length: 21", "Connection: close"]


def test_an_empty_body_stays_empty() -> None:
    lines, body = _head_and_body(Refusal(404, "gone", body=b"").response())
    assert body == b""
    assert "Content-Length: 0" in lines


def test_custom_headers_go_first_in_order_without_framing_or_hop_by_hop_ones() -> None:
    refusal = Refusal(
        426, "speak 13",
        (("Sec-WebSocket-Version", "13"), ("Content-Length", "999"), ("Connection", "keep-alive"),
         ("Transfer-Encoding", "chunked"), ("X-Trace", "a1")),
    )
    lines, _ = _head_and_body(refusal.response())
    assert lines[1:] == [
        "Sec-WebSocket-Version: 13",
        "X-Trace: a1",
        "Content-Type: text/plain; charset=utf-8",
        "Content-Length: 9",
        "Connection: close",
    ]


def test_without_h11_the_response_is_the_bytes_h11_writes_for_a_get() -> None:
    """Refusing a request h11 never completed (431, malformed) writes the response by hand:
    byte for byte what h11 writes when it can answer."""
    refusal = Refusal(403, "no", (("X-Why", "origin"),), rule="allow-origin")
    hs = ClientHandshake()
    assert hs.feed(REQUEST) is not None
    assert hs.refuse(refusal) == refusal.response()


def test_a_request_that_never_completed_is_still_answered() -> None:
    hs = ClientHandshake(max_header_size=64)
    with pytest.raises(HandshakeError) as info:
        hs.feed(b"GET / HTTP/1.1\r\nX-Big: " + b"a" * 200)
    assert hs.refuse(info.value.refusal).startswith(b"HTTP/1.1 431 Request Header Fields Too Large\r\n")


def test_a_handshake_error_carries_its_refusal_by_the_proxy() -> None:
    hs = ClientHandshake()
    request = hs.feed(REQUEST.replace(b"Version: 13", b"Version: 8"))
    assert request is not None
    with pytest.raises(HandshakeError) as info:
        validate_upgrade(request)
    refusal = info.value.refusal
    assert (refusal.status, refusal.by, refusal.headers) == (426, "proxy", (("Sec-WebSocket-Version", "13"),))
    assert str(info.value) == refusal.reason


def test_an_upstream_4xx_is_a_refusal_by_the_upstream_relayed_as_is() -> None:
    refusal = _upstream_refusal(
        b"HTTP/1.1 401 Who Are You\r\nWWW-Authenticate: Bearer\r\nContent-Length: 5\r\n"
        b"Connection: keep-alive\r\n\r\nlogin"
    )
    assert (refusal.status, refusal.phrase, refusal.by, refusal.complete) == (401, "Who Are You", "upstream", True)
    assert refusal.reason == "upstream answered 401 Who Are You"
    assert refusal.body == b"login"
    assert refusal.response() == (
        b"HTTP/1.1 401 Who Are You\r\nWWW-Authenticate: Bearer\r\nContent-Length: 5\r\n"
        b"Connection: close\r\n\r\nlogin"
    )


def test_an_upstream_5xx_without_a_phrase_gets_the_standard_one() -> None:
    refusal = _upstream_refusal(b"HTTP/1.1 503 \r\nTransfer-Encoding: chunked\r\n\r\n4\r\nbusy\r\n0\r\n\r\n")
    assert refusal.reason == "upstream answered 503"
    lines, body = _head_and_body(refusal.response())
    assert lines == ["HTTP/1.1 503 Service Unavailable", "Content-Length: 4", "Connection: close"]
    assert body == b"busy"


def test_an_upstream_body_over_the_limit_is_cut_and_marked_incomplete() -> None:
    refusal = _upstream_refusal(
        b"HTTP/1.1 500 Oops\r\nContent-Length: 10\r\n\r\n0123456789", body_limit=4
    )
    assert (refusal.body, refusal.complete) == (b"0123", False)
    assert refusal.response().endswith(b"Content-Length: 4\r\nConnection: close\r\n\r\n0123")


def test_the_upstream_refusal_matches_what_h11_relays_for_the_client_request() -> None:
    refusal = _upstream_refusal(b"HTTP/1.1 404 Not Here\r\nX-A: 1\r\nContent-Length: 2\r\n\r\nno")
    client = h11.Connection(h11.SERVER)
    client.receive_data(REQUEST)
    client.next_event()
    assert refusal.response(client) == refusal.response()


def test_a_refusal_is_a_frozen_value() -> None:
    refusal = Refusal(403, "no", rule="allow-origin", origin="https://evil.test")
    with pytest.raises(dataclasses.FrozenInstanceError):
        refusal.status = 200  # type: ignore[misc]
    assert refusal == Refusal(403, "no", rule="allow-origin", origin="https://evil.test")
    assert dataclasses.replace(refusal, by="upstream").by == "upstream"
