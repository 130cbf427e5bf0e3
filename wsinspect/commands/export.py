"""Convert a recording (or a Chrome DevTools HAR) to HAR 1.2 or to a pcap for Wireshark.

HAR: one entry per WebSocket connection, the opening handshake as request/response,
"_resourceType": "websocket" and "_webSocketMessages" as Chrome DevTools writes them (one item
per data message, plus close frames; text for opcode 1, base64 otherwise).

pcap: synthetic Ethernet/IPv4/TCP packets carrying each connection's handshake and frames as
they crossed the client-facing side; `tshark -r OUT.pcap -Y websocket` dissects every frame.
Payload bytes beyond the capture limit were not recorded and are zeros in the pcap.

examples:
  wsinspect export session.jsonl --format har -o session.har
  wsinspect export session.jsonl --format pcap -o session.pcap && wireshark session.pcap
"""

from __future__ import annotations

import argparse
import sys

__all__ = ["configure", "run"]


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("file", metavar="FILE", help="a wsinspect recording (.jsonl) or a HAR")
    parser.add_argument("--format", "-f", choices=("har", "pcap"),
                        help="output format (default: from the -o file's extension)")
    parser.add_argument("--output", "-o", metavar="OUT", required=True,
                        help="file to write ('-' for stdout)")


def run(args: argparse.Namespace) -> int:
    from wsinspect.progress import Progress
    from wsinspect.recording.reader import RecordingError, iter_with_progress, read_recording

    fmt = args.format
    if fmt is None:
        for ext in ("har", "pcap"):
            if args.output.lower().endswith("." + ext):
                fmt = ext
        if fmt is None:
            print("wsinspect export: say --format har or --format pcap", file=sys.stderr)
            return 2
    try:
        recording = read_recording(args.file)
    except RecordingError as exc:
        print(f"wsinspect export: {exc}", file=sys.stderr)
        return 2
    progress = Progress(recording.size, f"exporting {fmt}")
    events = iter_with_progress(recording, progress.update)
    try:
        if fmt == "har":
            from wsinspect.export.har import write_har

            if args.output == "-":
                count = write_har(events, sys.stdout)
            else:
                with open(args.output, "w", encoding="utf-8") as out:
                    count = write_har(events, out)
            what = f"{count} WebSocket entries"
        else:
            from wsinspect.export.pcap import write_pcap

            server = recording.header.get("listen")
            if args.output == "-":
                count = write_pcap(events, sys.stdout.buffer, server=server)
            else:
                with open(args.output, "wb") as bout:
                    count = write_pcap(events, bout, server=server)
            what = f"{count} packets"
    except OSError as exc:
        progress.close()
        print(f"wsinspect export: {args.output}: {exc.strerror or exc}", file=sys.stderr)
        return 1
    progress.close()
    if args.output != "-":
        print(f"wrote {what} to {args.output}", file=sys.stderr)
    return 0
