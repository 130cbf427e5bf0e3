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
_SHAPES = 4096  # distinct common frames whose rendering ``cat`` keeps (then starts afresh)


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
    from wsinspect.config import add_decode_arguments

    add_decode_arguments(parser)


def run(args: argparse.Namespace) -> int:
    import re

    from wsinspect.config import decode_settings
    from wsinspect.events import Event, FaultInjected, FrameSeen, MessageSeen
    from wsinspect.recording.encoder import json_line
    from wsinspect.recording.reader import RecordingError, iter_quick, quick_frame, read_recording
    from wsinspect.render import ARROWS, format_time, frame_parts, render_event
    from wsinspect.settings import ConfigError
    from wsinspect.sinks.decoded import EventDecoder, decoded_json, decoding_for
    from wsinspect.wire.decoders import Decoded
    from wsinspect.wire.frames import opcode_from_name

    try:
        pattern = re.compile(args.grep) if args.grep else None
    except re.error as exc:
        print(f"wsinspect cat: --grep {args.grep!r}: {exc}", file=sys.stderr)
        return 2
    try:
        decoding = decoding_for(argparse.Namespace(**decode_settings(args)))
    except ConfigError as exc:
        print(f"wsinspect cat: error: {exc}", file=sys.stderr)
        return 2
    try:
        recording = read_recording(args.file)
    except RecordingError as exc:
        print(f"wsinspect cat: {exc}", file=sys.stderr)
        return 2
    # Connections a decoder knows (docs/decoders.md) get their messages decoded, in order.
    decoder = EventDecoder(decoding) if decoding is not None else None
    conns = set(args.conn) if args.conn else None
    opcodes = {opcode_from_name(o) for o in args.opcode} if args.opcode else None

    def wanted(event: Event, decoded: bool = False) -> bool:
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
            if not (args.messages or decoded) and m.frames <= 1 and not m.compressed:
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

    json_mode = args.log_format == "json"

    def write_event(event: Event) -> None:
        decoded = decoder.feed(event) if decoder is not None else None
        if decoded is not None and decoded.continued:
            decoded = None  # part of a unit still incomplete: nothing of its own to say
        # A decoded message is shown even when it took one frame: its view says more.
        if not wanted(event, decoded is not None and json_mode):
            if decoded is not None and wanted(event, True):
                write_summary(event, decoded)
            return
        if json_mode:
            line = json_line(event)  # the live log's JSON line
            if decoded is not None:
                line = f'{line[:-1]},"decoded":{decoded_json(decoded)}}}'
        else:
            line = render_event(event, width=args.width)
        if pattern is None or matches(event, line):
            out.write(line + "\n")
        if decoded is not None and not json_mode:
            write_summary(event, decoded)

    def write_summary(event: Event, decoded: Decoded) -> None:
        """The text line of a decoded message, after its frame or message line."""
        if json_mode:
            return
        assert isinstance(event, MessageSeen)
        line = f"{format_time(event.ts)} #{event.conn} {ARROWS.get(event.direction, '?')} ↳ {decoded.summary}"
        if pattern is None or matches(event, line):
            out.write(line + "\n")

    # Common frame lines in text: their line is the time, the parts ``frame_parts`` renders and
    # the mask key between them (``render_frame``), and whether the payload matches depends on
    # the payload alone. Both are kept per distinct frame (connection, direction, header less
    # its key, stored payload): the same line and the same answer as rendering each frame, at
    # the cost of a lookup for the many frames that repeat one.
    shapes: dict[tuple[bytes, ...], tuple[str, str, bool]] = {}
    width = args.width
    fast_text = args.log_format == "text" and not args.messages
    direction_b = args.dir.encode("ascii") if args.dir else None
    last_time = [b"", ""]  # the last timestamp's JSON and its text (a chunk's frames share it)

    def write_quick(m: re.Match[bytes]) -> None:
        """A common frame line in text, from its match (``reader.quick_match``): rendered
        once per distinct frame."""
        conn, _, direction, ts, hdr, kind, body, _, _ = m.groups()
        masked = hdr[2] >= 0x38  # the second header byte's hex starts with 8-f: the mask bit
        key = (conn, direction, hdr[:-8] if masked else hdr, kind, body)
        shape = shapes.get(key)
        if shape is None:
            event = quick_frame(m).frame_event()
            head, tail = frame_parts(event, width=width)
            hit = pattern is not None and bool(
                pattern.search(event.frame.payload.decode("utf-8", "replace")))
            if len(shapes) >= _SHAPES:
                shapes.clear()
            shape = shapes[key] = (" " + head, tail, hit)
        if ts != last_time[0]:
            last_time[0], last_time[1] = ts, format_time(float(ts))
        head, tail, hit = shape
        if masked:
            line = f"{last_time[1]}{head} mask={hdr[-8:].decode('ascii')}{tail}"
        else:
            line = f"{last_time[1]}{head}{tail}"
        if pattern is None or hit or pattern.search(line):
            out.write(line + "\n")

    try:
        for item in iter_quick(recording, matches=True):
            if item.__class__ is not re.Match:
                write_event(item)  # type: ignore[arg-type]
                continue
            m: re.Match[bytes] = item
            if decoder is not None and int(m.group(1)) in decoder.conns:
                if (direction_b is None or m.group(3) == direction_b) and (
                        conns is None or int(m.group(1)) in conns):
                    for event in quick_frame(m).events():  # the frame, and its message
                        write_event(event)
                continue
            # A common frame line: filtered on what it says before any event is built.
            if direction_b is not None and m.group(3) != direction_b:
                continue
            if conns is not None and int(m.group(1)) not in conns:
                continue
            if args.messages:
                if m.group(9) is None:
                    continue
                events: list[Event] = quick_frame(m).events()[1:]
            else:
                if opcodes is not None and int(m.group(5)[1:2], 16) not in opcodes:
                    continue
                if fast_text:
                    write_quick(m)
                    continue
                events = [quick_frame(m).frame_event()]  # its one-frame message: said by it
            for event in events:
                write_event(event)
    except BrokenPipeError:
        # `wsinspect cat FILE | head`: the reader went away; that is not an error.
        sys.stderr.close()
        return 0
    return 0
