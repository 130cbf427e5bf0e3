"""Replay a recorded client against a server, and optionally compare what it answers.

Opens a new WebSocket to --upstream (the recorded path, subprotocol offer and request headers,
minus redacted, hop-by-hop and handshake headers), sends the client's recorded frames with
their recorded fragmentation, bits and timing (scaled by --speed, or none with --fast), each
with a fresh mask key, and prints what comes back with the live log's format. When the recorded
client sent no close frame, wsinspect closes (1000) once the server has sent as many messages as
in the recording and gone quiet, or after --timeout seconds of silence.

Replay keeps the conversation's order as well as its timing: a client frame that was sent after
the server's Nth message in the recording waits (up to --timeout) until the server has sent N
messages in the replay, so --fast never closes before the answers have come.

--diff compares the server's data messages with the recorded ones, message by message (opcode,
length and payload; for payloads recorded only up to the capture limit, the recorded part),
prints the first differences, and exits 1 when there is one: a recording becomes a regression
test. Exit status 2: the recording cannot be replayed or the server cannot be reached.

examples:
  wsinspect replay session.jsonl --upstream ws://127.0.0.1:9000 --fast --diff
  wsinspect replay session.jsonl --upstream wss://staging.example.com --conn 3 --speed 2 -w again.jsonl
"""

from __future__ import annotations

import argparse
import contextlib
import math
import os
import sys
import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import trio

    from wsinspect.events import ConnectionOpened, Event, FrameSeen
    from wsinspect.hub import Hub
    from wsinspect.wire.frames import Frame
    from wsinspect.wire.messages import Message
    from wsinspect.wire.sides import Direction, Initiator

__all__ = ["ReplayPlan", "configure", "diff_messages", "plan_replay", "run"]

#: Never copied from the recording: hop-by-hop (RFC 9110 §7.6.1) and per-handshake (RFC 6455
#: §4.1) headers; ``open_websocket`` makes its own.
DROPPED_HEADERS = frozenset({
    "host", "connection", "upgrade", "keep-alive", "te", "trailer", "transfer-encoding",
    "proxy-connection", "proxy-authenticate", "proxy-authorization", "content-length",
    "sec-websocket-key", "sec-websocket-version", "sec-websocket-accept",
})


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("file", metavar="FILE", help="a wsinspect recording (.jsonl) or a HAR")
    parser.add_argument("--upstream", "-u", metavar="URL", required=True,
                        help="the server to replay against: ws://host:port[/prefix] or wss://...")
    parser.add_argument("--conn", type=int, metavar="N",
                        help="which recorded connection to replay (default: the first)")
    pace = parser.add_mutually_exclusive_group()
    pace.add_argument("--speed", type=float, default=1.0, metavar="FACTOR",
                      help="replay this many times faster than recorded (default: 1)")
    pace.add_argument("--fast", action="store_true", help="send without waiting between frames")
    parser.add_argument("--diff", action="store_true",
                        help="compare the server's messages with the recorded ones; exit 1 on a difference")
    parser.add_argument("--timeout", type=float, default=5.0, metavar="SECONDS",
                        help="give up waiting for the server after this long silent (default: 5)")
    parser.add_argument("--record", "-w", metavar="FILE", help="record the replayed session")
    parser.add_argument("--no-redact", dest="redact", action="store_false",
                        help="keep credential header values in --record")
    parser.add_argument("--upstream-ca", metavar="FILE", help="extra CA bundle (PEM) for wss://")
    parser.add_argument("--insecure", "-k", action="store_true",
                        help="do not verify the server's TLS certificate")
    parser.add_argument("--quiet", "-q", action="store_true", help="print no frames, only the diff")


class ReplayError(Exception):
    """The recording cannot be replayed as asked; one line for the user."""


@dataclass(slots=True)
class ReplayPlan:
    """What to replay: the recorded connection's handshake, its client frames (in order) and
    the server's recorded messages (for ``--diff``)."""

    opened: ConnectionOpened
    frames: list[FrameSeen]
    server_messages: list[Message]
    server_close: int | None = None
    conns: int = 1
    #: for each client frame, how many server messages the recording had before it
    answered_before: list[int] = field(default_factory=list)

    @property
    def uses_rsv1(self) -> bool:
        return any(f.frame.rsv1 for f in self.frames)

    def headers(self) -> list[tuple[str, str]]:
        from wsinspect.recording.format import REDACTED

        keep_ext = self.uses_rsv1  # replaying compressed frames needs the same negotiation
        out = []
        for name, value in self.opened.request_headers:
            low = name.lower()
            if low in DROPPED_HEADERS or value == REDACTED:
                continue
            if low == "sec-websocket-extensions" and not keep_ext:
                continue
            out.append((name, value))
        return out


