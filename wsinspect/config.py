"""One settings model for the proxy, filled from CLI flags (and, later, TOML files).

``add_proxy_arguments`` declares the flags that ``proxy``, ``tui`` and ``demo`` share;
``settings_from_args`` validates them into a frozen ``Settings``. A bad value raises
``ConfigError`` naming the option and the reason, before anything listens.
"""

from __future__ import annotations

import argparse
from dataclasses import dataclass
from urllib.parse import urlsplit

__all__ = [
    "ConfigError",
    "Settings",
    "add_proxy_arguments",
    "parse_hostport",
    "settings_from_args",
]


class ConfigError(Exception):
    """A setting is wrong: ``str(err)`` says where (file and key, or flag) and why."""


@dataclass(frozen=True, slots=True)
class Upstream:
    """Where the proxy connects: ``ws://host:port/prefix`` or ``wss://...``."""

    url: str
    secure: bool
    host: str
    port: int
    path: str  # prefix prepended to the client's path ("" for none)

    @classmethod
    def parse(cls, url: str) -> Upstream:
        parts = urlsplit(url)
        if parts.scheme not in ("ws", "wss", "http", "https"):
            raise ConfigError(f"--upstream {url!r}: the scheme must be ws:// or wss://")
        if not parts.hostname:
            raise ConfigError(f"--upstream {url!r}: no host")
        secure = parts.scheme in ("wss", "https")
        try:
            port = parts.port or (443 if secure else 80)
        except ValueError as exc:
            raise ConfigError(f"--upstream {url!r}: {exc}") from None
        if parts.query or parts.fragment:
            raise ConfigError(f"--upstream {url!r}: the URL takes no query or fragment")
        return cls(url, secure, parts.hostname, port, parts.path.rstrip("/"))

    @property
    def host_header(self) -> str:
        """The ``Host`` header value for this upstream (port only when not the default)."""
        host = f"[{self.host}]" if ":" in self.host else self.host
        default = 443 if self.secure else 80
        return host if self.port == default else f"{host}:{self.port}"


@dataclass(frozen=True, slots=True)
class Settings:
    listen_host: str = "127.0.0.1"
    listen_port: int = 8080
    upstream: Upstream | None = None
    cert: str | None = None
    key: str | None = None
    upstream_ca: str | None = None
    insecure: bool = False
    websocket_only: bool = False
    max_header_size: int = 64 * 1024
    handshake_timeout: float = 10.0
    capture_limit: int = 1 << 20
    strict: bool = False
    max_message_size: int | None = None
    no_compression: bool = False
    log_format: str = "text"  # "text" or "json"
    quiet: bool = False

    @property
    def listen_is_loopback(self) -> bool:
        return self.listen_host in ("localhost", "::1") or self.listen_host.startswith("127.")


def parse_hostport(value: str, *, default_host: str = "127.0.0.1") -> tuple[str, int]:
    """``HOST:PORT``, ``[::1]:PORT`` or ``PORT`` → ``(host, port)``; ``ValueError`` if bad."""
    host, sep, port_text = value.rpartition(":")
    if not sep:
        host, port_text = default_host, value
    host = host.strip("[]") or default_host
    port = int(port_text)
    if not 0 <= port <= 65535:
        raise ValueError(f"port {port} out of range")
    return host, port


def _size(text: str) -> int:
    """``65536``, ``64k``, ``1m``, ``2MiB`` → bytes."""
    t = text.strip().lower().removesuffix("ib").removesuffix("b")
    mult = {"k": 1 << 10, "m": 1 << 20, "g": 1 << 30}.get(t[-1:], 1)
    if mult != 1:
        t = t[:-1]
    value = int(float(t) * mult)
    if value < 0:
        raise ValueError("must not be negative")
    return value


def _positive_float(text: str) -> float:
    value = float(text)
    if value <= 0:
        raise ValueError("must be positive")
    return value


