"""Run a scripted WebSocket server: no upstream, your script answers the client.

A mock is a real RFC 6455 server (the handshake is checked and refused like the proxy's, pings
get pongs, the close handshake completes; permessage-deflate is always declined) whose
traffic is logged, recorded and shown like the proxy's. The script is a Python file with any of
these hooks, plain or async:

  on_open(conn)           once the handshake is done; an async on_open runs as the
                          connection's background task, alongside its messages
  on_message(conn, msg)   each complete message from the client (msg.is_text, msg.text,
                          msg.data); what it returns is sent to the client: a str (text),
                          bytes (binary), a list of them (in order), None or DROP (nothing)
  on_close(conn, info)    when it has ended (info.initiator, info.code, info.reason)

conn.send("s2c", payload) pushes a message at any time, conn.close(code, reason) closes,
conn.log(text) writes a line to the log; conn.path, conn.request_headers, conn.subprotocol say
what the client asked. With several --script files, each message goes through them in order,
each seeing what the ones before made of it (None passes it on). A script is loaded again for each
new connection when it changed (one that does not load keeps the previous version, with a
warning). An exception in a hook is logged with its traceback and the connection goes on
(--script-errors close: it is closed with 1011).

example script (chat_mock.py):
  import trio

  async def on_open(conn):
      conn.send("s2c", '{"type": "welcome"}')
      while True:                      # a heartbeat every 5 s until the client leaves
          await trio.sleep(5)
          conn.send("s2c", '{"type": "ping"}')

  def on_message(conn, msg):
      if msg.text == "bye":
          conn.close(4000, "bye")
          return None
      return f"echo: {msg.text}"

examples:
  wsinspect mock --script chat_mock.py --listen 127.0.0.1:9000
  wsinspect mock -s auth.py -s chat_mock.py --subprotocol chat.v1 -w mock.jsonl
  wsinspect mock -s chat_mock.py --tui
"""

from __future__ import annotations

import argparse
import sys
from typing import TYPE_CHECKING, Any

from wsinspect.settings import ConfigError, Settings

if TYPE_CHECKING:
    from wsinspect.tui.app import InspectorApp

__all__ = ["build_mock_app", "configure", "run", "settings_from_mock_args"]


def _positive_float(text: str) -> float:
    value = float(text)
    if value <= 0:
        raise argparse.ArgumentTypeError("must be positive")
    return value


def configure(parser: argparse.ArgumentParser) -> None:
    from wsinspect.commands.tui import add_ui_arguments

    mock = parser.add_argument_group("the mock")
    mock.add_argument("--script", "-s", metavar="FILE", dest="scripts", action="append",
                      required=True,
                      help="the script that answers (repeatable: each message goes through "
                      "them in order, each seeing what the ones before made of it)")
    mock.add_argument("--listen", "-l", metavar="HOST:PORT", default="127.0.0.1:8080",
                      help="address to accept clients on (default: 127.0.0.1:8080; port 0 "
                      "picks a free one)")
    mock.add_argument("--subprotocol", metavar="NAME", default=None,
                      help="accept this subprotocol when the client offers it "
                      "(Sec-WebSocket-Protocol)")
    mock.add_argument("--script-errors", choices=("log", "close"), default="log",
                      help="an exception in a hook: log it with its traceback and go on "
                      "(default), or close the connection with 1011")
    mock.add_argument("--cert", metavar="FILE", help="TLS certificate (PEM) to serve wss://")
    mock.add_argument("--key", metavar="FILE", help="private key (PEM) for --cert")
    mock.add_argument("--handshake-timeout", metavar="SECONDS", type=_positive_float,
                      default=10.0, help="drop a client that has not sent its request after "
                      "this long (default: 10)")

    out = parser.add_argument_group("output")
    out.add_argument("--log-format", choices=("text", "json"), default="text",
                     help="text lines (default) or one JSON object per event")
    out.add_argument("--quiet", "-q", action="store_true", help="print nothing on stdout")
    out.add_argument("--record", "-w", metavar="FILE", default=None,
                     help="record every event to FILE as JSON Lines (flushed every 100 ms)")
    out.add_argument("--no-redact", dest="redact", action="store_false",
                     help="keep Cookie and Authorization values in the recording")
    out.add_argument("--control", metavar="PATH", default=None,
                     help="open a control socket (Unix socket, owner-only) for 'wsinspect ctl'")
    out.add_argument("--tui", action="store_true",
                     help="watch the traffic live in the terminal UI instead of the log")
    add_ui_arguments(parser)


def settings_from_mock_args(args: argparse.Namespace) -> Settings:
    """The relay's settings for ``args`` (its upstream is set by ``serve_mock``)."""
    from wsinspect.config import listen_address

    host, port = listen_address(args)
    return Settings(listen_host=host, listen_port=port, cert=args.cert, key=args.key,
                    handshake_timeout=args.handshake_timeout, log_format=args.log_format,
                    quiet=args.quiet, record=args.record, redact=args.redact,
                    control=args.control)


def run(args: argparse.Namespace) -> int:
    from wsinspect.script.loader import ScriptError, ScriptFile

    try:
        settings = settings_from_mock_args(args)
        scripts = [ScriptFile(path) for path in args.scripts]
        for script in scripts:
            script.load()
    except (ConfigError, ScriptError) as exc:
        print(f"wsinspect mock: error: {exc}", file=sys.stderr)
        return 2

    from functools import partial

    from wsinspect.script.mock import mock_settings, serve_mock

    settings = mock_settings(settings, scripts)
    serve = partial(serve_mock, settings, scripts=scripts, subprotocol=args.subprotocol,
                    close_on_error=args.script_errors == "close")
    if args.tui:
        return _run_tui(settings, serve, args.ui_max_frames)

    from wsinspect.commands.headless import run_headless

    return run_headless("mock", settings, serve, listen=args.listen)


def _run_tui(settings: Settings, serve: Any, max_frames: int) -> int:
    from wsinspect.hub import Hub
    from wsinspect.recording.writer import start_recorder

    probe = Hub()
    try:  # refuse an unwritable --record path before the UI starts
        recorder = start_recorder(settings, probe)
    except ConfigError as exc:
        print(f"wsinspect mock: error: {exc}", file=sys.stderr)
        return 2
    if recorder is not None:
        recorder.close()
    app = build_mock_app(settings, serve, max_frames)
    app.run()
    return app.return_code or 0


def build_mock_app(settings: Settings, serve: Any, max_frames: int) -> InspectorApp:
    """The live TUI around a mock (``serve``: ``serve_mock`` with its scripts bound)."""
    import trio

    from wsinspect.hub import Hub
    from wsinspect.tui.live import build_live_app

    async def starter(hub: Hub, *, task_status: trio.TaskStatus[Any] = trio.TASK_STATUS_IGNORED) -> None:
        from wsinspect.recording.writer import open_recorder

        async with open_recorder(settings, hub):
            await serve(hub, task_status=task_status)

    return build_live_app(settings, max_frames=max_frames, starter=starter)