def plan_replay(events: list[Event], conn: int | None) -> ReplayPlan:
    from wsinspect.events import ConnectionOpened, FrameSeen, MessageSeen

    opens = [e for e in events if isinstance(e, ConnectionOpened)]
    if not opens:
        raise ReplayError("the recording has no WebSocket connection to replay")
    if conn is None:
        opened = opens[0]
    else:
        found = [e for e in opens if e.conn == conn]
        if not found:
            ids = ", ".join(str(e.conn) for e in opens)
            raise ReplayError(f"no connection #{conn} in the recording (connections: {ids})")
        opened = found[0]
    frames: list[FrameSeen] = []
    messages: list[Message] = []
    answered_before: list[int] = []
    server_close = None
    for e in events:
        if e.conn != opened.conn:
            continue
        if isinstance(e, FrameSeen):
            if e.direction == "c2s" and e.delivered:
                frames.append(e)
                answered_before.append(len(messages))
            elif e.direction == "s2c" and e.delivered and e.frame.opcode == 8 and server_close is None:
                server_close = e.frame.close_code
        elif isinstance(e, MessageSeen) and e.direction == "s2c":
            messages.append(e.message)
    return ReplayPlan(opened, frames, messages, server_close, len(opens), answered_before)


def _describe(m: Message) -> str:
    from wsinspect.render import preview
    from wsinspect.wire.frames import opcode_name

    text = preview(m.payload, text=m.opcode == 1, length=m.length, width=60)
    return f"{opcode_name(m.opcode)} len={m.length} {text}"


def diff_messages(recorded: list[Message], replayed: list[Message], *, limit: int = 3) -> list[str]:
    """Readable differences between the recorded and the replayed server messages (empty when
    they match). A recorded payload cut at the capture limit is compared on its recorded part."""
    out: list[str] = []
    for i, (a, b) in enumerate(zip(recorded, replayed, strict=False), start=1):
        same_prefix = b.payload[: len(a.payload)] == a.payload
        if a.opcode == b.opcode and a.length == b.length and same_prefix:
            continue
        lines = [f"server message {i} differs:", f"  recorded: {_describe(a)}",
                 f"  replayed: {_describe(b)}"]
        if a.opcode == b.opcode and not same_prefix:
            at = next((j for j, (x, y) in enumerate(zip(a.payload, b.payload, strict=False)) if x != y),
                      min(len(a.payload), len(b.payload)))
            lines.append(f"  first difference at byte {at}")
        out.append("\n".join(lines))
        if len(out) >= limit:
            out.append("(further differences not shown)")
            return out
    if len(recorded) != len(replayed):
        n = min(len(recorded), len(replayed))
        if len(recorded) > len(replayed):
            what = f"server message {n + 1} ({_describe(recorded[n])}) never came"
        else:
            what = f"extra server message {n + 1}: {_describe(replayed[n])}"
        out.append(f"the recording has {len(recorded)} server messages, the replay got "
                   f"{len(replayed)}: {what}")
    return out


@dataclass(slots=True)
class _State:
    sent_close: bool = False
    got_close: int | None = None  # the server's close code (or -1 for none given)
    eof: bool = False
    messages: list[Message] = field(default_factory=list)
    last_rx: float = 0.0
    frames: dict[str, int] = field(default_factory=lambda: {"c2s": 0, "s2c": 0})
    bytes: dict[str, int] = field(default_factory=lambda: {"c2s": 0, "s2c": 0})
    initiator: Initiator = "client"
    answered: trio.Event | None = None  # set when a server message arrives
    closes: dict[str, tuple[int | None, str]] = field(default_factory=dict)


