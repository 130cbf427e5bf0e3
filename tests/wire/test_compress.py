"""``wire.compress``: a message the proxy compresses refers to nothing before it, so a
receiver inflates it correctly whatever its window holds (RFC 7692 context takeover)."""

from __future__ import annotations

import os
import zlib

import pytest
from hypothesis import given
from hypothesis import strategies as st

from wsinspect.wire.compress import compress_message

TRAILER = b"\x00\x00\xff\xff"


def receiver(history: list[bytes], bits: int = 15) -> zlib._Decompress:
    """A permessage-deflate receiver that has inflated ``history`` (the sender's messages)."""
    c = zlib.compressobj(6, zlib.DEFLATED, -bits)
    d = zlib.decompressobj(-bits)
    for message in history:
        d.decompress(c.compress(message) + c.flush(zlib.Z_SYNC_FLUSH))
    return d


@given(history=st.lists(st.binary(max_size=3000), max_size=5),
       messages=st.lists(st.binary(max_size=3000), min_size=1, max_size=5))
def test_any_receiver_window_inflates_the_proxys_messages(
    history: list[bytes], messages: list[bytes]
) -> None:
    d = receiver(history)
    for message in messages:
        assert d.decompress(compress_message(message) + TRAILER) == message


@pytest.mark.parametrize("bits", [8, 9, 12, 15])
def test_the_negotiated_window_is_respected(bits: int) -> None:
    # Repeats farther apart than the window: a compressor with a larger window would refer back
    # beyond what a receiver with this window keeps.
    block = os.urandom(600)
    message = block + os.urandom(40000) + block
    d = receiver([b"earlier text " * 100], max(9, bits))
    assert d.decompress(compress_message(message, bits) + TRAILER) == message


def test_an_empty_message_and_the_trailer() -> None:
    payload = compress_message(b"")
    assert not payload.endswith(TRAILER)
    assert zlib.decompressobj(-15).decompress(payload + TRAILER) == b""
