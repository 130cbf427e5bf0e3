"""The proxy's settings (``wsinspect.settings``) filled from CLI flags and TOML files.

``add_proxy_arguments`` declares the flags that ``proxy``, ``tui`` and ``demo`` share;
``settings_from_args`` validates them into a frozen ``Settings``. A bad value raises
``ConfigError`` naming the option and the reason, before anything listens.

``--config FILE`` reads the same options from TOML (keys are the long flag names;
``configs/default.toml`` lists them all): ``apply_config_file`` loads the file as defaults and
parses the command line again, so flags override the file.
"""

from __future__ import annotations

import argparse
import re
from collections.abc import Sequence
from typing import Any

from wsinspect.faults.spec import FaultSpec, parse_fault
from wsinspect.intercept.breakpoints import Breakpoint, BreakpointError, parse_breakpoint
from wsinspect.settings import DEFAULT_MAX_MESSAGE_SIZE, ConfigError, Settings, Upstream

__all__ = [
    "add_decode_arguments",
    "add_proxy_arguments",
    "apply_config_file",
    "decode_settings",
    "listen_address",
    "load_config",
    "parse_hostport",
    "settings_from_args",
]


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


def add_proxy_arguments(parser: argparse.ArgumentParser, *, upstream_required: bool = True,
                        forward: bool = True) -> None:
    """Declare the relay's flags on ``parser`` (shared by ``proxy``, ``tui`` and ``demo``);
    ``forward``: with the forward-proxy flags."""
    net = parser.add_argument_group("listening and upstream")
    net.add_argument(
        "--listen", "-l", metavar="HOST:PORT", default="127.0.0.1:8080",
        help="address to accept clients on (default: 127.0.0.1:8080; port 0 picks a free one)",
    )
    # Not required at parse time: --config may provide it (checked in settings_from_args).
    parser.set_defaults(_upstream_required=upstream_required)
    net.add_argument(
        "--upstream", "-u", metavar="URL",
        help="the real server: ws://host:port[/prefix] or wss://...; the client's path and "
        "query are appended to the prefix",
    )
    net.add_argument("--cert", metavar="FILE", help="TLS certificate (PEM) to serve wss:// to clients")
    net.add_argument("--key", metavar="FILE", help="private key (PEM) for --cert")
    net.add_argument("--upstream-ca", metavar="FILE",
                     help="extra CA bundle (PEM) to trust for a wss:// upstream")
    net.add_argument("--insecure", "-k", action="store_true",
                     help="do not verify the upstream's TLS certificate (logged on every connection)")
    net.add_argument("--websocket-only", action="store_true",
                     help="answer plain HTTP requests 400 instead of passing them upstream")

    if forward:
        _add_forward_arguments(parser)

    hs = parser.add_argument_group("handshake and frames")
    hs.add_argument("--handshake-timeout", metavar="SECONDS", type=_positive_float, default=10.0,
                    help="drop a client that has not sent its request, and give up on an "
                    "upstream that has not answered, after this long (default: 10)")
    hs.add_argument("--max-header-size", metavar="BYTES", type=_size, default=64 * 1024,
                    help="request headers over this size get 431 (default: 64k)")
    hs.add_argument("--capture-limit", metavar="BYTES", type=_size, default=1 << 20,
                    help="log and record at most this much of each payload; longer ones are "
                    "kept truncated with their length and SHA-256 (default: 1m)")
    hs.add_argument("--strict", action="store_true",
                    help="close a connection on a protocol violation (1002, 1007 for bad "
                    "UTF-8, 1009 over --max-message-size) instead of only flagging it; "
                    "frames a peer sends after its close frame are discarded")
    hs.add_argument("--max-message-size", metavar="BYTES", type=_size, default=None,
                    help="with --strict, close with 1009 when a message grows (or a frame "
                    "header says it will grow) over this size (default: 64m; 0: no limit)")
    hs.add_argument("--no-compression", action="store_true",
                    help="strip permessage-deflate from the client's offer: traffic is "
                    "uncompressed end to end")

    out = parser.add_argument_group("output")
    out.add_argument("--log-format", choices=("text", "json"), default="text",
                     help="text lines (default) or one JSON object per event")
    out.add_argument("--quiet", "-q", action="store_true", help="print nothing on stdout")
    out.add_argument("--record", "-w", metavar="FILE", default=None,
                     help="record every event to FILE as JSON Lines (flushed every 100 ms)")
    out.add_argument("--no-redact", dest="redact", action="store_false",
                     help="keep Cookie, Set-Cookie, Authorization and Proxy-Authorization "
                     "values in the recording (redacted by default)")
    add_decode_arguments(parser)
    _add_fault_arguments(parser)


