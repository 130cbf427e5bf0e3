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
  wsinspect ctl --control /tmp/ws.sock break add 'dir=c2s,match=^order'   # hold matching messages
  wsinspect ctl --control /tmp/ws.sock held                  # what is held: id, conn, dir, age
  wsinspect ctl --control /tmp/ws.sock resume 1              # forward held message 1 as it came
  wsinspect ctl --control /tmp/ws.sock resume 2 --text '{"qty": 2}'    # ... or edited
  wsinspect ctl --control /tmp/ws.sock drop 3
  wsinspect ctl --control /tmp/ws.sock resume --all
  wsinspect ctl --control /tmp/ws.sock send 3 --to client --text 'hello from the proxy'
  wsinspect ctl --control /tmp/ws.sock send 3 --to upstream --close 4000 'bye'

A connection is named by its number as the log shows it (#3 or 3). 'fault add' without --conn
applies to every open connection and to the ones opened afterwards; so does 'break add'. --json
prints the raw answer. A command the proxy refuses (an unknown id, a bad spec, a close code that
may not be sent, a file that cannot be read) says why and exits with status 2.
"""

from __future__ import annotations

import argparse
import base64
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

    brk = sub.add_parser("break", help="add, list or clear breakpoints ('break add SPEC')")
    bsub = brk.add_subparsers(dest="break_action", metavar="add|list|clear", required=True)
    badd = bsub.add_parser("add", help="hold the data messages SPEC matches")
    badd.add_argument("spec", help="e.g. 'dir=c2s,match=^order' or 'dir:s2c op:binary #3' "
                      "(see wsinspect proxy --help, breakpoints)")
    bsub.add_parser("list", help="the armed breakpoints")
    bclear = bsub.add_parser("clear", help="remove one breakpoint, or all (held messages stay)")
    bclear.add_argument("id", type=int, nargs="?", default=None)
    sub.add_parser("held", help="held messages: id, connection, direction, age, preview")
    res = sub.add_parser("resume", help="forward a held message as it came, or edited")
    res.add_argument("id", type=int, nargs="?", default=None)
    res.add_argument("--all", action="store_true", help="forward every held message as it came")
    body = res.add_mutually_exclusive_group()
    body.add_argument("--text", metavar="STR", help="send this text in its place")
    body.add_argument("--file", metavar="F", help="send this file's bytes in its place")
    drop = sub.add_parser("drop", help="drop a held message")
    drop.add_argument("id", type=int)
    send = sub.add_parser("send", help="inject a message into a connection")
    send.add_argument("conn", type=_conn)
    send.add_argument("--to", choices=("upstream", "client"), required=True,
                      help="which peer receives it")
    what = send.add_mutually_exclusive_group(required=True)
    what.add_argument("--text", metavar="STR", help="a text message")
    what.add_argument("--file", metavar="F", help="a binary message: this file's bytes")
    what.add_argument("--ping", metavar="DATA", nargs="?", const="", help="a ping (DATA optional)")
    what.add_argument("--pong", metavar="DATA", nargs="?", const="", help="an unsolicited pong")
    what.add_argument("--close", metavar=("CODE", "REASON"), nargs="+",
                      help="a close frame: CODE [REASON] (1000-1014 but 1004-1006, or 3000-4999)")


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
    if action == "break":
        if args.break_action == "add":
            return {"cmd": "break-add", "spec": args.spec}
        if args.break_action == "clear":
            return {"cmd": "break-clear", "id": args.id}
        return {"cmd": "break-list"}
    if action == "held":
        return {"cmd": "held"}
    if action == "resume":
        if args.all and (args.id is not None or args.text is not None or args.file):
            raise Refused("resume --all forwards every held message as it came: give no id, "
                           "--text or --file with it")
        return {"cmd": "resume", "id": args.id, "all": args.all, **_body(args.text, args.file)}
    if action == "drop":
        return {"cmd": "drop", "id": args.id}
    if action == "send":
        req: dict[str, Any] = {"cmd": "send", "conn": args.conn, "to": args.to}
        if args.close is not None:
            code, *reason = args.close
            try:
                req.update(kind="close", code=int(code), reason=" ".join(reason))
            except ValueError:
                raise Refused(f"--close {code!r}: a close code is a number") from None
            return req
        for kind in ("ping", "pong"):
            if getattr(args, kind) is not None:
                return {**req, "kind": kind, "text": getattr(args, kind)}
        return {**req, "kind": "text" if args.text is not None else "binary",
                **_body(args.text, args.file)}
    if args.fault_action == "add":
        return {"cmd": "fault-add", "spec": args.spec, "conn": args.conn}
    if args.fault_action == "clear":
        return {"cmd": "fault-clear", "conn": args.conn}
    return {"cmd": "faults"}


class CtlError(Exception):
    """The proxy could not be asked (exit status 1)."""


class Refused(CtlError):
    """The request is bad or the proxy refused it (exit status 2): nothing changed."""


def _body(text: str | None, path: str | None) -> dict[str, Any]:
    """A payload for a request: ``{"text": ...}``, a file's bytes as ``{"base64": ...}``, or
    nothing."""
    if text is not None:
        return {"text": text}
    if path is None:
        return {}
    try:
        with open(path, "rb") as fh:
            return {"base64": base64.b64encode(fh.read()).decode()}
    except OSError as exc:
        raise Refused(f"cannot read {path}: {exc.strerror or exc}") from None


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
        raise Refused(answer.get("error", "failed"))
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


def _show_held(held: list[dict[str, Any]]) -> str:
    arrows = {"c2s": "→", "s2c": "←"}
    lines = [
        f"{h['id']}: #{h['conn']} {arrows.get(h['dir'], h['dir'])} {h['age']:.1f}s "
        f"{'text' if h['opcode'] == 1 else 'binary'} len={h['len']} {h['preview']!r} "
        f"(breakpoint {h['breakpoint']})"
        for h in held
    ]
    return "\n".join(lines) or "nothing held"


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
        return 2 if isinstance(exc, Refused) else 1
    if args.action == "held" and not args.json:
        print(_show_held(result))
        return 0
    if args.action == "break" and args.break_action == "list" and not args.json:
        print("\n".join(f"{b['id']}: {b['spec']}" for b in result) or "no breakpoints")
        return 0
    if args.json or not isinstance(result, str):
        print(json.dumps(result, indent=2))
    else:
        print(result)
    return 0
