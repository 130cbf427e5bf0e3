"""The sans-IO opening handshake (RFC 6455 §4): both sides, without sockets."""

from __future__ import annotations

import pytest

from wsinspect.wire.handshake import (
    ClientHandshake,
    HandshakeError,
    UpstreamAccepted,
    UpstreamHandshake,
    accept_key,
    join_target,
    validate_upgrade,
)
from wsinspect.wire.refusal import Refusal

REQUEST = (
    b"GET /chat?x=1 HTTP/1.1\r\nHost: proxy:8080\r\nUpgrade: websocket\r\n"
    b"Connection: keep-alive, Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
    b"Sec-WebSocket-Version: 13\r\nOrigin: http://a.test\r\nKeep-Alive: 5\r\n"
    b"Sec-WebSocket-Extensions: permessage-deflate; client_max_window_bits, x-y\r\n\r\n"
)


def _request(data: bytes = REQUEST) -> tuple[ClientHandshake, object]:
    hs = ClientHandshake()
    return hs, hs.feed(data)


def test_accept_key_matches_the_rfc_example() -> None:
    # RFC 6455 §1.3
    assert accept_key("dGhlIHNhbXBsZSBub25jZQ==") == "s3pPLMBiTxaQ9kYGzzhZRbK+xOo="


def test_request_is_parsed_incrementally() -> None:
    hs = ClientHandshake()
    for i in range(len(REQUEST) - 1):
        assert hs.feed(REQUEST[i : i + 1]) is None
    request = hs.feed(REQUEST[-1:])
    assert request is not None and request.is_websocket and request.target == "/chat?x=1"


def test_valid_request_validates_with_its_key() -> None:
    _, request = _request()
    assert validate_upgrade(request).key == "dGhlIHNhbXBsZSBub25jZQ=="  # type: ignore[arg-type]


