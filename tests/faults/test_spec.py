"""The --fault syntax and [[fault]] tables: parsing, validation messages, canonical text."""

from __future__ import annotations

import pytest

from wsinspect.faults.spec import FaultSpec, parse_fault, parse_idle_action


def test_latency_spec_from_the_compact_syntax() -> None:
    spec = parse_fault("latency:dir=s2c,ms=200,jitter=50")
    assert (spec.kind, spec.direction, spec.ms, spec.jitter) == ("latency", "s2c", 200, 50)


def test_drop_with_regex_and_probability() -> None:
    spec = parse_fault("drop:dir=c2s,match=^ping,p=0.5")
    assert spec.match == "^ping" and spec.p == 0.5
    assert spec.matches_payload(b"ping 1") and not spec.matches_payload(b"pong")


def test_quoted_value_may_contain_commas() -> None:
    spec = parse_fault('close-after:messages=3,code=4000,reason="bye, now"')
    assert spec.reason == "bye, now" and spec.code == 4000 and spec.messages == 3


def test_bare_boolean_key_means_true() -> None:
    assert parse_fault("cut-after:bytes=64k,rst").rst is True
    assert parse_fault("cut-after:bytes=64k").nbytes == 64 * 1024


def test_kind_without_parameters() -> None:
    assert parse_fault("swallow-pongs").direction == "both"


@pytest.mark.parametrize(
    ("text", "says"),
    [
        ("latenzy:ms=1", "unknown fault 'latenzy'"),
        ("latency", "latency needs ms"),
        ("latency:ms=abc", "ms: 'abc' is not a number"),
        ("drop:dir=up", "dir: 'up': expected c2s, s2c or both"),
        ("drop:p=1.5", "a probability is between 0 and 1"),
        ("drop:match=(", "bad regular expression"),
        ("throttle:ms=5,rate=1k", "throttle takes no 'ms'"),
        ("close-after:code=4000", "exactly one of seconds"),
        ("close-after:seconds=1,code=1006", "not a close code a peer may send"),
        ("refuse:status=42", "not an HTTP status"),
        ('close-after:seconds=1,reason="x', "unclosed"),
    ],
)
def test_bad_specs_say_what_is_wrong(text: str, says: str) -> None:
    with pytest.raises(ValueError, match=None) as info:
        parse_fault(text)
    assert says in str(info.value)


def test_canonical_text_parses_back_to_the_same_spec() -> None:
    for text in ["latency:dir=s2c,ms=200,jitter=50", 'close-after:seconds=5,reason="a, b"',
                 "cut-after:bytes=100,rst", "drop:match=^ping,p=0.25,path=/chat"]:
        spec = parse_fault(text)
        assert parse_fault(str(spec)) == spec


def test_toml_values_are_typed() -> None:
    spec = FaultSpec.from_mapping("throttle", {"rate": "48k", "dir": "both"})
    assert spec.rate == 48 * 1024
    spec = FaultSpec.from_mapping("latency", {"ms": 300, "jitter": 150})
    assert spec.ms == 300


def test_connection_filters() -> None:
    spec = parse_fault("drop:path=^/chat,origin=example\\.com$")
    assert spec.matches_connection("/chat?room=1", "https://app.example.com")
    assert not spec.matches_connection("/feed", "https://app.example.com")
    assert not spec.matches_connection("/chat", None)


def test_idle_actions() -> None:
    assert parse_idle_action("close-tcp") == ("close-tcp", 1001)
    assert parse_idle_action("close-frame:4000") == ("close-frame", 4000)
    with pytest.raises(ValueError, match="only close-frame takes"):
        parse_idle_action("reset:4000")
    with pytest.raises(ValueError, match="expected one of"):
        parse_idle_action("hangup")
