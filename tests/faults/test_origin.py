"""Origin policy (sans-IO): which Origin headers pass, and what a refusal says."""

from __future__ import annotations

import pytest

from wsinspect.faults.origin import OriginPattern, OriginPolicy, normalize_origin


def policy(*allow: str, require: bool = False, mode: str = "enforce") -> OriginPolicy:
    return OriginPolicy.build(list(allow), require=require, mode=mode)


def test_exact_origin_is_allowed() -> None:
    assert policy("https://app.example.com").check("https://app.example.com").allowed


def test_other_origin_is_refused_naming_it_and_the_rule() -> None:
    check = policy("https://app.example.com").check("https://evil.example.net")
    assert not check.allowed
    assert check.rule == "allow-origin"
    assert "https://evil.example.net" in check.reason


def test_origin_comparison_ignores_case_and_default_port() -> None:
    assert policy("https://app.example.com").check("HTTPS://App.Example.com:443").allowed


def test_other_port_is_a_different_origin() -> None:
    assert not policy("http://localhost:3000").check("http://localhost:3001").allowed


def test_other_scheme_is_a_different_origin() -> None:
    assert not policy("https://app.example.com").check("http://app.example.com").allowed


def test_wildcard_host_allows_subdomains_at_any_depth() -> None:
    p = policy("https://*.example.com")
    assert p.check("https://a.example.com").allowed
    assert p.check("https://a.b.example.com").allowed


def test_wildcard_host_does_not_allow_the_apex_or_lookalikes() -> None:
    p = policy("https://*.example.com")
    assert not p.check("https://example.com").allowed
    assert not p.check("https://evilexample.com").allowed
    assert not p.check("https://example.com.evil.net").allowed


def test_wildcard_port() -> None:
    p = policy("http://localhost:*")
    assert p.check("http://localhost:5173").allowed
    assert p.check("http://localhost").allowed
    assert not p.check("https://localhost:5173").allowed


def test_null_origin_only_when_listed() -> None:
    assert policy("null").check("null").allowed
    assert not policy("https://app.example.com").check("null").allowed


def test_missing_origin_passes_unless_required() -> None:
    assert policy("https://app.example.com").check(None).allowed
    check = policy("https://app.example.com", require=True).check(None)
    assert not check.allowed and check.rule == "require-origin"


def test_require_origin_alone_accepts_any_origin_but_refuses_none() -> None:
    p = policy(require=True)
    assert p.check("https://anything.example").allowed
    assert not p.check(None).allowed


def test_report_mode_lets_through_but_flags() -> None:
    check = policy("https://app.example.com", mode="report").check("https://evil.example")
    assert check.allowed and check.violation and check.rule == "allow-origin"


def test_no_policy_is_inactive_and_allows_everything() -> None:
    p = OriginPolicy()
    assert not p.active
    assert p.check("https://x.example").allowed and p.check(None).allowed


@pytest.mark.parametrize(
    "bad", ["example.com", "https://", "https://a.example.com/path", "https://a.*.com",
            "https://*", "http://localhost:99999"],
)
def test_malformed_patterns_are_refused_with_a_reason(bad: str) -> None:
    with pytest.raises(ValueError, match=r"."):
        OriginPattern.parse(bad)


def test_normalize_origin() -> None:
    assert normalize_origin("HTTP://LocalHost:80") == "http://localhost"
    assert normalize_origin(" null ") == "null"
    assert normalize_origin("https://[::1]:8443") == "https://[::1]:8443"
