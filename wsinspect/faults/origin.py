"""Origin policy: which browser origins may open a WebSocket through the proxy (sans-IO).

A browser sends ``Origin`` with every WebSocket handshake (RFC 6455 §4.1 item 8, §10.2) and a
server that does not check it can be driven cross-site by any page the user visits. wsinspect can
play the careful server: ``--allow-origin`` patterns, ``--require-origin`` and ``--origin-mode``.

Patterns:

- an exact origin, ``https://app.example.com`` or ``http://localhost:3000``; compared in the
  serialised form of RFC 6454 §6.2 (scheme and host lower-cased, default port dropped);
- a wildcard host, ``https://*.example.com``: any host that ends in ``.example.com`` (one or
  more labels deep; the apex ``example.com`` is not included — list it separately);
- a wildcard port, ``http://localhost:*``;
- ``null``: the opaque origin browsers send from sandboxed frames and ``file:`` pages.

Without ``--allow-origin`` every origin passes. A request without an ``Origin`` header passes
(non-browser clients send none) unless ``--require-origin``.
"""

from __future__ import annotations

from dataclasses import dataclass
from urllib.parse import urlsplit

__all__ = ["OriginCheck", "OriginPattern", "OriginPolicy", "normalize_origin"]

_DEFAULT_PORTS = {"http": 80, "https": 443, "ws": 80, "wss": 443}


def normalize_origin(origin: str) -> str:
    """The RFC 6454 §6.2 serialisation of ``origin``: ``HTTPS://App.Example.com:443`` →
    ``https://app.example.com``. ``null`` and anything unparsable come back stripped as-is."""
    text = origin.strip()
    if text.lower() == "null":
        return "null"
    try:
        parts = urlsplit(text)
        port = parts.port
    except ValueError:
        return text
    scheme = parts.scheme.lower()
    host = (parts.hostname or "").lower()
    if not scheme or not host:
        return text
    if ":" in host:
        host = f"[{host}]"
    if port is None or _DEFAULT_PORTS.get(scheme) == port:
        return f"{scheme}://{host}"
    return f"{scheme}://{host}:{port}"


@dataclass(frozen=True, slots=True)
class OriginPattern:
    """One ``--allow-origin`` value, parsed. ``ValueError`` (with the reason) if malformed."""

    text: str
    scheme: str
    host: str  # lower-case; "" for null
    wildcard_host: bool  # host was "*.suffix": ``host`` holds ".suffix"
    port: int | None  # None: the scheme's default port; -1: any port

    @classmethod
    def parse(cls, text: str) -> OriginPattern:
        raw = text.strip()
        if raw.lower() == "null":
            return cls(raw, "null", "", False, None)
        scheme, sep, rest = raw.partition("://")
        if not sep or not scheme or not rest:
            raise ValueError(
                f"{text!r} is not an origin: expected scheme://host[:port], "
                "https://*.example.com or null"
            )
        if "/" in rest or "?" in rest or "#" in rest:
            raise ValueError(f"{text!r}: an origin has no path, query or fragment")
        scheme = scheme.lower()
        host, port_text = rest, ""
        if rest.startswith("["):
            end = rest.find("]")
            if end < 0:
                raise ValueError(f"{text!r}: unclosed '[' in the host")
            host, port_text = rest[: end + 1], rest[end + 1 :].removeprefix(":")
        elif ":" in rest:
            host, _, port_text = rest.rpartition(":")
        host = host.lower()
        if port_text == "*":
            port: int | None = -1
        elif port_text:
            if not port_text.isdigit() or not 0 < int(port_text) < 65536:
                raise ValueError(f"{text!r}: bad port {port_text!r}")
            port = int(port_text)
            if _DEFAULT_PORTS.get(scheme) == port:
                port = None
        else:
            port = None
        wildcard = host.startswith("*.")
        if wildcard:
            host = host[1:]  # ".example.com"
            if "*" in host or len(host) < 2:
                raise ValueError(f"{text!r}: '*' may only be the whole first label (*.example.com)")
        elif "*" in host:
            raise ValueError(f"{text!r}: '*' may only be the whole first label (*.example.com)")
        if not host:
            raise ValueError(f"{text!r}: no host")
        return cls(raw, scheme, host, wildcard, port)

    def matches(self, origin: str) -> bool:
        """Whether the ``Origin`` header value ``origin`` is allowed by this pattern."""
        norm = normalize_origin(origin)
        if self.scheme == "null":
            return norm == "null"
        try:
            parts = urlsplit(norm)
            port = parts.port
        except ValueError:
            return False
        if parts.scheme != self.scheme or not parts.hostname:
            return False
        host = parts.hostname
        if ":" in host:
            host = f"[{host}]"
        if self.wildcard_host:
            if not host.endswith(self.host) or len(host) == len(self.host):
                return False
        elif host != self.host:
            return False
        if self.port == -1:
            return True
        if port is not None and _DEFAULT_PORTS.get(parts.scheme) == port:
            port = None
        return port == self.port


@dataclass(frozen=True, slots=True)
class OriginCheck:
    """The verdict on one handshake: ``allowed`` says whether it goes on, ``violation`` whether
    the policy objected (true for a refusal, and for a pass in ``report`` mode). ``rule`` is the
    option that objected (``allow-origin`` or ``require-origin``); ``reason`` is the sentence for
    the 403 body and the log."""

    allowed: bool
    violation: bool = False
    rule: str | None = None
    reason: str = ""


_PASS = OriginCheck(True)


@dataclass(frozen=True, slots=True)
class OriginPolicy:
    """``--allow-origin`` patterns, ``--require-origin`` and ``--origin-mode`` together."""

    patterns: tuple[OriginPattern, ...] = ()
    require: bool = False
    mode: str = "enforce"  # or "report"

    @classmethod
    def build(cls, allow: tuple[str, ...] | list[str], *, require: bool = False,
              mode: str = "enforce") -> OriginPolicy:
        """Parse the patterns; ``ValueError`` naming the bad one."""
        if mode not in ("enforce", "report"):
            raise ValueError(f"origin mode {mode!r}: expected enforce or report")
        return cls(tuple(OriginPattern.parse(p) for p in allow), require, mode)

    @property
    def active(self) -> bool:
        return bool(self.patterns) or self.require

    def check(self, origin: str | None) -> OriginCheck:
        """Judge the ``Origin`` header of one handshake (``None`` when the header is absent)."""
        if origin is None:
            if not self.require:
                return _PASS
            return self._object("require-origin", "the request has no Origin header "
                                 "and --require-origin is set")
        if not self.patterns or any(p.matches(origin) for p in self.patterns):
            return _PASS
        allowed = ", ".join(p.text for p in self.patterns)
        return self._object("allow-origin", f"Origin {origin} is not allowed (allowed: {allowed})")

    def _object(self, rule: str, reason: str) -> OriginCheck:
        return OriginCheck(self.mode == "report", True, rule, reason)
