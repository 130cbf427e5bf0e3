"""Summarise a recording (or a Chrome DevTools HAR): per connection and in total.

Duration, messages, frames and bytes each way (bytes are wire bytes: frame headers plus
payload lengths), frames by opcode, the largest message, rates, close codes and who closed,
protocol violations, injected faults and frames that were not delivered.

examples:
  wsinspect stats session.jsonl
  wsinspect stats session.jsonl --json | jq .total
"""

from __future__ import annotations

import argparse
import sys

__all__ = ["configure", "run"]


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("file", metavar="FILE", help="a wsinspect recording (.jsonl) or a HAR")
    parser.add_argument("--conn", type=int, metavar="N", action="append",
                        help="only connection N (repeatable)")
    parser.add_argument("--json", action="store_true", help="print the figures as JSON")


def run(args: argparse.Namespace) -> int:
    import json

    from wsinspect.progress import Progress
    from wsinspect.recording.reader import QuickFrame, RecordingError, iter_quick, read_recording
    from wsinspect.sinks.stats import Stats, format_stats

    try:
        recording = read_recording(args.file)
    except RecordingError as exc:
        print(f"wsinspect stats: {exc}", file=sys.stderr)
        return 2
    stats = Stats()
    conns = set(args.conn) if args.conn else None
    progress = Progress(recording.size, "reading")
    try:
        # Common frame lines come parsed only as far as the figures need (``QuickFrame``).
        publish, publish_quick = stats.publish, stats.publish_quick
        for event in iter_quick(recording, progress.update):
            if conns is not None and event.conn not in conns:
                continue
            if event.__class__ is QuickFrame:
                publish_quick(event)
            else:
                publish(event)  # type: ignore[arg-type]
    finally:
        progress.close()
    try:
        if args.json:
            print(json.dumps(stats.to_dict(), indent=2, ensure_ascii=False))
        else:
            print(format_stats(stats))
    except BrokenPipeError:
        sys.stderr.close()  # `wsinspect stats FILE | head`: not an error
    return 0