def _add_forward_arguments(parser: argparse.ArgumentParser) -> None:
    fwd = parser.add_argument_group(
        "forward proxy (instead of --upstream; see docs/forward.md)")
    fwd.add_argument("--forward", action="store_true",
                     help="be the HTTP proxy clients are configured to use (CONNECT and "
                     "absolute-form requests), relaying to whatever host each one asks for; TLS "
                     "is intercepted with wsinspect's CA (`wsinspect ca` says how to trust it)")
    fwd.add_argument("--ca-dir", metavar="DIR", default=None,
                     help="where the CA lives (default: $WSINSPECT_CA_DIR or ~/.wsinspect)")
    fwd.add_argument("--ignore-hosts", metavar="REGEX", action="append", default=[],
                     help="tunnel hosts whose host:port matches blindly, without interception "
                     "(apps that pin certificates); repeatable")
    fwd.add_argument("--allow-hosts", metavar="REGEX", action="append", default=[],
                     help="intercept only hosts whose host:port matches; others are tunnelled "
                     "blindly; repeatable")
    fwd.add_argument("--proxy-auth", metavar="USER:PASS", default=None,
                     help="answer 407 to clients without these Proxy-Authorization credentials")


def _forward_settings(args: argparse.Namespace, upstream: Upstream | None) -> dict[str, Any]:
    """The forward-proxy settings, checked: ``ConfigError`` on a bad combination."""
    forward = bool(getattr(args, "forward", False))
    ignore = tuple(getattr(args, "ignore_hosts", None) or ())
    allow = tuple(getattr(args, "allow_hosts", None) or ())
    auth = getattr(args, "proxy_auth", None)
    if not forward:
        for flag, given in (("--ignore-hosts", ignore), ("--allow-hosts", allow),
                            ("--proxy-auth", auth), ("--ca-dir", getattr(args, "ca_dir", None))):
            if given:
                raise ConfigError(f"{flag} only acts with --forward")
        return {}
    if upstream is not None:
        raise ConfigError("--forward and --upstream exclude each other: a forward proxy "
                          "relays to the host each client asks for")
    if args.cert or args.key:
        raise ConfigError("--forward listens for plain HTTP proxy requests; --cert/--key serve "
                          "TLS in reverse mode only (tunnelled TLS is intercepted with the CA)")
    for flag, patterns in (("--ignore-hosts", ignore), ("--allow-hosts", allow)):
        for pattern in patterns:
            try:
                re.compile(pattern)
            except re.error as exc:
                raise ConfigError(f"{flag} {pattern!r}: not a regular expression ({exc})") from None
    if auth is not None and ":" not in auth:
        raise ConfigError(f"--proxy-auth {auth!r}: expected USER:PASS")
    return {"forward": True, "ca_dir": args.ca_dir, "ignore_hosts": ignore,
            "allow_hosts": allow, "proxy_auth": auth}


def listen_address(args: argparse.Namespace) -> tuple[str, int]:
    """``--listen``'s host and port, checked with ``--cert``/``--key`` (both or neither);
    ``ConfigError`` says what is wrong."""
    try:
        host, port = parse_hostport(args.listen)
    except ValueError as exc:
        raise ConfigError(f"--listen {args.listen!r}: expected HOST:PORT ({exc})") from None
    if bool(args.cert) != bool(args.key):
        raise ConfigError("--cert and --key go together: give both to serve TLS, or neither")
    return host, port


