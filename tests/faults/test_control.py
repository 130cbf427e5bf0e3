"""The control socket and `wsinspect ctl`, against a running proxy."""

from __future__ import annotations

import os
import socket
import stat
import subprocess
import sys
from pathlib import Path

import pytest
import trio
from fault_helpers import StartProxy, echo, start_ws_server
from websockets.trio.client import connect

from wsinspect.cli import main
from wsinspect.compose import serve_proxy
from wsinspect.events import ConnectionClosed, FaultInjected, FrameSeen
from wsinspect.faults.commands import IdleCutNow, SetLatency
from wsinspect.hub import Hub
from wsinspect.settings import ConfigError, Settings, Upstream

pytestmark = pytest.mark.trio


async def ctl(path: Path, *argv: str) -> int:
    """Run `wsinspect ctl --control PATH ...` (it blocks on a plain socket: in a thread)."""
    return await trio.to_thread.run_sync(main, ["ctl", "--control", str(path), *argv])


@pytest.fixture
def sock(tmp_path: Path) -> Path:
    return tmp_path / "c.sock"  # Unix socket paths must stay short


async def test_the_socket_is_owner_only(nursery: trio.Nursery, start_proxy: StartProxy,
                                        sock: Path) -> None:
    with trio.fail_after(10):
        upstream = await start_ws_server(nursery, echo)
        await start_proxy(upstream, control=str(sock))
    mode = os.stat(sock).st_mode
    assert stat.S_ISSOCK(mode) and stat.S_IMODE(mode) == 0o600


