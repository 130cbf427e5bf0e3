"""GraphQL over WebSocket decoding (graphql-transport-ws and the legacy graphql-ws)."""

from __future__ import annotations

import json
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from wsinspect.wire.decoders import Decoded, Decoding, Handshake, get_decoder
from wsinspect.wire.decoders.graphql_ws import GraphQLConnection, operation_of
from wsinspect.wire.sides import Direction

SUBSCRIBE = {"type": "subscribe", "id": "1", "payload": {
    "query": "subscription OnMessage($room: ID!) { message(room: $room) { text } }",
    "variables": {"room": "a"}}}


def decode_all(subprotocol: str | None, transcript: list[tuple[Direction, Any]]) -> list[Decoded]:
    decoding = Decoding()
    if subprotocol is None:
        decoding.rules = []
        decoding.opened(1, "/graphql", None)
        decoding.choose(1, "graphql")
    else:
        assert decoding.opened(1, "/graphql", subprotocol) is get_decoder("graphql")
    out = []
    for direction, message in transcript:
        payload = message if isinstance(message, bytes) else json.dumps(message).encode()
        decoded = decoding.message(1, direction, 1, payload)
        assert decoded is not None
        out.append(decoded)
    return out


def test_chosen_by_either_subprotocol_not_by_path() -> None:
    gql = get_decoder("graphql")
    assert Decoding().select(Handshake("/graphql", "graphql-transport-ws")) is gql
    assert Decoding().select(Handshake("/graphql", "graphql-ws")) is gql
    assert Decoding().select(Handshake("/graphql")) is None


def test_transport_ws_subscription_transcript() -> None:
    out = decode_all("graphql-transport-ws", [
        ("c2s", {"type": "connection_init", "payload": {}}),
        ("s2c", {"type": "connection_ack"}),
        ("c2s", SUBSCRIBE),
        ("s2c", {"type": "next", "id": "1", "payload": {"data": {"message": {"text": "hi"}}}}),
        ("c2s", {"type": "ping"}),
        ("s2c", {"type": "pong"}),
        ("c2s", {"type": "complete", "id": "1"}),
    ])
    assert [x.summary for x in out] == [
        "graphql connection_init", "graphql connection_ack",
        "graphql subscribe id=1 op=OnMessage", "graphql next id=1 op=OnMessage",
        "graphql ping", "graphql pong", "graphql complete id=1 op=OnMessage"]
    sub = out[2]
    assert sub.fields == {"type": "subscribe", "op": "subscribe", "id": "1",
                          "operation": "OnMessage", "operation_type": "subscription"}
    assert sub.body["payload"]["variables"] == {"room": "a"}


def test_op_filter_matches_the_message_type_or_the_operation_name() -> None:
    gql = get_decoder("graphql")
    sub, nxt = decode_all("graphql-transport-ws", [
        ("c2s", SUBSCRIBE), ("s2c", {"type": "next", "id": "1", "payload": {"data": {}}})])
    assert gql.field_matches(sub, "op", "subscribe")
    assert gql.field_matches(sub, "op", "OnMessage") and gql.field_matches(nxt, "op", "OnMessage")
    assert not gql.field_matches(nxt, "op", "subscribe")
    assert gql.field_matches(nxt, "type", "next") and not gql.field_matches(nxt, "type", "OnMessage")


def test_operation_name_from_payload_wins_and_ids_are_forgotten_on_complete() -> None:
    out = decode_all("graphql-transport-ws", [
        ("c2s", {"type": "subscribe", "id": "7", "payload": {
            "query": "query A { a } query B { b }", "operationName": "B"}}),
        ("s2c", {"type": "error", "id": "7", "payload": [{"message": "boom"}]}),
        ("c2s", {"type": "complete", "id": "7"}),
        ("s2c", {"type": "next", "id": "7", "payload": {}}),
    ])
    assert out[0].summary == "graphql subscribe id=7 op=B"
    assert out[1].summary == "graphql error id=7 op=B - boom"
    assert "operation" not in out[3].fields


def test_legacy_graphql_ws_transcript() -> None:
    out = decode_all("graphql-ws", [
        ("c2s", {"type": "connection_init", "payload": {}}),
        ("s2c", {"type": "connection_ack"}), ("s2c", {"type": "ka"}),
        ("c2s", {"type": "start", "id": "1", "payload": {"query": "subscription OnTick { tick }"}}),
        ("s2c", {"type": "data", "id": "1", "payload": {"data": {"tick": 1}, "errors": [{}]}}),
        ("c2s", {"type": "stop", "id": "1"}),
        ("c2s", {"type": "connection_terminate"}),
    ])
    assert [x.summary for x in out] == [
        "graphql connection_init", "graphql connection_ack", "graphql ka",
        "graphql start id=1 op=OnTick", "graphql data id=1 op=OnTick - 1 error(s)",
        "graphql stop id=1 op=OnTick", "graphql connection_terminate"]
    assert out[3].body["subprotocol"] == "graphql-ws"


def test_types_follow_the_subprotocol() -> None:
    (start,) = decode_all("graphql-transport-ws", [("c2s", {"type": "start", "id": "1"})])
    assert start.error == "unknown message type 'start'"
    (sub,) = decode_all("graphql-ws", [("c2s", SUBSCRIBE)])
    assert sub.error is not None
    (either,) = decode_all(None, [("c2s", SUBSCRIBE)])  # --decode graphql: both sets
    assert either.summary == "graphql subscribe id=1 op=OnMessage"


@pytest.mark.parametrize(("query", "expected"), [
    ("subscription OnMessage { m }", ("OnMessage", "subscription")),
    ("  mutation   Add($x: Int) { add(x: $x) }", ("Add", "mutation")),
    ("query { a }", (None, "query")),
    ("{ search(query: \"x\") }", (None, "query")),
    ("fragment F on Query { a }\nquery Q { ...F }", ("Q", "query")),
    ("", (None, None)),
])
def test_operation_name_parsed_from_the_query(query: str, expected: tuple[str | None, str | None]) -> None:
    assert operation_of({"query": query}) == expected


@pytest.mark.parametrize(("payload", "why"), [
    (b"not json", "bad JSON"),
    (b"\xff", "not UTF-8"),
    (b"[1,2]", "not a JSON object"),
    (b'{"id":"1"}', "no string 'type'"),
    (b'{"type":"bogus"}', "unknown message type 'bogus'"),
    (b'{"type":"subscribe","payload":{}}', "without an id"),
])
def test_bad_input_says_why(payload: bytes, why: str) -> None:
    (out,) = decode_all("graphql-transport-ws", [("c2s", payload)])
    assert out.error is not None and why in out.error
    assert out.summary.startswith("graphql: not a GraphQL over WebSocket message (")


@given(st.lists(st.binary(max_size=80) | st.builds(
    lambda t, i: json.dumps({"type": t, "id": i, "payload": {"query": "subscription X {a}"}}).encode(),
    st.sampled_from(["subscribe", "next", "complete", "start", "data", "x"]),
    st.one_of(st.text(max_size=3), st.integers(), st.none(), st.booleans()))))
def test_random_messages_never_raise(messages: list[bytes]) -> None:
    conn = GraphQLConnection(None)
    for payload in messages:
        out = conn.decode("c2s", 1, payload)
        assert out.protocol == "graphql"
        out.to_dict()