async def replay(plan: ReplayPlan, url: str, hub: Hub, *, speed: float = 1.0,
                 patience: float = 5.0, ca: str | None = None, insecure: bool = False,
                 progress: trio.MemorySendChannel[int] | None = None) -> list[Message]:
    """Replay ``plan`` against ``url`` (the upstream base URL; the recorded path is appended),
    publishing every frame both ways to ``hub``; return the server's data messages.
    ``patience`` bounds every wait on the server (handshake, answers, closing).

    Raises ``ReplayError`` when the server cannot be reached or refuses the handshake.
    """
    import trio

    from wsinspect.events import ConnectionClosed, ConnectionOpened, FrameSeen, MessageSeen
    from wsinspect.relay.upstream import UpstreamError, open_websocket
    from wsinspect.wire.frames import encode_frame
    from wsinspect.wire.inspector import Inspector

    target = url.rstrip("/") + (plan.opened.path if plan.opened.path.startswith("/") else "/" + plan.opened.path)
    try:
        ws = await open_websocket(target, plan.headers(), ca=ca, insecure=insecure, timeout=patience)
    except (UpstreamError, OSError) as exc:
        raise ReplayError(f"cannot open {target}: {exc}") from None
    conn_id = plan.opened.conn
    start_wall = time.time()
    hub.publish(ConnectionOpened(
        conn_id, start_wall, "replay", plan.opened.path, target,
        tuple(plan.headers()), 101, ws.answer.headers, ws.answer.subprotocol, ws.answer.extensions,
    ))
    st = _State(last_rx=trio.current_time())
    rx = Inspector("s2c", extensions=ws.answer.extensions)
    tx = Inspector("c2s", extensions=ws.answer.extensions)
    seq = [0]
    send_lock = trio.Lock()

    def publish_frames(direction: Direction, frames: list[Frame], ts: float) -> None:
        for f in frames:
            seq[0] += 1
            if direction == "c2s" and f.opcode == 8 and "client" not in st.closes:
                st.closes["client"] = (f.close_code, f.close_reason or "")
            st.frames[direction] += 1
            st.bytes[direction] += f.wire_size
            hub.publish(FrameSeen(conn_id, seq[0], direction, ts, f))
            if f.message is not None:
                hub.publish(MessageSeen(conn_id, direction, ts, f.message, f.message_no))
                if direction == "s2c":
                    st.messages.append(f.message)
                    if st.answered is not None:
                        st.answered.set()

    async def send(data: bytes) -> None:
        async with send_lock:
            # Published before sending, so the log never shows an answer before its question.
            publish_frames("c2s", tx.feed(data), time.time())
            await ws.stream.send_all(data)

    async def receiver(cancel: trio.CancelScope) -> None:
        data = ws.answer.trailing
        while True:
            if data:
                st.last_rx = trio.current_time()
                frames = rx.feed(data)
                publish_frames("s2c", frames, time.time())
                for f in frames:
                    if f.opcode == 8 and st.got_close is None:
                        st.got_close = f.close_code if f.close_code is not None else -1
                        st.closes["upstream"] = (f.close_code, f.close_reason or "")
                        if not st.sent_close:
                            # Echo the close (RFC 6455 §5.5.1): the server started closing.
                            st.initiator = "upstream"
                            st.sent_close = True
                            body = f.payload[:2] if f.close_code is not None else b""
                            with contextlib.suppress(trio.BrokenResourceError,
                                                     trio.ClosedResourceError):
                                await send(encode_frame(8, body, mask_key=os.urandom(4)))
            try:
                data = bytes(await ws.stream.receive_some(65536))
            except (trio.BrokenResourceError, trio.ClosedResourceError, OSError):
                data = b""
            if not data:
                st.eof = True
                cancel.cancel()
                return

    async def wait_answers(count: int) -> None:
        # Until the server has sent ``count`` messages, or has been silent for ``patience``.
        while len(st.messages) < count and not st.eof and st.got_close is None:
            st.answered = trio.Event()
            with trio.move_on_at(st.last_rx + patience) as scope:
                await st.answered.wait()
            if scope.cancelled_caught:
                return

    async def sender() -> None:
        t0 = trio.current_time()
        base = plan.opened.ts
        for n, event in enumerate(plan.frames, start=1):
            if st.got_close is not None or st.eof:
                return  # the server is closing: the rest would not be read
            f = event.frame
            if f.opcode == 8 and st.sent_close:
                continue
            if math.isfinite(speed):
                await trio.sleep_until(t0 + max(0.0, event.ts - base) / speed)
            await wait_answers(plan.answered_before[n - 1])
            payload = f.payload
            if len(payload) < f.length:
                print(f"wsinspect replay: warning: frame {event.seq} was recorded only up to the "
                      f"capture limit; {f.length - len(payload)} zero bytes sent in place of the rest",
                      file=sys.stderr)
                payload += bytes(f.length - len(payload))
            key = os.urandom(4) if f.masked else None
            if f.opcode == 8:
                st.sent_close = True
            await send(encode_frame(f.opcode, payload, fin=f.fin, rsv1=f.rsv1, rsv2=f.rsv2,
                                    rsv3=f.rsv3, mask_key=key))
            if progress is not None:
                progress.send_nowait(n)

    async def settle() -> None:
        # The client has said all it had to say: wait for the server to finish answering.
        grace = 0.5
        while True:
            quiet = trio.current_time() - st.last_rx
            if st.got_close is not None and st.sent_close:
                await trio.sleep(patience)  # the closing handshake is done; wait for its EOF
                return
            if len(st.messages) >= len(plan.server_messages) and quiet >= grace:
                break
            if quiet >= patience:
                break
            await trio.sleep(0.05)
        if not st.sent_close:
            st.sent_close = True
            await send(encode_frame(8, (1000).to_bytes(2, "big"), mask_key=os.urandom(4)))
        await trio.sleep(patience)

    try:
        async with trio.open_nursery() as nursery:
            nursery.start_soon(receiver, nursery.cancel_scope)
            try:
                await sender()
                await settle()
            except (trio.BrokenResourceError, trio.ClosedResourceError):
                pass
            nursery.cancel_scope.cancel()
    finally:
        await trio.aclose_forcefully(ws.stream)
    now = time.time()
    code = None if st.got_close in (None, -1) else st.got_close
    how = "close-handshake" if st.got_close is not None and st.sent_close else "fin"
    first = st.closes.get(st.initiator)
    hub.publish(ConnectionClosed(
        conn_id, now, st.initiator, how, first[0] if first else code, first[1] if first else None,
        st.closes.get("client"), st.closes.get("upstream"), now - start_wall, dict(st.frames),
        dict(st.bytes),
    ))
    return st.messages


