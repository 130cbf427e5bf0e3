"""Open a recording (JSON Lines from --record) or a HAR saved by Chrome DevTools in the
terminal UI, read-only. Large files open at once and fill in while you look.

examples:
  wsinspect view session.jsonl
  wsinspect view devtools-export.har
"""

from __future__ import annotations

import argparse
import sys

from wsinspect.commands.tui import add_ui_arguments

__all__ = ["configure", "run"]

# A recording is on disk in full, so by default view keeps ten times as many frames as tui.
DEFAULT_VIEW_MAX_FRAMES = 1_000_000


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("file", metavar="FILE", help="a wsinspect recording (.jsonl) or a HAR")
    add_ui_arguments(parser, DEFAULT_VIEW_MAX_FRAMES)


def run(args: argparse.Namespace) -> int:
    import time

    from wsinspect.events import Notice
    from wsinspect.recording.reader import RecordingError, read_recording
    from wsinspect.tui.app import InspectorApp
    from wsinspect.tui.store import EventStore

    store = EventStore(args.ui_max_frames, live=False)
    warnings: list[str] = []

    def warn(text: str) -> None:
        # Called from the loader thread: list.append and store.publish are both atomic.
        warnings.append(text)
        store.publish(Notice(time.time(), "warning", text))

    try:
        recording = read_recording(args.file, warn=warn)
    except RecordingError as exc:
        print(f"wsinspect view: {exc}", file=sys.stderr)
        return 2

    def progress() -> float:
        return recording.position / recording.size if recording.size else 1.0

    app = InspectorApp(store, source=recording.events, source_name=args.file, progress=progress)
    app.run()
    for line in warnings[:20]:
        print(f"wsinspect view: warning: {line}", file=sys.stderr)
    if len(warnings) > 20:
        print(f"wsinspect view: ... and {len(warnings) - 20} more warnings", file=sys.stderr)
    return app.return_code or 0
