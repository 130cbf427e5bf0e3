"""Act on a running proxy through its control socket (started with --control PATH).

examples:
  wsinspect proxy -u ws://127.0.0.1:9000 --control /tmp/ws.sock &
  wsinspect ctl --control /tmp/ws.sock list                 # open connections and their faults
  wsinspect ctl --control /tmp/ws.sock close 3 --code 4000  # close frames to both sides
  wsinspect ctl --control /tmp/ws.sock cut 3 --rst          # end both TCP connections (RST)
  wsinspect ctl --control /tmp/ws.sock idle-cut 3           # what the idle timeout would do
  wsinspect ctl --control /tmp/ws.sock latency 3 250        # 250 ms each way on #3 (0: off)
  wsinspect ctl --control /tmp/ws.sock fault add 'drop:dir=s2c,p=0.1'
  wsinspect ctl --control /tmp/ws.sock fault clear

A connection is named by its number as the log shows it (#3 or 3). 'fault add' without --conn
applies to every open connection and to the ones opened afterwards. --json prints the raw answer.
"""

from __future__ import annotations

import argparse
import json
import socket
import sys
import time
from typing import Any

__all__ = ["configure", "request", "run"]

TIMEOUT = 15.0  # a close waits for both peers' replies (up to 5 s) before it answers


def _conn(text: str) -> int:
    try:
        return int(text.removeprefix("#"))
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a connection number (#3 or 3)") from None


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--control", metavar="PATH", required=True,
                        help="the proxy's control socket (its --control PATH)")
    parser.add_argument("--json", action="store_true", help="print the raw JSON answer")
    sub = parser.add_subparsers(dest="action", metavar="ACTION", required=True)
    sub.add_parser("list", help="open connections, their traffic and faults")
    close = sub.add_parser("close", help="send close frames to both sides and complete the handshake")
    close.add_argument("conn", type=_conn)
    close.add_argument("--code", type=int, default=1000, help="close code (default 1000)")
    close.add_argument("--reason", default="", help="close reason")
    cut = sub.add_parser("cut", help="end both TCP connections without close frames")
    cut.add_argument("conn", type=_conn)
    cut.add_argument("--rst", action="store_true", help="reset (RST) instead of FIN")
    hole = sub.add_parser("blackhole", help="stop forwarding, keep both connections open")
    hole.add_argument("conn", type=_conn)
    hole.add_argument("--off", action="store_true", help="resume forwarding")
    idle = sub.add_parser("idle-cut", help="do now what --idle-action would do")
    idle.add_argument("conn", type=_conn)
    lat = sub.add_parser("latency", help="delay every frame of a connection (0: off)")
    lat.add_argument("conn", type=_conn)
    lat.add_argument("ms", type=float)
    lat.add_argument("--jitter", type=float, default=0.0, metavar="MS")
    fault = sub.add_parser("fault", help="add, clear or list faults ('fault add SPEC')")
    fsub = fault.add_subparsers(dest="fault_action", metavar="add|clear|list", required=True)
    add = fsub.add_parser("add", help="add a fault in the --fault syntax")
    add.add_argument("spec", help="e.g. 'latency:dir=s2c,ms=200' (see wsinspect proxy --help)")
    add.add_argument("--conn", type=_conn, default=None, help="only this open connection")
    clear = fsub.add_parser("clear", help="remove faults")
    clear.add_argument("--conn", type=_conn, default=None, help="only this open connection")
    fsub.add_parser("list", help="configured faults and policies")


def _request_for(args: argparse.Namespace) -> dict[str, Any]:
    action = args.action
    if action == "list":
        return {"cmd": "list"}
    if action == "close":
        return {"cmd": "close", "conn": args.conn, "code": args.code, "reason": args.reason}
    if action == "cut":
        return {"cmd": "cut", "conn": args.conn, "rst": args.rst}
    if action == "blackhole":
        return {"cmd": "blackhole", "conn": args.conn, "on": not args.off}
    if action == "idle-cut":
        return {"cmd": "idle-cut", "conn": args.conn}
    if action == "latency":
        return {"cmd": "latency", "conn": args.conn, "ms": args.ms, "jitter": args.jitter}
    if args.fault_action == "add":
        return {"cmd": "fault-add", "spec": args.spec, "conn": args.conn}
    if args.fault_action == "clear":
        return {"cmd": "fault-clear", "conn": args.conn}
    return {"cmd": "faults"}


class CtlError(Exception):
    pass


def request(path: str, req: dict[str, Any], *, timeout: float = TIMEOUT) -> Any:
    """Send one request to the control socket at ``path``; the result, or ``CtlError``."""
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    sock.settimeout(timeout)
    try:
        try:
            sock.connect(path)
        except OSError as exc:
            raise CtlError(f"cannot reach the proxy at {path}: {exc.strerror or exc} "
                           "(is it running with --control?)") from None
        sock.sendall(json.dumps(req).encode() + b"\n")
        data = b""
        while not data.endswith(b"\n"):
            chunk = sock.recv(65536)
            if not chunk:
                break
            data += chunk
    except TimeoutError:
        raise CtlError(f"no answer from {path} within {timeout:g} s") from None
    finally:
        sock.close()
    if not data:
        raise CtlError(f"the proxy at {path} closed the connection without answering")
    answer = json.loads(data)
    if not answer.get("ok"):
        raise CtlError(answer.get("error", "failed"))
    return answer.get("result")


def _show_list(conns: list[dict[str, Any]], faults: dict[str, Any]) -> str:
    from wsinspect.render import format_bytes

    lines = []
    now = time.time()
    per_conn = faults.get("connections", {})
    for c in conns:
        f, b = c.get("frames", {}), c.get("bytes", {})
        line = (f"#{c['conn']} {c.get('client', '')} {c.get('path', '')} "
                f"open {now - c.get('opened', now):.1f}s "
                f"frames →{f.get('c2s', 0)} ←{f.get('s2c', 0)} "
                f"bytes →{format_bytes(b.get('c2s', 0))} ←{format_bytes(b.get('s2c', 0))}")
        if c.get("tier"):
            line += f" tier {c['tier']}"
        if c.get("blackholed"):
            line += " [blackholed]"
        active = per_conn.get(str(c["conn"])) or per_conn.get(c["conn"])
        if active:
            line += " faults: " + " ".join(active)
        lines.append(line)
    if not lines:
        lines.append("no open connections")
    plan = faults.get("plan") or []
    lines.append("faults for new connections: " + (" ".join(plan) if plan else "none"))
    idle = faults.get("idle")
    if idle:
        lines.append(f"idle timeout: {idle['timeout']:g} s → {idle['action']}")
    return "\n".join(lines)


def run(args: argparse.Namespace) -> int:
    try:
        result = request(args.control, _request_for(args))
        if args.action == "list":
            faults = request(args.control, {"cmd": "faults"})
            if args.json:
                print(json.dumps({"connections": result, "faults": faults}, indent=2))
            else:
                print(_show_list(result, faults))
            return 0
    except CtlError as exc:
        print(f"wsinspect ctl: error: {exc}", file=sys.stderr)
        return 1
    if args.json or not isinstance(result, str):
        print(json.dumps(result, indent=2))
    else:
        print(result)
    return 0
