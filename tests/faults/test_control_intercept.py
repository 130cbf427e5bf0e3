"""`wsinspect ctl` for breakpoints, held messages and injection, against a running proxy."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import trio
from fault_helpers import StartProxy, echo, start_ws_server
from websockets.trio.client import connect

from wsinspect.cli import main
from wsinspect.events import MessageAction

pytestmark = pytest.mark.trio


async def ctl(path: Path, *argv: str) -> int:
    return await trio.to_thread.run_sync(main, ["ctl", "--control", str(path), *argv])


@pytest.fixture
def sock(tmp_path: Path) -> Path:
    return tmp_path / "c.sock"


async def wait_held(sock: Path, capsys: pytest.CaptureFixture[str], n: int = 1) -> list[dict]:
    while True:
        capsys.readouterr()
        assert await ctl(sock, "--json", "held") == 0
        held = json.loads(capsys.readouterr().out)
        if len(held) >= n:
            return held
        await trio.sleep(0.01)


async def test_break_held_resume_edit_drop_and_send_from_ctl(
    nursery: trio.Nursery, start_proxy: StartProxy, sock: Path, tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    edited = tmp_path / "edited.txt"
    edited.write_text("order 2 (edited from a file)")
    with trio.fail_after(15):
        upstream = await start_ws_server(nursery, echo)
        proxy = await start_proxy(upstream, control=str(sock))
        assert await ctl(sock, "break", "add", "dir=c2s,match=^order") == 0
        assert await ctl(sock, "break", "list") == 0
        assert "1: dir=c2s,match=^order" in capsys.readouterr().out
        async with connect(proxy.url(), proxy=None, compression=None) as ws:
            await ws.send("order 1")
            [held] = await wait_held(sock, capsys)
            assert (held["conn"], held["dir"], held["preview"]) == (1, "c2s", "order 1")
            assert held["age"] >= 0
            assert await ctl(sock, "held") == 0
            line = capsys.readouterr().out
            assert line.startswith(f"{held['id']}: #1 → ") and "'order 1'" in line
            assert await ctl(sock, "resume", str(held["id"]), "--text", "order 1 (edited)") == 0
            assert await ws.recv() == "order 1 (edited)"
            await ws.send("order 2")
            [held] = await wait_held(sock, capsys)
            assert await ctl(sock, "resume", str(held["id"]), "--file", str(edited)) == 0
            assert await ws.recv() == "order 2 (edited from a file)"
            await ws.send("order 3")
            [held] = await wait_held(sock, capsys)
            assert await ctl(sock, "drop", str(held["id"])) == 0
            await ws.send("order 4")
            await ws.send("order 5")
            await wait_held(sock, capsys)
            assert await ctl(sock, "break", "clear") == 0
            assert await ctl(sock, "resume", "--all") == 0
            assert [await ws.recv() for _ in range(2)] == ["order 4", "order 5"]
            assert await ctl(sock, "send", "1", "--to", "client", "--text", "psst") == 0
            assert await ws.recv() == "psst"
            assert await ctl(sock, "send", "#1", "--to", "client", "--close", "4001", "going",
                             "away") == 0
            await ws.wait_closed()
            assert (ws.close_code, ws.close_reason) == (4001, "going away")
    actions = [e.action for e in proxy.sink.of(MessageAction)]
    # "order 5" waited behind "order 4" and was never held: the breakpoint was gone by then.
    assert actions == ["held", "edited", "held", "edited", "held", "dropped", "held", "resumed",
                       "injected", "injected"]


@pytest.mark.parametrize(("argv", "why"), [
    (("break", "add", "dir=up"), "a direction is c2s or s2c"),
    (("resume", "7"), "no held message 7"),
    (("drop", "7"), "no held message 7"),
    (("resume", "--all", "3"), "resume --all forwards every held message"),
    (("send", "9", "--to", "client", "--text", "x"), "no open connection #9"),
    (("send", "1", "--to", "client", "--close", "1005"), "may not be sent"),
    (("send", "1", "--to", "client", "--close", "abc"), "a close code is a number"),
    (("send", "1", "--to", "client", "--file", "/nonexistent/x"), "cannot read /nonexistent/x"),
])
async def test_ctl_refuses_bad_input_with_status_2(
    nursery: trio.Nursery, start_proxy: StartProxy, sock: Path,
    capsys: pytest.CaptureFixture[str], argv: tuple[str, ...], why: str,
) -> None:
    with trio.fail_after(10):
        upstream = await start_ws_server(nursery, echo)
        proxy = await start_proxy(upstream, control=str(sock))
        async with connect(proxy.url(), proxy=None) as ws:
            await ws.send("x")
            await ws.recv()
            assert await ctl(sock, *argv) == 2
            await ws.send("still open")
            assert await ws.recv() == "still open"
    assert why in capsys.readouterr().err
    assert not proxy.sink.of(MessageAction)


async def test_break_flags_arm_breakpoints_from_the_start(tmp_path: Path) -> None:
    from wsinspect.cli import build_parser
    from wsinspect.config import apply_config_file, settings_from_args

    config = tmp_path / "w.toml"
    config.write_text('upstream = "ws://127.0.0.1:9"\nbreak = ["dir=s2c,op=binary"]\n')
    parser = build_parser()
    argv = ["proxy", "--config", str(config), "--break", "re:^order"]
    args = apply_config_file(parser, argv, parser.parse_args(argv))
    assert [b.spec for b in settings_from_args(args).breakpoints] == ["re:^order"]
    argv = ["proxy", "--config", str(config)]
    args = apply_config_file(parser, argv, parser.parse_args(argv))
    assert [b.spec for b in settings_from_args(args).breakpoints] == ["dir=s2c,op=binary"]
