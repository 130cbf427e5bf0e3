"""Summarise a recording (or a Chrome DevTools HAR): per connection and in total.

Duration, messages, frames and bytes each way (bytes are wire bytes: frame headers plus
payload lengths), frames by opcode, the largest message, rates, close codes and who closed,
protocol violations, injected faults and frames that were not delivered. Messages of
connections a decoder knows (by subprotocol, by handshake, or --decode) are counted by decoded
type: Socket.IO events by name, GraphQL operations, STOMP destinations, MQTT topics...

examples:
  wsinspect stats session.jsonl
  wsinspect stats session.jsonl --json | jq .total
  wsinspect stats session.jsonl --decode socket.io:^/socket.io/ --json | jq .total.decoded
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
    from wsinspect.config import add_decode_arguments

    add_decode_arguments(parser)


def run(args: argparse.Namespace) -> int:
    import json

    from wsinspect.config import decode_settings
    from wsinspect.progress import Progress
    from wsinspect.recording.reader import QuickFrame, RecordingError, iter_quick, read_recording
    from wsinspect.settings import ConfigError
    from wsinspect.sinks.decoded import decoding_for
    from wsinspect.sinks.stats import Stats, format_stats

    try:
        decoding = decoding_for(argparse.Namespace(**decode_settings(args)))
    except ConfigError as exc:
        print(f"wsinspect stats: error: {exc}", file=sys.stderr)
        return 2
    try:
        recording = read_recording(args.file)
    except RecordingError as exc:
        print(f"wsinspect stats: {exc}", file=sys.stderr)
        return 2
    stats = Stats(decoding)
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
