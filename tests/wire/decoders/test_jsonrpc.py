"""JSON-RPC 2.0 decoding: calls, notifications, results and errors paired by id, batches."""

from __future__ import annotations

import json
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from wsinspect.wire.decoders import Decoded, Decoding, Handshake, get_decoder, parse_rule
from wsinspect.wire.decoders.jsonrpc import JsonRpcConnection
from wsinspect.wire.sides import Direction


def decode_all(transcript: list[tuple[Direction, Any]]) -> list[Decoded]:
    decoding = Decoding()
    assert decoding.opened(1, "/rpc", "jsonrpc") is get_decoder("jsonrpc")
    out = []
    for direction, message in transcript:
        payload = message if isinstance(message, bytes) else json.dumps(message).encode()
        decoded = decoding.message(1, direction, 1, payload)
        assert decoded is not None
        out.append(decoded)
    return out


def call(method: str, ident: Any = None, **params: Any) -> dict[str, Any]:
    msg: dict[str, Any] = {"jsonrpc": "2.0", "method": method, "params": params}
    if ident is not None:
        msg["id"] = ident
    return msg


def test_chosen_by_subprotocol_never_by_look() -> None:
    for sub in ("jsonrpc", "jsonrpc2.0", "json-rpc"):
        assert Decoding().select(Handshake("/", sub)) is get_decoder("jsonrpc")
    assert Decoding().select(Handshake("/jsonrpc?EIOx=1")) is None


def test_chosen_by_a_decode_rule_for_matching_paths() -> None:
    decoding = Decoding([parse_rule("jsonrpc:^/rpc")])
    assert decoding.select(Handshake("/rpc/v1")) is get_decoder("jsonrpc")
    assert decoding.select(Handshake("/other")) is None


def test_calls_results_errors_and_notifications() -> None:
    out = decode_all([
        ("c2s", call("getUser", 7, name="a")),
        ("c2s", call("missing", "x-1")),
        ("s2c", {"jsonrpc": "2.0", "result": {"name": "a"}, "id": 7}),
        ("s2c", {"jsonrpc": "2.0", "error": {"code": -32601, "message": "Method not found"}, "id": "x-1"}),
        ("s2c", call("update", n=1)),
        ("s2c", {"jsonrpc": "2.0", "error": {"code": -32700, "message": "Parse error"}, "id": None}),
    ])
    assert [x.summary for x in out] == [
        "jsonrpc call getUser id=7", "jsonrpc call missing id=x-1",
        "jsonrpc result id=7 (getUser)", "jsonrpc error -32601 id=x-1 (missing): Method not found",
        "jsonrpc notify update", "jsonrpc error -32700 id=null: Parse error"]
    assert out[0].fields == {"kind": "call", "id": 7, "method": "getUser"}
    assert out[2].fields == {"kind": "result", "id": 7, "method": "getUser"}
    assert out[3].fields["code"] == -32601
    assert out[4].fields == {"kind": "notify", "method": "update"}


def test_pairing_is_by_direction_and_id_type() -> None:
    out = decode_all([
        ("s2c", call("ping", 1)),  # the server calls its client
        ("s2c", {"jsonrpc": "2.0", "result": 1, "id": 1}),  # not an answer to its own call
        ("c2s", {"jsonrpc": "2.0", "result": 1, "id": "1"}),  # "1" is not 1
        ("c2s", {"jsonrpc": "2.0", "result": "pong", "id": 1}),
        ("c2s", {"jsonrpc": "2.0", "result": "again", "id": 1}),  # answered already
    ])
    assert [x.summary for x in out[1:]] == [
        "jsonrpc result id=1", "jsonrpc result id=1", "jsonrpc result id=1 (ping)", "jsonrpc result id=1"]


def test_memory_of_requests_is_bounded() -> None:
    conn = JsonRpcConnection()
    for n in range(5000):
        conn.decode("c2s", 1, json.dumps(call("m", n)).encode())
    assert conn.decode("s2c", 1, b'{"jsonrpc":"2.0","result":0,"id":0}').summary == "jsonrpc result id=0"
    assert conn.decode("s2c", 1, b'{"jsonrpc":"2.0","result":0,"id":4999}').fields["method"] == "m"


def test_batches_and_filters_on_their_elements() -> None:
    batch, answers = decode_all([
        ("c2s", [call("sum", 1, a=1), call("notify_hello"), call("getUser", 2)]),
        ("s2c", [{"jsonrpc": "2.0", "result": 3, "id": 1}, {"jsonrpc": "2.0", "result": {}, "id": 2}]),
    ])
    assert batch.summary == "jsonrpc batch of 3: call sum id=1, notify notify_hello, call getUser id=2"
    assert batch.fields == {"kind": "batch", "count": 3}
    assert answers.summary == "jsonrpc batch of 2: result id=1 (sum), result id=2 (getUser)"
    rpc = get_decoder("jsonrpc")
    assert rpc.field_matches(batch, "method", "getUser")
    assert rpc.field_matches(batch, "kind", "batch") and not rpc.field_matches(batch, "kind", "call")
    assert not rpc.field_matches(batch, "method", "nope")


@pytest.mark.parametrize(("payload", "why"), [
    (b"{", "bad JSON"),
    (b"\xff", "not UTF-8"),
    (b"42", "not a JSON object"),
    (b"[]", "an empty batch"),
    (b'{"method":"a","id":1}', 'no "jsonrpc": "2.0"'),
    (b'{"jsonrpc":"1.0","method":"a"}', "jsonrpc version '1.0'"),
    (b'{"jsonrpc":"2.0","method":5,"id":1}', "a method that is not a string"),
    (b'{"jsonrpc":"2.0","method":"a","id":[1]}', "an id that is not"),
    (b'{"jsonrpc":"2.0"}', "neither a method nor an id"),
    (b'{"jsonrpc":"2.0","id":1}', "exactly one of result and error"),
    (b'{"jsonrpc":"2.0","id":1,"result":1,"error":{"code":1}}', "exactly one of result and error"),
    (b'{"jsonrpc":"2.0","id":1,"error":{"message":"x"}}', "without an integer code"),
    (b'[{"jsonrpc":"2.0","method":"a"}, 3]', "batch element 1: not a JSON object"),
])
def test_bad_input_says_why(payload: bytes, why: str) -> None:
    (out,) = decode_all([("c2s", payload)])
    assert out.error is not None and why in out.error
    assert out.summary.startswith("jsonrpc: not a JSON-RPC 2.0 message (")


_json = st.recursive(st.none() | st.booleans() | st.integers() | st.text(max_size=5),
                     lambda inner: st.lists(inner, max_size=3) | st.dictionaries(
                         st.sampled_from(["jsonrpc", "method", "id", "result", "error", "code"]),
                         inner, max_size=4), max_leaves=10)


@given(st.lists(st.binary(max_size=40) | _json.map(lambda v: json.dumps(v).encode())))
def test_random_messages_never_raise(messages: list[bytes]) -> None:
    conn = JsonRpcConnection()
    for n, payload in enumerate(messages):
        out = conn.decode("c2s" if n % 2 else "s2c", 1, payload)
        assert out.protocol == "jsonrpc"
        out.to_dict()