def settings_from_args(args: argparse.Namespace) -> Settings:
    """Validate parsed flags into ``Settings``; ``ConfigError`` on a bad combination."""
    host, port = listen_address(args)
    upstream = Upstream.parse(args.upstream) if getattr(args, "upstream", None) else None
    forward = _forward_settings(args, upstream)
    if upstream is None and not forward and getattr(args, "_upstream_required", False):
        raise ConfigError("--upstream is required (or 'upstream' in the --config file), "
                          "or --forward to be the proxy clients are configured to use")
    max_message_size = args.max_message_size
    if max_message_size is not None and not args.strict:
        raise ConfigError("--max-message-size only acts with --strict")
    if args.strict:  # a limit by default; 0 means none
        max_message_size = DEFAULT_MAX_MESSAGE_SIZE if max_message_size is None else (
            max_message_size or None)
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
        max_message_size=max_message_size,
        no_compression=args.no_compression,
        log_format=args.log_format,
        quiet=args.quiet,
        record=getattr(args, "record", None),
        redact=getattr(args, "redact", True),
        **_fault_settings(args),
        **forward,
        **decode_settings(args),
    )


# ---- config files, Origin policy, idle timeouts and faults (issue 5) ---------------------------

FAULT_EPILOG = """\
--fault SPEC is KIND[:KEY=VALUE,...] (quote a value that contains a comma):
  latency:dir=s2c,ms=200,jitter=50      drop:dir=c2s,match=^ping,p=0.5
  throttle:rate=16k                     close-after:seconds=30,code=4000
every kind takes p= (probability, default 1), path= and origin= (regexes the connection must
match); dir= is c2s, s2c or both (default). Kinds and their keys:
"""


class _ReplaceAppend(argparse.Action):
    """Like ``append``, but the first use on the command line replaces the default list (which
    may come from ``--config``): flags override the file, lists included."""

    def __call__(self, parser: argparse.ArgumentParser, namespace: argparse.Namespace,
                 values: Any, option_string: str | None = None) -> None:
        current = getattr(namespace, self.dest, None)
        items = [] if current is None or current is self.default else list(current)
        items.append(values)
        setattr(namespace, self.dest, items)


