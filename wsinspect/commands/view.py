"""Open a recording (JSON Lines from --record) or a HAR saved by Chrome DevTools in the
terminal UI, read-only. A recording of any size opens at once: the viewer reads it through an
index kept beside it (FILE.wsidx, built on first open while you look, extended when the file
grows, so a recording still being written can be followed). See docs/recording-index.md.

examples:
  wsinspect view session.jsonl
  wsinspect view --index-only session.jsonl    # build or update the index, then exit
  wsinspect view devtools-export.har
"""

from __future__ import annotations

import argparse
import sys
import time
from typing import TYPE_CHECKING

from wsinspect.commands.tui import _positive_int

if TYPE_CHECKING:
    from wsinspect.recording.index import RecordingIndex
    from wsinspect.tui.store import EventStore
    from wsinspect.wire.decoders import Decoding

__all__ = ["configure", "run"]

#: Rows the viewer keeps in memory when it reads a recording through its index.
DEFAULT_VIEW_WINDOW = 20_000
#: Frames kept when a HAR (read whole, no index) is viewed.
DEFAULT_HAR_MAX_FRAMES = 1_000_000


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("file", metavar="FILE", help="a wsinspect recording (.jsonl) or a HAR")
    parser.add_argument(
        "--ui-max-frames", metavar="N", type=_positive_int, default=None,
        help=f"rows kept in memory; the others are read from the recording when shown "
             f"(default: {DEFAULT_VIEW_WINDOW}; for a HAR, the frames kept: "
             f"{DEFAULT_HAR_MAX_FRAMES})",
    )
    parser.add_argument(
        "--index", metavar="PATH", default=None,
        help="where the index lives (default: FILE.wsidx, else the cache directory, else memory)",
    )
    parser.add_argument(
        "--index-only", action="store_true",
        help="build or update the index (with a progress bar on a terminal) and exit",
    )
    from wsinspect.config import add_decode_arguments

    add_decode_arguments(parser)


def _decoding(args: argparse.Namespace) -> Decoding | None:
    """The ``Decoding`` the flags ask for; ``ConfigError`` for a bad one."""
    from wsinspect.config import decode_settings
    from wsinspect.sinks.decoded import decoding_for

    return decoding_for(argparse.Namespace(**decode_settings(args)))


def run(args: argparse.Namespace) -> int:
    from wsinspect.recording.reader import RecordingError, recording_version
    from wsinspect.settings import ConfigError

    try:
        args.decoding = _decoding(args)
    except ConfigError as exc:
        print(f"wsinspect view: error: {exc}", file=sys.stderr)
        return 2

    try:
        recording_version(args.file)
    except RecordingError as exc:
        if args.index_only:
            print(f"wsinspect view: {exc}", file=sys.stderr)
            return 2
        return _run_whole(args)  # a HAR (or not a recording: it says so)
    return _run_indexed(args)


def _print_warnings(warnings: list[str]) -> None:
    for line in warnings[:20]:
        print(f"wsinspect view: warning: {line}", file=sys.stderr)
    if len(warnings) > 20:
        print(f"wsinspect view: ... and {len(warnings) - 20} more warnings", file=sys.stderr)


class _Warnings:
    """Collects warnings for stderr (after the UI) and shows them in the UI once there is a
    store. Called from the indexing thread too: list.append and store.publish are atomic."""

    def __init__(self) -> None:
        self.lines: list[str] = []
        self.store: EventStore | None = None

    def __call__(self, text: str) -> None:
        from wsinspect.events import Notice

        self.lines.append(text)
        if self.store is not None:
            self.store.publish(Notice(time.time(), "warning", text))


def _run_indexed(args: argparse.Namespace) -> int:
    from wsinspect.events import Notice
    from wsinspect.recording.index import open_index
    from wsinspect.recording.reader import RecordingError

    warn = _Warnings()
    try:
        index = open_index(args.file, warn=warn, location=args.index)
    except RecordingError as exc:
        print(f"wsinspect view: {exc}", file=sys.stderr)
        return 2
    if args.index_only:
        return _build_only(args.file, index, warn.lines)

    from wsinspect.tui.app import INPUT_GRACE, InspectorApp
    from wsinspect.tui.paged import PagedStore, PagedView

    store = PagedStore(index, args.ui_max_frames or DEFAULT_VIEW_WINDOW)
    store.use_decoding(args.decoding)
    for text in warn.lines:
        store.publish(Notice(time.time(), "warning", text))
    warn.store = store
    view = PagedView(index)
    app = InspectorApp(store, view=view, source_name=args.file, progress=store.index_progress)
    store.start(pause=lambda: time.monotonic() - app.ui.last_input < INPUT_GRACE)
    try:
        app.run()
    finally:
        view.close()
        store.close()
        index.close()
    _print_warnings(warn.lines)
    return app.return_code or 0


def _build_only(path: str, index: RecordingIndex, warnings: list[str]) -> int:
    import os

    from wsinspect.progress import Progress

    bar = Progress(max(1, os.path.getsize(path) - index.indexed_to), "indexing")
    t0 = time.monotonic()
    try:
        added = index.update(lambda done, _total: bar.update(done))
    finally:
        bar.close()
        index.close()
    _print_warnings(warnings)
    took = time.monotonic() - t0
    print(f"{path}: {index.rows} rows indexed ({added} new, {took:.1f}s) in {index.location}")
    return 0


def _run_whole(args: argparse.Namespace) -> int:
    """A HAR (or anything that is not a JSON Lines recording): read whole into the store, as
    it streams in."""
    from wsinspect.events import Notice
    from wsinspect.recording.reader import RecordingError, read_recording
    from wsinspect.tui.app import InspectorApp
    from wsinspect.tui.store import EventStore

    store = EventStore(args.ui_max_frames or DEFAULT_HAR_MAX_FRAMES, live=False)
    store.use_decoding(args.decoding)
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
    _print_warnings(warnings)
    return app.return_code or 0