class _Printer:
    """Prints each event at once: replay is not a hot path, and the user watches it live."""

    def __init__(self) -> None:
        from wsinspect.render import render_event

        self.render = render_event

    def publish(self, event: Event) -> None:
        print(self.render(event), flush=True)


def run(args: argparse.Namespace) -> int:
    import trio

    from wsinspect.hub import Hub
    from wsinspect.recording.reader import RecordingError, read_recording
    from wsinspect.recording.writer import Recorder
    from wsinspect.settings import ConfigError

    if not args.upstream.startswith(("ws://", "wss://")):
        print(f"wsinspect replay: --upstream {args.upstream!r}: the scheme must be ws:// or wss://",
              file=sys.stderr)
        return 2
    if not args.fast and args.speed <= 0:
        print("wsinspect replay: --speed must be positive", file=sys.stderr)
        return 2
    try:
        recording = read_recording(args.file)
        plan = plan_replay(list(recording.events), args.conn)
    except (RecordingError, ReplayError) as exc:
        print(f"wsinspect replay: {exc}", file=sys.stderr)
        return 2
    if plan.conns > 1 and args.conn is None:
        print(f"wsinspect replay: replaying connection #{plan.opened.conn} "
              f"(the recording has {plan.conns}; choose with --conn)", file=sys.stderr)
    hub = Hub()
    if not args.quiet:
        hub.subscribe(_Printer())
    recorder = None
    if args.record:
        try:
            recorder = Recorder.create(args.record, redact=args.redact, hub=hub,
                                       options={"replay_of": args.file, "upstream": args.upstream})
        except ConfigError as exc:
            print(f"wsinspect replay: {exc}", file=sys.stderr)
            return 2
        hub.subscribe(recorder)
    speed = math.inf if args.fast else args.speed

    async def main() -> list[Message] | ReplayError:
        from wsinspect.progress import Progress

        bar = Progress(len(plan.frames), "replaying", unit_bytes=False, delay=0.5)
        send_progress, receive_progress = trio.open_memory_channel[int](math.inf)
        # With frames printed on the same terminal, a bar would garble them.
        show_bar = args.quiet or not sys.stdout.isatty()
        try:
            async with trio.open_nursery() as nursery:
                if recorder is not None:
                    nursery.start_soon(recorder.run)

                async def draw() -> None:
                    async for n in receive_progress:
                        bar.update(n)

                nursery.start_soon(draw)
                try:
                    return await replay(plan, args.upstream, hub, speed=speed, patience=args.timeout,
                                        ca=args.upstream_ca, insecure=args.insecure,
                                        progress=send_progress if show_bar else None)
                except ReplayError as exc:
                    return exc  # returned, not raised: the nursery would wrap it in a group
                finally:
                    nursery.cancel_scope.cancel()
        finally:
            bar.close()

    try:
        replayed = trio.run(main)
    finally:
        if recorder is not None:
            recorder.close()
    if isinstance(replayed, ReplayError):
        print(f"wsinspect replay: {replayed}", file=sys.stderr)
        return 2
    if not args.diff:
        return 0
    differences = diff_messages(plan.server_messages, replayed)
    if differences:
        print("\n".join(differences))
        return 1
    print(f"no difference: {len(replayed)} server messages match the recording")
    return 0
