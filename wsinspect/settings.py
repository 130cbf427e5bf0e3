"""The proxy's settings: one frozen ``Settings`` that every layer reads, and ``Upstream``.

Plain data with no dependencies of its own, so the relay, the faults and the CLI all stand on
it; ``wsinspect.config`` fills it from flags and config files. ``ConfigError`` is the one
error for a wrong setting.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING
from urllib.parse import urlsplit

if TYPE_CHECKING:
    from wsinspect.faults.spec import FaultSpec
    from wsinspect.intercept.breakpoints import Breakpoint

__all__ = ["DEFAULT_MAX_MESSAGE_SIZE", "ConfigError", "ResourceError", "Settings", "Upstream"]


class ConfigError(Exception):
    """A setting is wrong: ``str(err)`` says where (file and key, or flag) and why.
    ``status``: the exit status it ends a command with (2, a bad option, unless it is a
    resource that could not be had when the relay started: 1)."""

    status = 2


class ResourceError(ConfigError):
    """A setting that is right but could not be had when the relay started (a control socket
    that cannot be created): exit status 1."""

    status = 1


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


# --strict without --max-message-size: about what common servers allow.
DEFAULT_MAX_MESSAGE_SIZE = 64 << 20


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
    # The message size --strict closes over with 1009 (None: no limit). The flags give
    # DEFAULT_MAX_MESSAGE_SIZE under --strict unless --max-message-size says otherwise.
    max_message_size: int | None = None
    no_compression: bool = False
    log_format: str = "text"  # "text" or "json"
    quiet: bool = False
    record: str | None = None  # JSON Lines recording path (--record/-w)
    redact: bool = True  # redact Cookie/Authorization values in the recording
    # Config file, Origin policy, idle timeout and faults (see wsinspect.faults).
    config: str | None = None  # the --config file the settings came from
    allow_origins: tuple[str, ...] = ()
    require_origin: bool = False
    origin_mode: str = "enforce"  # or "report"
    idle_timeout: float | None = None
    idle_action: str = "close-tcp"  # close-tcp, reset, close-frame, blackhole
    idle_close_code: int = 1001
    idle_ignores_control: bool = False
    faults: tuple[FaultSpec, ...] = ()
    seed: int | None = None
    control: str | None = None  # control socket path (wsinspect ctl)
    breakpoints: tuple[Breakpoint, ...] = ()  # --break (see wsinspect.intercept)
    scripts: tuple[str, ...] = ()  # --script files (see wsinspect.script)
    script_errors: str = "log"  # or "close": a failing hook closes its connection with 1011
    # Forward mode (--forward): an HTTP proxy; TLS in CONNECT tunnels is intercepted with the CA
    # in ca_dir (see wsinspect.ca) unless ignore_hosts match (or allow_hosts do not).
    forward: bool = False
    ca_dir: str | None = None
    ignore_hosts: tuple[str, ...] = ()  # regexes, searched in "host:port"
    allow_hosts: tuple[str, ...] = ()
    proxy_auth: str | None = None  # "user:password" clients must send (407 otherwise)
    # Decoded views (wsinspect.wire.decoders): --decode NAME[:PATH_REGEX] rules, in order, then
    # the subprotocol and the handshake's look unless auto_decode is off (--no-decode);
    # --proto/--proto-message: a protobuf schema. Decoding runs in the consumers, never the relay.
    decode: tuple[str, ...] = ()
    auto_decode: bool = True
    proto: str | None = None
    proto_message: str | None = None

    @property
    def listen_is_loopback(self) -> bool:
        return self.listen_host in ("localhost", "::1") or self.listen_host.startswith("127.")