def test_plain_http_request_is_not_websocket() -> None:
    _, request = _request(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
    assert not request.is_websocket  # type: ignore[attr-defined]


@pytest.mark.parametrize(
    ("old", "new", "status"),
    [
        (b"GET", b"PUT", 400),
        (b"Sec-WebSocket-Version: 13", b"Sec-WebSocket-Version: 7", 426),
        (b"Sec-WebSocket-Version: 13\r\n", b"", 400),
        (b"dGhlIHNhbXBsZSBub25jZQ==", b"not base64!", 400),
        (b"Connection: keep-alive, Upgrade", b"Connection: close", 400),
        (b"HTTP/1.1", b"HTTP/1.0", 400),
    ],
)
def test_invalid_requests_carry_their_status(old: bytes, new: bytes, status: int) -> None:
    hs = ClientHandshake()
    data = REQUEST.replace(old, new, 1)
    with pytest.raises(HandshakeError) as info:
        request = hs.feed(data)
        assert request is not None
        validate_upgrade(request)
    assert info.value.refusal.status == status
    assert "\n" not in info.value.refusal.reason


def test_oversized_head_is_431_whole_or_incomplete() -> None:
    big = REQUEST.replace(b"\r\n\r\n", b"\r\nX-Big: " + b"a" * 5000 + b"\r\n\r\n")
    with pytest.raises(HandshakeError) as whole:
        ClientHandshake(1024).feed(big)
    with pytest.raises(HandshakeError) as partial:
        ClientHandshake(1024).feed(big[:3000])
    assert whole.value.refusal.status == partial.value.refusal.status == 431


def test_upstream_request_keeps_headers_in_order_with_a_fresh_key() -> None:
    _, request = _request()
    up = UpstreamHandshake()
    out = up.request_for(validate_upgrade(request), "upstream:9000", "/base")  # type: ignore[arg-type]
    lines = out.decode().split("\r\n")
    assert lines[0] == "GET /base/chat?x=1 HTTP/1.1"
    assert lines[1:8] == [
        "Host: upstream:9000",
        "Upgrade: websocket",
        "Connection: Upgrade",
        f"Sec-WebSocket-Key: {up.key}",
        "Sec-WebSocket-Version: 13",
        "Origin: http://a.test",
        "Sec-WebSocket-Extensions: permessage-deflate; client_max_window_bits, x-y",
    ]
    assert up.key != "dGhlIHNhbXBsZSBub25jZQ=="
    assert "Keep-Alive" not in out.decode()  # hop-by-hop


def test_upstream_request_without_compression_drops_the_deflate_offer() -> None:
    _, request = _request()
    out = UpstreamHandshake().request_for(request, "u", strip_compression=True)  # type: ignore[arg-type]
    assert b"Sec-WebSocket-Extensions: x-y\r\n" in out
    assert b"permessage-deflate" not in out


def test_upstream_101_is_checked_and_the_client_gets_its_own_accept() -> None:
    hs, request = _request()
    validated = validate_upgrade(request)  # type: ignore[arg-type]
    up = UpstreamHandshake()
    up.request_for(validated, "u")
    answer = up.feed(
        b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
        b"Sec-WebSocket-Accept: " + accept_key(up.key).encode() + b"\r\nSet-Cookie: a=1\r\n\r\n\x81\x02hi"
    )
    assert isinstance(answer, UpstreamAccepted)
    assert answer.trailing == b"\x81\x02hi"
    reply = hs.accept(answer)
    assert b"Sec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=\r\n" in reply
    assert reply.endswith(b"Set-Cookie: a=1\r\n\r\n")


@pytest.mark.parametrize(
    "status_line, extra",
    [
        (b"HTTP/1.1 101 Switching Protocols", b"Set-Cookie: a=1\r\nSet-Cookie: b=2\r\n"),
        (b"HTTP/1.1 101 Web Socket Protocol Handshake", b"sec-websocket-protocol:  chat \r\n"),
        (b"HTTP/1.1 101", b"X-Odd: \xe9t\xe9\r\nHost: upstream.test\r\nContent-Length: 0\r\n"),
        (b"HTTP/1.1 101 ", b"SERVER: x\r\nSec-WebSocket-Extensions: permessage-deflate\r\n"),
    ],
)
def test_client_101_is_the_bytes_h11_writes_for_the_upstream_answer(
    status_line: bytes, extra: bytes
) -> None:
    """The 101 is put together without a second pass through h11: byte for byte what h11
    would send for the same answer (status line, Host first, headers in order and case)."""
    import h11

    hs, request = _request()
    up = UpstreamHandshake()
    up.request_for(validate_upgrade(request), "u")  # type: ignore[arg-type]
    answer = up.feed(
        status_line + b"\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
        b"Sec-WebSocket-Accept: " + accept_key(up.key).encode() + b"\r\n" + extra + b"\r\n"
    )
    assert isinstance(answer, UpstreamAccepted)
    reference = h11.Connection(h11.SERVER)
    reference.receive_data(REQUEST)
    reference.next_event()
    reference.next_event()  # EndOfMessage: the upgrade is now proposed
    headers = [
        (n.encode("latin-1"), (accept_key("dGhlIHNhbXBsZSBub25jZQ==") if n.lower() == "sec-websocket-accept" else v).encode("latin-1"))
        for n, v in answer.headers
    ]
    expected = reference.send(
        h11.InformationalResponse(
            status_code=101, headers=headers,
            reason=answer.reason.encode("latin-1") or b"Switching Protocols",
        )
    )
    assert hs.accept(answer) == expected


def test_upstream_101_with_a_wrong_accept_is_502() -> None:
    up = UpstreamHandshake()
    with pytest.raises(HandshakeError) as info:
        up.feed(b"HTTP/1.1 101 OK\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
                b"Sec-WebSocket-Accept: bogus\r\n\r\n")
    assert info.value.refusal.status == 502


def test_upstream_refusal_is_kept_with_its_body_up_to_the_limit() -> None:
    up = UpstreamHandshake(body_limit=4)
    answer = up.feed(b"HTTP/1.1 403 Forbidden\r\nX-Why: origin\r\nContent-Length: 10\r\n\r\n0123456789")
    assert isinstance(answer, Refusal)
    assert (answer.status, answer.body, answer.complete) == (403, b"0123", False)
    assert ("X-Why", "origin") in answer.headers


@pytest.mark.parametrize(
    ("prefix", "target", "joined"),
    [
        ("", "/a?b=1", "/a?b=1"),
        ("/base", "/a?b=1", "/base/a?b=1"),
        ("/base/", "/", "/base/"),
        # absolute-form (RFC 9112 §3.2.2): only the path and query go upstream
        ("", "ws://h.test:8080/a?b=1", "/a?b=1"),
        ("/base", "http://h.test", "/base/"),
    ],
)
def test_path_prefix_joins_the_client_target(prefix: str, target: str, joined: str) -> None:
    assert join_target(prefix, target) == joined


@pytest.mark.parametrize(
    ("request_bytes", "status_line"),
    [
        (REQUEST.replace(b"GET", b"PUT", 1), b"HTTP/1.1 400 Bad Request\r\n"),
        (REQUEST.replace(b"Version: 13", b"Version: 8", 1), b"HTTP/1.1 426 Upgrade Required\r\n"),
        (b"garbage\r\n\r\n", b"HTTP/1.1 400 Bad Request\r\n"),
    ],
)
def test_refusals_have_a_standard_status_line_and_a_readable_reason(
    request_bytes: bytes, status_line: bytes
) -> None:
    hs = ClientHandshake()
    with pytest.raises(HandshakeError) as info:
        request = hs.feed(request_bytes)
        assert request is not None
        validate_upgrade(request)
    answer = hs.refuse(info.value.refusal)
    assert answer.startswith(status_line)
    assert "bytearray" not in info.value.refusal.reason
    assert answer.endswith(info.value.refusal.reason.encode() + b"\n")
