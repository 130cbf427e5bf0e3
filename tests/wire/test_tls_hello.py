"""The ClientHello reader against real ClientHellos made by OpenSSL (Python's ssl), whole, cut
anywhere and split over several TLS records."""

from __future__ import annotations

import contextlib
import ssl

import pytest
from hypothesis import given
from hypothesis import strategies as st

from wsinspect.wire.tls_hello import HelloError, looks_like_tls, read_client_hello


def client_hello(server_hostname: str | None, alpn: list[str] | None = None) -> bytes:
    """The first flight of a real TLS client (OpenSSL through Python's ssl)."""
    ctx = ssl.create_default_context()
    if server_hostname is None:
        ctx.check_hostname = False
    if alpn:
        ctx.set_alpn_protocols(alpn)
    incoming, outgoing = ssl.MemoryBIO(), ssl.MemoryBIO()
    tls = ctx.wrap_bio(incoming, outgoing, server_hostname=server_hostname)
    with pytest.raises(ssl.SSLWantReadError):
        tls.do_handshake()
    return outgoing.read()


def split_records(hello: bytes, size: int) -> bytes:
    """The same handshake message carried in records of at most ``size`` bytes (RFC 8446 §5.1
    lets a sender fragment it so)."""
    header, body = hello[:5], hello[5:]
    out = b""
    for i in range(0, len(body), size):
        part = body[i : i + size]
        out += header[:3] + len(part).to_bytes(2, "big") + part
    return out


def test_the_server_name_and_alpn_of_a_real_client_hello() -> None:
    hello = read_client_hello(client_hello("API.Example.com", ["h2", "http/1.1"]))
    assert hello is not None
    assert hello.server_name == "api.example.com"
    assert hello.alpn == ("h2", "http/1.1")


def test_a_client_hello_without_sni_has_no_server_name() -> None:
    hello = read_client_hello(client_hello(None))
    assert hello is not None and hello.server_name is None


def test_an_ip_address_is_not_sent_as_sni() -> None:
    hello = read_client_hello(client_hello("127.0.0.1"))
    assert hello is not None and hello.server_name is None  # RFC 6066 §3: names only


@given(st.integers(min_value=1, max_value=300))
def test_a_client_hello_split_over_records_reads_the_same(size: int) -> None:
    whole = client_hello("split.example", ["http/1.1"])
    assert read_client_hello(split_records(whole, size)) == read_client_hello(whole)


def test_every_cut_of_a_client_hello_asks_for_more() -> None:
    data = split_records(client_hello("cut.example"), 100)
    for end in range(len(data)):
        assert read_client_hello(data[:end]) is None
    assert read_client_hello(data) is not None


def test_tls_is_told_from_http_by_the_first_bytes() -> None:
    assert looks_like_tls(client_hello("x.example"))
    for plain in (b"GET / HTTP/1.1\r\n", b"CONNECT a:1 HTTP/1.1\r\n", b"\x16", b""):
        assert not looks_like_tls(plain)


@pytest.mark.parametrize(("data", "why"), [
    (b"\x15\x03\x03\x00\x02\x02\x28", "record type 21"),  # an alert, not a handshake
    (b"\x16\x03\x01\x00\x04\x02\x00\x00\x00", "not a ClientHello"),  # a ServerHello
    (b"\x16\x03\x01\x00\x00", "empty"),
    (b"\x16\x03\x01\x00\x04\x01\xff\xff\xff", "over"),  # a 16 MiB hello announced
    (b"\x16\x03\x01\x00\x06\x01\x00\x00\x02\x03\x03", "truncated"),  # body shorter than its fields
])
def test_what_is_not_a_client_hello_is_refused_with_a_reason(data: bytes, why: str) -> None:
    with pytest.raises(HelloError, match=why):
        read_client_hello(data)


@given(st.binary(max_size=600))
def test_random_bytes_after_a_handshake_header_never_crash(junk: bytes) -> None:
    data = b"\x16\x03\x01" + len(junk).to_bytes(2, "big") + junk
    with contextlib.suppress(HelloError):
        read_client_hello(data)
