"""``wsinspect proxy`` from the command line: help, clear errors, and a real run."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
import trio
from relay_helpers import echo, start_ws_server
from websockets.trio.client import connect


def _run(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "wsinspect", "proxy", *args],
                          capture_output=True, text=True, timeout=60)


def test_help_lists_the_options() -> None:
    result = _run("--help")
    assert result.returncode == 0
    for flag in ("--listen", "--upstream", "--cert", "--upstream-ca", "--insecure", "--strict",
                 "--websocket-only", "--log-format", "--quiet", "--capture-limit"):
        assert flag in result.stdout


def test_an_unknown_flag_is_a_clear_error() -> None:
    result = _run("--upstream", "ws://127.0.0.1:9", "--bogus")
    assert result.returncode == 2
    assert "unrecognized arguments: --bogus" in result.stderr


def test_a_bad_upstream_url_is_a_clear_error() -> None:
    result = _run("--upstream", "ftp://example.com")
    assert result.returncode == 2
    assert "--upstream 'ftp://example.com': the scheme must be ws:// or wss://" in result.stderr


def test_a_script_that_does_not_load_is_a_clear_error_with_status_2(tmp_path: Path) -> None:
    bad = tmp_path / "rules.py"
    bad.write_text("def on_message(conn, msg)\n    return None\n")
    for script, why in ((bad, f"{bad}:1: SyntaxError"), (tmp_path / "missing.py", "cannot read")):
        result = _run("--upstream", "ws://127.0.0.1:9", "--listen", "127.0.0.1:0",
                      "--script", str(script))
        assert result.returncode == 2, result.stderr
        assert result.stderr.count("\n") == 1 and why in result.stderr


def test_a_control_socket_that_cannot_be_made_is_status_1(tmp_path: Path) -> None:
    result = _run("--upstream", "ws://127.0.0.1:9", "--listen", "127.0.0.1:0",
                  "--control", str(tmp_path / "no-such-dir" / "c.sock"))
    assert result.returncode == 1, result.stderr
    assert "--control" in result.stderr


@pytest.mark.trio
async def test_json_log_prints_one_event_object_per_line(nursery: trio.Nursery) -> None:
    upstream = await start_ws_server(nursery, echo, compression=None)
    proc = await trio.lowlevel.open_process(
        [sys.executable, "-m", "wsinspect", "proxy", "--listen", "127.0.0.1:0",
         "--upstream", upstream, "--log-format", "json"],
        stdout=subprocess.PIPE,
    )
    assert proc.stdout is not None
    buf = b""
    lines: list[dict[str, object]] = []
    try:
        with trio.fail_after(30):

            async def next_line() -> dict[str, object]:
                nonlocal buf
                while b"\n" not in buf:
                    chunk = await proc.stdout.receive_some(65536)  # type: ignore[union-attr]
                    assert chunk, "the proxy exited"
                    buf += chunk
                line, _, buf = buf.partition(b"\n")
                lines.append(json.loads(line))
                return lines[-1]

            first = await next_line()
            assert first["type"] == "notice"
            port = int(str(first["text"]).split("listening on ws://127.0.0.1:")[1].split(",")[0])
            async with connect(f"ws://127.0.0.1:{port}/x", proxy=None, compression=None) as ws:
                await ws.send("via the cli")
                assert await ws.recv() == "via the cli"
            while (await next_line())["type"] != "close":
                pass
    finally:
        proc.kill()  # the process this test started
        await proc.wait()
    types = [line["type"] for line in lines]
    assert types[:2] == ["notice", "open"]
    frames = [line for line in lines if line["type"] == "frame"]
    assert frames[0]["dir"] == "c2s" and frames[0]["payload"] == "via the cli"