def add_proxy_arguments(parser: argparse.ArgumentParser, *, upstream_required: bool = True) -> None:
    """Declare the relay's flags on ``parser`` (shared by ``proxy``, ``tui`` and ``demo``)."""
    net = parser.add_argument_group("listening and upstream")
    net.add_argument(
        "--listen", "-l", metavar="HOST:PORT", default="127.0.0.1:8080",
        help="address to accept clients on (default: 127.0.0.1:8080; port 0 picks a free one)",
    )  # fmt: skip
    net.add_argument(
        "--upstream", "-u", metavar="URL", required=upstream_required,
        help="the real server: ws://host:port[/prefix] or wss://...; the client's path and "
        "query are appended to the prefix",
    )  # fmt: skip
    net.add_argument("--cert", metavar="FILE", help="TLS certificate (PEM) to serve wss:// to clients")
    net.add_argument("--key", metavar="FILE", help="private key (PEM) for --cert")
    net.add_argument("--upstream-ca", metavar="FILE",
                     help="extra CA bundle (PEM) to trust for a wss:// upstream")  # fmt: skip
    net.add_argument("--insecure", "-k", action="store_true",
                     help="do not verify the upstream's TLS certificate (logged on every connection)")  # fmt: skip
    net.add_argument("--websocket-only", action="store_true",
                     help="answer plain HTTP requests 400 instead of passing them upstream")  # fmt: skip

    hs = parser.add_argument_group("handshake and frames")
    hs.add_argument("--handshake-timeout", metavar="SECONDS", type=_positive_float, default=10.0,
                    help="drop a client that has not sent its request, and give up on an "
                    "upstream that has not answered, after this long (default: 10)")  # fmt: skip
    hs.add_argument("--max-header-size", metavar="BYTES", type=_size, default=64 * 1024,
                    help="request headers over this size get 431 (default: 64k)")  # fmt: skip
    hs.add_argument("--capture-limit", metavar="BYTES", type=_size, default=1 << 20,
                    help="log and record at most this much of each payload; longer ones are "
                    "kept truncated with their length and SHA-256 (default: 1m)")  # fmt: skip
    hs.add_argument("--strict", action="store_true",
                    help="close a connection on a protocol violation (1002, 1007 for bad "
                    "UTF-8, 1009 over --max-message-size) instead of only flagging it")  # fmt: skip
    hs.add_argument("--max-message-size", metavar="BYTES", type=_size, default=None,
                    help="with --strict, close with 1009 when a message grows over this size")  # fmt: skip
    hs.add_argument("--no-compression", action="store_true",
                    help="strip permessage-deflate from the client's offer: traffic is "
                    "uncompressed end to end")  # fmt: skip

    out = parser.add_argument_group("output")
    out.add_argument("--log-format", choices=("text", "json"), default="text",
                     help="text lines (default) or one JSON object per event")  # fmt: skip
    out.add_argument("--quiet", "-q", action="store_true", help="print nothing on stdout")


def settings_from_args(args: argparse.Namespace) -> Settings:
    """Validate parsed flags into ``Settings``; ``ConfigError`` on a bad combination."""
    try:
        host, port = parse_hostport(args.listen)
    except ValueError as exc:
        raise ConfigError(f"--listen {args.listen!r}: expected HOST:PORT ({exc})") from None
    upstream = Upstream.parse(args.upstream) if getattr(args, "upstream", None) else None
    if bool(args.cert) != bool(args.key):
        raise ConfigError("--cert and --key go together: give both to serve TLS, or neither")
    if args.max_message_size is not None and not args.strict:
        raise ConfigError("--max-message-size only acts with --strict")
    return Settings(
        listen_host=host,
        listen_port=port,
        upstream=upstream,
        cert=args.cert,
        key=args.key,
        upstream_ca=args.upstream_ca,
        insecure=args.insecure,
        websocket_only=args.websocket_only,
        max_header_size=args.max_header_size,
        handshake_timeout=args.handshake_timeout,
        capture_limit=args.capture_limit,
        strict=args.strict,
        max_message_size=args.max_message_size,
        no_compression=args.no_compression,
        log_format=args.log_format,
        quiet=args.quiet,
    )
