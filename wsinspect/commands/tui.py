"""Run the relay and watch its traffic live in a terminal UI.

Takes the same options as 'wsinspect proxy'. The UI keeps the newest --ui-max-frames frames in
memory (the status bar says how many older ones it dropped; a --record file keeps them all,
and H in the UI shows the whole recording).
Press ? in the UI for the keys.

examples:
  wsinspect tui --upstream ws://127.0.0.1:9000
  wsinspect tui -u wss://example.com -w session.jsonl --ui-max-frames 20000
"""

from __future__ import annotations

import argparse
import sys

from wsinspect.config import add_proxy_arguments, settings_from_args
from wsinspect.settings import ConfigError

__all__ = ["add_ui_arguments", "configure", "run"]

DEFAULT_UI_MAX_FRAMES = 100_000


def _positive_int(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError("must be at least 1")
    return value


def add_ui_arguments(parser: argparse.ArgumentParser, default: int = DEFAULT_UI_MAX_FRAMES) -> None:
    parser.add_argument(
        "--ui-max-frames", metavar="N", type=_positive_int, default=default,
        help=f"frames the UI keeps in memory; older ones are dropped from view (default: {default})",
    )


def configure(parser: argparse.ArgumentParser) -> None:
    add_proxy_arguments(parser)
    add_ui_arguments(parser)


def run(args: argparse.Namespace) -> int:
    try:
        settings = settings_from_args(args)
    except ConfigError as exc:
        print(f"wsinspect tui: error: {exc}", file=sys.stderr)
        return 2
    from wsinspect.tui.live import build_live_app

    try:
        app = build_live_app(settings, max_frames=args.ui_max_frames)
    except ConfigError as exc:  # e.g. --record to a path that cannot be written
        print(f"wsinspect tui: error: {exc}", file=sys.stderr)
        return 2
    app.run()
    return app.return_code or 0
