"""The ``wsinspect`` command line: a table of subcommands, each in ``wsinspect.commands``."""

from __future__ import annotations

import argparse
import importlib
import sys
from collections.abc import Sequence

from wsinspect import __version__
from wsinspect.commands import is_interrupt
from wsinspect.config import apply_config_file
from wsinspect.settings import ConfigError

__all__ = ["build_parser", "main"]

# name → (module in wsinspect.commands, one-line help)
COMMANDS: dict[str, tuple[str, str]] = {
    "proxy": ("proxy", "run the relay headless and log every frame on stdout"),
    "tui": ("tui", "run the relay and watch its traffic live in a terminal UI"),
    "mock": ("mock", "a scripted WebSocket server, no upstream: your script answers the client"),
    "view": ("view", "open a recording (or a Chrome HAR) in the terminal UI, read-only"),
    "demo": ("demo", "try it: an echo server, the proxy and a web page, with the UI"),
    "cat": ("cat", "print a recording (or a Chrome HAR) with the live log's format"),
    "stats": ("stats", "per-connection and total figures of a recording"),
    "export": ("export", "convert a recording to HAR 1.2 or pcap"),
    "replay": ("replay", "replay a recorded client against a server; --diff to compare"),
    "ctl": ("ctl", "act on a running proxy through its --control socket (cut, close, faults)"),
    "ca": ("ca", "wsinspect's certificate authority for proxy --forward: where, and how to trust it"),
}

EPILOG = """\
examples:
  wsinspect proxy --upstream ws://127.0.0.1:9000          # listen on 127.0.0.1:8080
  wsinspect proxy --upstream wss://example.com -w s.jsonl  # record to a file
  wsinspect proxy --forward      # be the HTTP proxy of a browser or app (see 'wsinspect ca')

Run 'wsinspect COMMAND --help' for a command's options.
"""


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="wsinspect",
        description="WebSocket debugging proxy and traffic inspector.",
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--version", action="version", version=f"wsinspect {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name, (module_name, help_text) in COMMANDS.items():
        module = importlib.import_module(f"wsinspect.commands.{module_name}")
        cmd = sub.add_parser(
            name,
            help=help_text,
            description=(module.__doc__ or help_text).strip(),
            formatter_class=argparse.RawDescriptionHelpFormatter,
        )
        module.configure(cmd)
        cmd.set_defaults(_run=module.run)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        # --config FILE: the file's values become defaults and the flags are parsed again.
        args = apply_config_file(parser, argv, args)
    except ConfigError as exc:
        print(f"wsinspect: error: {exc}", file=sys.stderr)
        return 2
    if args.command is None:
        parser.print_help()
        return 2
    try:
        code: int = args._run(args)
    except BaseException as exc:
        if not is_interrupt(exc):
            raise
        return 130
    return code


if __name__ == "__main__":
    sys.exit(main())
