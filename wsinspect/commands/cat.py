"""Print a recording (or a HAR saved by Chrome DevTools) with the live log's line format.

By default every event is printed, frames one per line; a message made of several frames (or
compressed) also gets its reassembled message line. Filters combine (all must match).

examples:
  wsinspect cat session.jsonl
  wsinspect cat session.jsonl --conn 3 --dir s2c --opcode text --grep '"error"'
  wsinspect cat session.jsonl --messages --log-format json | jq .payload
"""

from __future__ import annotations

import argparse
import sys

__all__ = ["configure", "run"]

OPCODES = ("text", "binary", "ping", "pong", "close", "cont")


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("file", metavar="FILE", help="a wsinspect recording (.jsonl) or a HAR")
    parser.add_argument("--conn", type=int, metavar="N", action="append",
                        help="only connection N (repeatable)")
    parser.add_argument("--dir", choices=("c2s", "s2c"), help="only one direction")
    parser.add_argument("--opcode", choices=OPCODES, action="append",
                        help="only frames/messages with this opcode (repeatable)")
    parser.add_argument("--grep", metavar="REGEX",
                        help="only events whose line or full payload matches REGEX")
    parser.add_argument("--messages", action="store_true",
                        help="print one line per data message instead of one per frame")
    parser.add_argument("--log-format", choices=("text", "json"), default="text",
                        help="text lines (default) or the recorded JSON objects")
    parser.add_argument("--width", type=int, default=80, metavar="N",
                        help="characters of payload preview per line (default: 80)")


def run(args: argparse.Namespace) -> int:
    import re

    from wsinspect.events import Event, FaultInjected, FrameSeen, MessageSeen
    from wsinspect.recording.encoder import json_line
    from wsinspect.recording.reader import QuickFrame, RecordingError, iter_quick, read_recording
    from wsinspect.render import render_event
    from wsinspect.wire.frames import opcode_from_name

    try:
        pattern = re.compile(args.grep) if args.grep else None
    except re.error as exc:
        print(f"wsinspect cat: --grep {args.grep!r}: {exc}", file=sys.stderr)
        return 2
    try:
        recording = read_recording(args.file)
    except RecordingError as exc:
        print(f"wsinspect cat: {exc}", file=sys.stderr)
        return 2
    conns = set(args.conn) if args.conn else None
    opcodes = {opcode_from_name(o) for o in args.opcode} if args.opcode else None

    def wanted(event: Event) -> bool:
        if conns is not None and event.conn not in conns:
            return False
        direction = getattr(event, "direction", None)
        if args.dir and direction != args.dir:
            return False
        if isinstance(event, FrameSeen):
            if args.messages:
                return False
            if opcodes is not None and event.frame.opcode not in opcodes:
                return False
        elif isinstance(event, MessageSeen):
            m = event.message
            if not args.messages and m.frames <= 1 and not m.compressed:
                return False  # its one frame already says it all
            if opcodes is not None and m.opcode not in opcodes:
                return False
        elif opcodes is not None or (args.messages and isinstance(event, FaultInjected)):
            return False
        return True

    def matches(event: Event, line: str) -> bool:
        assert pattern is not None
        if pattern.search(line):
            return True
        payload = None
        if isinstance(event, FrameSeen):
            payload = event.frame.payload
        elif isinstance(event, MessageSeen):
            payload = event.message.payload
        return payload is not None and bool(pattern.search(payload.decode("utf-8", "replace")))

    out = sys.stdout

    def write_event(event: Event) -> None:
        if not wanted(event):
            return
        if args.log_format == "json":
            line = json_line(event)  # the live log's JSON line
        else:
            line = render_event(event, width=args.width)
        if pattern is not None and not matches(event, line):
            return
        out.write(line + "\n")

    try:
        for item in iter_quick(recording):
            if item.__class__ is QuickFrame:
                q: QuickFrame = item
                # A common frame line: filtered on what it says before any event is built.
                if (conns is not None and q.conn not in conns) or (args.dir and q.direction != args.dir):
                    continue
                if args.messages:
                    if not q.ends:
                        continue
                    events: list[Event] = q.events()[1:]
                else:
                    if opcodes is not None and q.header[0] & 15 not in opcodes:
                        continue
                    events = [q.frame_event()]  # its one-frame message: said by the frame
            else:
                events = [item]  # type: ignore[list-item]
            for event in events:
                write_event(event)
    except BrokenPipeError:
        # `wsinspect cat FILE | head`: the reader went away; that is not an error.
        sys.stderr.close()
        return 0
    return 0
