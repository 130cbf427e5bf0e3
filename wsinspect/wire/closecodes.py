"""The close status code registry (RFC 6455 §7.4 and the IANA registry)."""

from __future__ import annotations

__all__ = ["CLOSE_CODES", "close_code_meaning", "is_valid_close_code"]

CLOSE_CODES: dict[int, str] = {
    1000: "normal closure",
    1001: "going away",
    1002: "protocol error",
    1003: "unsupported data",
    1004: "reserved",
    1005: "no status received",
    1006: "abnormal closure",
    1007: "invalid payload data",
    1008: "policy violation",
    1009: "message too big",
    1010: "mandatory extension",
    1011: "internal error",
    1012: "service restart",
    1013: "try again later",
    1014: "bad gateway",
    1015: "TLS handshake failure",
}

# Codes a peer must never put in a close frame (§7.4.1): reserved or meant for APIs only.
_NEVER_SENT = {1004, 1005, 1006, 1015}


def close_code_meaning(code: int | None) -> str:
    """Human meaning of a close code, e.g. ``1001`` → ``going away``."""
    if code is None:
        return "no status code"
    if code in CLOSE_CODES:
        return CLOSE_CODES[code]
    if 3000 <= code <= 3999:
        return "registered (library/framework)"
    if 4000 <= code <= 4999:
        return "application-defined"
    return "invalid"


def is_valid_close_code(code: int) -> bool:
    """Whether ``code`` may appear in a close frame (§7.4.1, §7.4.2)."""
    if 1000 <= code <= 1014:
        return code not in _NEVER_SENT
    return 3000 <= code <= 4999