def _fault_arg(text: str) -> FaultSpec:
    try:
        return parse_fault(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


SCRIPT_EPILOG = """\
A script is a Python file that defines any of on_open(conn), on_message(conn, msg) and
on_close(conn, info), plain or async. on_message's answer decides: None (as it came), a str or
bytes (this instead), wsinspect.script.DROP, or a list (these instead, in order). conn.send(dir,
payload), conn.close(code, reason) and conn.log(text) work from any hook or task. The file is
loaded again for each new connection when it changed; see docs/scripting.md.
"""

BREAK_EPILOG = """\
--break SPEC is KEY=VALUE pairs (dir=c2s,match=^order) or the TUI filter's words
(dir:c2s re:^order): dir= c2s or s2c, conn= a connection, op= text or binary, match= a regex
searched in the message's text (compressed messages: inflated), text= a substring. A held
message waits, and everything its sender sends after it, until 'wsinspect ctl resume ID'
(as it came, or --text/--file in its place), 'ctl drop ID' or the TUI lets it go.
"""


def _break_arg(text: str) -> Breakpoint:
    try:
        return parse_breakpoint(text)
    except BreakpointError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def _origin_arg(text: str) -> str:
    from wsinspect.faults.origin import OriginPattern

    try:
        OriginPattern.parse(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None
    return text.strip()


def _idle_action_arg(text: str) -> str:
    from wsinspect.faults.spec import parse_idle_action

    try:
        parse_idle_action(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None
    return text.strip()


def _add_fault_arguments(parser: argparse.ArgumentParser) -> None:
    """The config-file, Origin, idle and fault flags (part of ``add_proxy_arguments``)."""
    from wsinspect.faults.spec import fault_help

    parser.set_defaults(_proxy_parser=parser)
    cfg = parser.add_argument_group("config file")
    cfg.add_argument("--config", "-c", metavar="FILE", default=None,
                     help="read options from a TOML file (keys are the long flag names, e.g. "
                     "idle-timeout = 60; see configs/default.toml); flags override the file")

    org = parser.add_argument_group("Origin policy (RFC 6455 §10.2)")
    org.add_argument("--allow-origin", metavar="PATTERN", dest="allow_origin", action=_ReplaceAppend,
                     type=_origin_arg, default=[],
                     help="allow this Origin (repeatable): https://app.example.com, "
                     "https://*.example.com, http://localhost:*, or null; others get 403")
    org.add_argument("--require-origin", action="store_true",
                     help="also refuse (403) handshakes that send no Origin header")
    org.add_argument("--origin-mode", choices=("enforce", "report"), default="enforce",
                     help="enforce (default): refuse with 403; report: let it through and log "
                     "a fault event")

    idle = parser.add_argument_group("idle timeout")
    idle.add_argument("--idle-timeout", metavar="SECONDS", type=_positive_float, default=None,
                      help="act on a connection when no frame passed either way for this long")
    idle.add_argument("--idle-action", metavar="ACTION", type=_idle_action_arg, default="close-tcp",
                      help="close-tcp (default: end both TCP connections, the client sees 1006), "
                      "reset (RST both), close-frame[:CODE] (close frames, default 1001, and "
                      "complete the closing handshake), blackhole (stop forwarding, keep both "
                      "open)")
    idle.add_argument("--idle-ignores-control", action="store_true",
                      help="pings and pongs do not count as activity")

    flt = parser.add_argument_group(
        "faults", FAULT_EPILOG + fault_help().split("\n", 1)[1]
    )
    flt.add_argument("--fault", metavar="SPEC", dest="faults", action=_ReplaceAppend,
                     type=_fault_arg, default=[],
                     help="inject a fault (repeatable), see the syntax above")
    flt.add_argument("--seed", metavar="N", type=int, default=None,
                     help="seed the faults' random choices: a run with the same seed and "
                     "traffic makes the same choices")
    flt.add_argument("--control", metavar="PATH", default=None,
                     help="open a control socket (Unix socket, owner-only) for 'wsinspect ctl'")

    scr = parser.add_argument_group("scripts", SCRIPT_EPILOG)
    scr.add_argument("--script", metavar="FILE", dest="scripts", action=_ReplaceAppend,
                     default=[], help="run this script's hooks on every connection "
                     "(repeatable: each message goes through them in order)")
    scr.add_argument("--script-errors", choices=("log", "close"), default="log",
                     help="an exception in a hook: log it and let the message go on as it came "
                     "(default), or close the connection with 1011")

    brk = parser.add_argument_group("breakpoints", BREAK_EPILOG)
    brk.add_argument("--break", metavar="SPEC", dest="breakpoints", action=_ReplaceAppend,
                     type=_break_arg, default=[],
                     help="hold the data messages this matches until 'wsinspect ctl resume' "
                     "or the TUI lets them go (repeatable), see the syntax above")


def _fault_settings(args: argparse.Namespace) -> dict[str, Any]:
    """The Settings fields of ``_add_fault_arguments``, validated."""
    from wsinspect.faults.spec import parse_idle_action

    try:
        action, code = parse_idle_action(getattr(args, "idle_action", "close-tcp"))
    except ValueError as exc:
        raise ConfigError(f"--idle-action {exc}") from None
    return {
        "config": getattr(args, "config", None),
        "allow_origins": tuple(getattr(args, "allow_origin", ())),
        "require_origin": getattr(args, "require_origin", False),
        "origin_mode": getattr(args, "origin_mode", "enforce"),
        "idle_timeout": getattr(args, "idle_timeout", None),
        "idle_action": action,
        "idle_close_code": code,
        "idle_ignores_control": getattr(args, "idle_ignores_control", False),
        "faults": tuple(getattr(args, "faults", ())),
        "seed": getattr(args, "seed", None),
        "control": getattr(args, "control", None),
        "breakpoints": tuple(getattr(args, "breakpoints", ())),
        "scripts": tuple(getattr(args, "scripts", ())),
        "script_errors": getattr(args, "script_errors", "log"),
    }


_NOT_IN_FILES = {"help", "config", "version"}


def _option_actions(parser: argparse.ArgumentParser) -> dict[str, argparse.Action]:
    """Long option name without ``--`` → its action."""
    out: dict[str, argparse.Action] = {}
    for action in parser._actions:
        for opt in action.option_strings:
            if opt.startswith("--") and opt[2:] not in _NOT_IN_FILES:
                out[opt[2:]] = action
    return out


def _file_value(action: argparse.Action, value: Any) -> Any:
    """Convert one TOML value the way the flag would be parsed; ``ValueError`` with why."""
    if isinstance(action, argparse._StoreTrueAction | argparse._StoreFalseAction):
        if not isinstance(value, bool):
            raise ValueError(f"expected true or false, got {value!r}")
        return value if isinstance(action, argparse._StoreTrueAction) else not value
    if isinstance(action, _ReplaceAppend | argparse._AppendAction):
        items = value if isinstance(value, list) else [value]
        return [_file_scalar(action, item) for item in items]
    return _file_scalar(action, value)


def _file_scalar(action: argparse.Action, value: Any) -> Any:
    if isinstance(value, dict | list | bool):
        raise ValueError(f"expected a {'number' if action.type else 'string'}, got {value!r}")
    text = str(value)
    try:
        converted = action.type(text) if callable(action.type) else text
    except (argparse.ArgumentTypeError, ValueError, TypeError) as exc:
        raise ValueError(str(exc) or f"bad value {value!r}") from None
    if action.choices is not None and converted not in action.choices:
        raise ValueError(f"{value!r} is not one of {', '.join(map(str, action.choices))}")
    return converted


def load_config(path: str, parser: argparse.ArgumentParser) -> dict[str, Any]:
    """Read a TOML config file into ``{dest: value}`` for ``parser``'s options.

    Top-level keys are long flag names (``idle-timeout = 60``, ``allow-origin = [...]``,
    ``no-redact = true``); ``[[fault]]`` tables hold one fault each (``kind`` plus the
    ``--fault`` keys). ``ConfigError`` names the file, the key and the reason."""
    import difflib
    import tomllib

    try:
        with open(path, "rb") as fh:
            data = tomllib.load(fh)
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read the config file: {exc.strerror or exc}") from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{path}: not valid TOML: {exc}") from None
    actions = _option_actions(parser)
    out: dict[str, Any] = {}
    for key, value in data.items():
        if key == "fault":
            out["faults"] = _file_faults(path, value)
            continue
        action = actions.get(key) or actions.get(key.replace("_", "-"))
        if action is None:
            close = difflib.get_close_matches(key, [*actions, "fault"], n=1)
            hint = f" (did you mean {close[0]!r}?)" if close else ""
            raise ConfigError(f"{path}: key {key!r}: not a wsinspect option{hint}")
        try:
            out[action.dest] = _file_value(action, value)
        except ValueError as exc:
            raise ConfigError(f"{path}: key {key!r}: {exc}") from None
    return out


def _file_faults(path: str, value: Any) -> list[FaultSpec]:
    if not isinstance(value, list):
        raise ConfigError(f"{path}: key 'fault': expected [[fault]] tables or a list of strings")
    specs = []
    for i, item in enumerate(value):
        where = f"fault[{i}]"
        try:
            if isinstance(item, str):
                specs.append(parse_fault(item))
                continue
            if not isinstance(item, dict):
                raise ValueError("expected a table or a --fault string")
            table = dict(item)
            specs.append(FaultSpec.from_mapping(table.pop("kind", None), table))
        except ValueError as exc:
            text = str(exc)
            sub, sep, reason = text.partition(": ")
            if sep and " " not in sub and not isinstance(item, str):
                raise ConfigError(f"{path}: key '{where}.{sub}': {reason}") from None
            raise ConfigError(f"{path}: key '{where}': {text}") from None
    return specs


def apply_config_file(parser: argparse.ArgumentParser, argv: Sequence[str] | None,
                      args: argparse.Namespace) -> argparse.Namespace:
    """If ``args`` came with ``--config FILE``: load it as defaults of the subcommand's parser
    and parse ``argv`` again, so that flags given on the command line win over the file.
    ``ConfigError`` (file, key, reason) if the file is bad — before anything listens."""
    path = getattr(args, "config", None)
    sub = getattr(args, "_proxy_parser", None)
    if not path or sub is None:
        return args
    sub.set_defaults(**load_config(path, sub))
    return parser.parse_args(argv)


# ---- decoded views of the protocols inside messages (issue 15; docs/decoders.md) ---------------

DECODE_EPILOG = """\
Decoders: socket.io, graphql-ws, stomp, jsonrpc, mqtt, protobuf, and any a --script registers
(--decode list prints them). A connection gets the first --decode rule whose PATH_REGEX is
found in its request target, else the decoder of its negotiated subprotocol, else one that
recognises its handshake (EIO=4 in a Socket.IO path), unless --no-decode. Decoding never
changes what is relayed: it runs in the outputs (JSON log, TUI, stats), not in the relay.
"""


class _DecodeAppend(_ReplaceAppend):
    """``--decode`` (repeatable); ``--decode list`` prints the decoders' names and exits."""

    def __call__(self, parser: argparse.ArgumentParser, namespace: argparse.Namespace,
                 values: Any, option_string: str | None = None) -> None:
        if values == "list":
            from wsinspect.wire.decoders import decoder_names, get_decoder

            for name in decoder_names():
                decoder = get_decoder(name)
                subs = ", ".join(decoder.subprotocols)
                print(f"{name:<14} filter prefix {decoder.filter_prefix + ':':<8}"
                      + (f" subprotocols: {subs}" if subs else ""))
            parser.exit(0)
        super().__call__(parser, namespace, values, option_string)


def add_decode_arguments(parser: argparse.ArgumentParser) -> None:
    """The decoding flags (``proxy``, ``tui``, ``demo``, ``view``, ``stats``)."""
    dec = parser.add_argument_group("decoded views (see docs/decoders.md)", DECODE_EPILOG)
    dec.add_argument("--decode", metavar="NAME[:PATH_REGEX]", dest="decode", action=_DecodeAppend,
                     default=[], help="decode the messages of connections whose path matches "
                     "PATH_REGEX (every connection without it) with decoder NAME (repeatable; "
                     "the first rule that matches wins; 'list': the decoders)")
    dec.add_argument("--no-decode", dest="auto_decode", action="store_false",
                     help="no decoder chosen by subprotocol or handshake: only --decode rules")
    dec.add_argument("--proto", metavar="FILE.proto", default=None,
                     help="decode protobuf messages with this schema (.proto, compiled with "
                     "grpcio-tools, or a descriptor set: .pb, .desc, .protoset)")
    dec.add_argument("--proto-message", metavar="PKG.TYPE", default=None,
                     help="the message type in --proto that each message is (needed when the "
                     "schema defines several top-level messages)")


def _load_script_decoders(paths: Sequence[str]) -> None:
    """Run the ``--script`` files once so that the decoders they register are known to
    ``--decode`` (the relay loads them again; their other hooks are not called here)."""
    from wsinspect.script.loader import ScriptError, ScriptFile

    for path in paths:
        try:
            ScriptFile(path).load()
        except ScriptError as exc:
            raise ConfigError(str(exc)) from None


def load_proto_schema(proto: str, message: str | None) -> None:
    """Load ``--proto FILE.proto`` and make ``--proto-message pkg.Type`` (which may be left out
    when the file defines one top-level message) the protobuf decoder's message type
    (``wsinspect.protoschema``); ``ConfigError`` (one line) when it does not load."""
    import importlib

    try:
        module = importlib.import_module("wsinspect.protoschema")
    except ImportError as exc:  # fails loudly: never decode without the schema asked for
        raise ConfigError(f"--proto {proto}: protobuf schemas cannot be loaded ({exc})") from None
    schema_error: type[Exception] = getattr(module, "SchemaError", ValueError)
    try:
        module.use_schema(proto, message)
    except (schema_error, OSError, ValueError, LookupError) as exc:
        text = str(exc)
        # The loader's messages name the file already ("--proto FILE: ...", "FILE:2:25: ...").
        raise ConfigError(text if proto in text else f"--proto {proto}: {text}") from None


def decode_settings(args: argparse.Namespace) -> dict[str, Any]:
    """The decoding settings, checked: an unknown decoder (after the ``--script`` files have
    registered theirs), a bad path regex, a ``--proto-message`` without ``--proto``, a schema
    that does not load are a ``ConfigError``."""
    from wsinspect.wire.decoders import decoder_names, parse_rule

    rules = tuple(getattr(args, "decode", None) or ())
    proto = getattr(args, "proto", None)
    message = getattr(args, "proto_message", None)
    scripts = tuple(getattr(args, "scripts", None) or ())
    if scripts and any(r.partition(":")[0].strip() not in decoder_names() for r in rules):
        _load_script_decoders(scripts)
    for rule in rules:
        try:
            parse_rule(rule)
        except (KeyError, ValueError) as exc:
            text = exc.args[0] if exc.args else str(exc)
            raise ConfigError(text if text.startswith("--decode") else f"--decode {rule!r}: {text}") from None
    if message is not None and proto is None:
        raise ConfigError("--proto-message PKG.TYPE names a type of the --proto FILE.proto schema: "
                          "give --proto too")
    if proto is not None:
        load_proto_schema(proto, message)
    return {"decode": rules, "auto_decode": getattr(args, "auto_decode", True),
            "proto": proto, "proto_message": message}