async def test_ctl_list_shows_open_connections_and_faults(
    nursery: trio.Nursery, start_proxy: StartProxy, sock: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    with trio.fail_after(10):
        upstream = await start_ws_server(nursery, echo)
        proxy = await start_proxy(upstream, control=str(sock), faults=["latency:ms=1"])
        async with connect(proxy.url("/chat"), proxy=None) as ws:
            await ws.send("x")
            await ws.recv()
            assert await ctl(sock, "list") == 0
    out = capsys.readouterr().out
    assert "#1 " in out and "/chat" in out and "faults: latency:ms=1" in out
    assert " tier full" in out  # a control socket may add frame faults: fully inspected
    assert "faults for new connections: latency:ms=1" in out


async def test_ctl_close_sends_the_code_to_the_client(
    nursery: trio.Nursery, start_proxy: StartProxy, sock: Path
) -> None:
    with trio.fail_after(10):
        upstream = await start_ws_server(nursery, echo)
        proxy = await start_proxy(upstream, control=str(sock))
        async with connect(proxy.url(), proxy=None) as ws:
            await ws.send("x")
            await ws.recv()
            assert await ctl(sock, "close", "#1", "--code", "4000", "--reason", "by ctl") == 0
            await ws.wait_closed()
    assert (ws.close_code, ws.close_reason) == (4000, "by ctl")


async def test_ctl_cut_ends_tcp_and_the_client_sees_1006(
    nursery: trio.Nursery, start_proxy: StartProxy, sock: Path
) -> None:
    with trio.fail_after(10):
        upstream = await start_ws_server(nursery, echo)
        proxy = await start_proxy(upstream, control=str(sock))
        async with connect(proxy.url(), proxy=None) as ws:
            await ws.send("x")
            await ws.recv()
            assert await ctl(sock, "cut", "1") == 0
            await ws.wait_closed()
    assert ws.close_code == 1006


async def test_ctl_fault_add_then_clear(
    nursery: trio.Nursery, start_proxy: StartProxy, sock: Path
) -> None:
    with trio.fail_after(10):
        upstream = await start_ws_server(nursery, echo)
        proxy = await start_proxy(upstream, control=str(sock))
        async with connect(proxy.url(), proxy=None) as ws:
            await ws.send("warm-up")
            await ws.recv()
            assert await ctl(sock, "fault", "add", "drop:dir=c2s,match=^lost") == 0
            await ws.send("lost 1")
            await ws.send("kept 1")
            assert await ws.recv() == "kept 1"
            assert await ctl(sock, "fault", "clear") == 0
            await ws.send("lost 2")
            assert await ws.recv() == "lost 2"
        # New connections get the faults added at run time too (until cleared).
    dropped = [e for e in proxy.sink.of(FrameSeen) if not e.delivered]
    assert [e.frame.payload for e in dropped] == [b"lost 1"]


async def test_ctl_reports_an_unknown_connection(
    nursery: trio.Nursery, start_proxy: StartProxy, sock: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    with trio.fail_after(10):
        upstream = await start_ws_server(nursery, echo)
        await start_proxy(upstream, control=str(sock))
        assert await ctl(sock, "cut", "9") == 2
    assert "no open connection #9" in capsys.readouterr().err


async def test_ctl_without_a_proxy_says_so(sock: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert await ctl(sock, "list") == 1
    assert "cannot reach the proxy" in capsys.readouterr().err


async def test_a_stale_socket_file_is_replaced(nursery: trio.Nursery, start_proxy: StartProxy,
                                               sock: Path) -> None:
    stale = socket.socket(socket.AF_UNIX)
    stale.bind(str(sock))
    stale.close()  # the file stays, nobody listens
    with trio.fail_after(10):
        upstream = await start_ws_server(nursery, echo)
        await start_proxy(upstream, control=str(sock))
        assert await ctl(sock, "list") == 0


async def test_a_socket_in_use_is_refused_before_listening(
    nursery: trio.Nursery, start_proxy: StartProxy, sock: Path
) -> None:
    with trio.fail_after(10):
        upstream = await start_ws_server(nursery, echo)
        await start_proxy(upstream, control=str(sock))
        settings = Settings(listen_port=0, upstream=Upstream.parse(upstream), control=str(sock))
        with pytest.raises(ConfigError, match="in use by another running proxy"):
            await nursery.start(serve_proxy, settings, Hub())


async def test_idle_cut_now_and_set_latency_commands(
    nursery: trio.Nursery, start_proxy: StartProxy
) -> None:
    with trio.fail_after(10):
        upstream = await start_ws_server(nursery, echo)
        proxy = await start_proxy(upstream)
        async with connect(proxy.url(), proxy=None) as ws:
            answer = await proxy.relay.execute(SetLatency(1, 20))
            assert answer == "#1: latency 20 ms"
            await ws.send("slow")
            assert await ws.recv() == "slow"
            await proxy.relay.execute(IdleCutNow(1))
            await ws.wait_closed()
        closed = await proxy.sink.wait_for(ConnectionClosed)
    assert ws.close_code == 1006 and closed.how == "idle-timeout"
    faults = [e.fault for e in proxy.sink.of(FaultInjected)]
    assert "latency" in faults and faults[-1] == "idle-timeout"


async def test_proxy_process_with_control_and_ctl_process(nursery: trio.Nursery, sock: Path) -> None:
    """The whole path from the command line: `wsinspect proxy --control` and `wsinspect ctl`."""
    with trio.fail_after(40):  # three interpreters start: slow on a busy machine
        upstream = await start_ws_server(nursery, echo)
        proc = await nursery.start(lambda task_status: trio.run_process(  # noqa: ASYNC105
            [sys.executable, "-m", "wsinspect", "proxy", "-l", "127.0.0.1:0", "-u", upstream,
             "--control", str(sock)], stdout=subprocess.PIPE, check=False,
            task_status=task_status))
        try:
            assert proc.stdout is not None
            head = b""
            while b"listening on ws://127.0.0.1:" not in head or not head.endswith(b"\n"):
                chunk = await proc.stdout.receive_some(4096)
                assert chunk, f"the proxy exited: {head!r}"
                head += chunk
            port = int(head.split(b"listening on ws://127.0.0.1:")[1].split(b",")[0])
            async with connect(f"ws://127.0.0.1:{port}/x", proxy=None) as ws:
                await ws.send("hi")
                assert await ws.recv() == "hi"
                listed = await trio.run_process(
                    [sys.executable, "-m", "wsinspect", "ctl", "--control", str(sock), "list"],
                    capture_stdout=True, check=False)
                assert listed.returncode == 0 and b"#1 " in listed.stdout
                closed = await trio.run_process(
                    [sys.executable, "-m", "wsinspect", "ctl", "--control", str(sock),
                     "close", "1", "--code", "4001"], capture_stdout=True, check=False)
                assert closed.returncode == 0
                await ws.wait_closed()
            assert ws.close_code == 4001
        finally:
            proc.terminate()
        await proc.wait()
    assert not await trio.Path(sock).exists()  # removed when the proxy stopped


async def test_ctl_refuses_a_bad_fault_spec(
    nursery: trio.Nursery, start_proxy: StartProxy, sock: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    with trio.fail_after(10):
        upstream = await start_ws_server(nursery, echo)
        await start_proxy(upstream, control=str(sock))
        assert await ctl(sock, "fault", "add", "latency:ms=soon") == 2
    assert "ms: 'soon' is not a number" in capsys.readouterr().err
