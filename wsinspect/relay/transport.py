"""The raw-fd fast paths: plain TCP sockets read and written through their file descriptor.

Trio's ``SocketStream`` methods add a cancel scope, checkpoints and a wait per call. For the
relay's pumps and the handshakes, on a plain socket on POSIX, it is cheaper to try the system
call first and wait for readiness only when it says ``EAGAIN``: a reply goes straight on without
a detour through the run loop, and opening many connections stays cheap. TLS streams, test
streams and Windows go through the stream's own methods. Also here: the non-blocking connect to
an IP address, ``splice(2)`` through a pipe for payloads nobody looks at (Linux), and closing
a socket with an RST (``SO_LINGER`` 0).
"""

from __future__ import annotations

import contextlib
import errno
import functools
import ipaddress
import os
import socket
import struct
from collections.abc import Iterable

import trio

__all__ = [
    "CAN_SPLICE",
    "RAW_IO",
    "Pipe",
    "PrefixedStream",
    "close_streams",
    "is_reset",
    "open_pipe",
    "open_tcp",
    "raw_fd",
    "raw_socket",
    "receive_some",
    "send_all",
    "splice",
]

# Plain sockets are read and written through their file descriptor (os.read/os.write), which
# works on POSIX only; elsewhere trio's receive_some/send_all do it all.
RAW_IO = os.name == "posix"
CAN_SPLICE = hasattr(os, "splice")
PIPE_SIZE = 1 << 20  # a splice pipe holds this much (if the system allows)
_F_SETPIPE_SZ = 1031  # fcntl.F_SETPIPE_SZ (named in the fcntl module from Python 3.10 on Linux)
_LINGER_RST = struct.pack("ii", 1, 0)


def raw_fd(stream: trio.abc.Stream) -> int:
    """The file descriptor of a plain ``SocketStream`` on POSIX, -1 otherwise (TLS, test
    streams, Windows): those go through the stream's own methods."""
    if RAW_IO and type(stream) is trio.SocketStream:
        return stream.socket.fileno()
    return -1


def raw_socket(stream: trio.abc.Stream) -> socket.socket | None:
    """The OS socket under a ``SocketStream``, or under the ``SSLStream``s and
    ``PrefixedStream``s over one (for SO_LINGER and the peer's address)."""
    while isinstance(stream, trio.SSLStream | PrefixedStream):
        stream = stream.transport_stream
    if isinstance(stream, trio.SocketStream):
        sock = stream.socket
        return sock  # type: ignore[return-value]
    return None


class PrefixedStream(trio.abc.HalfCloseableStream):
    """``transport_stream`` with ``prefix`` read first: the bytes a forward proxy read of a
    tunnel to decide what it carries (a TLS ClientHello), given back to the TLS layer."""

    def __init__(self, transport_stream: trio.SocketStream, prefix: bytes) -> None:
        self.transport_stream = transport_stream
        self._prefix = prefix

    async def receive_some(self, max_bytes: int | None = None) -> bytes:
        if self._prefix:
            await trio.lowlevel.checkpoint()
            n = len(self._prefix) if max_bytes is None else max_bytes
            chunk, self._prefix = self._prefix[:n], self._prefix[n:]
            return chunk
        return bytes(await self.transport_stream.receive_some(max_bytes))

    async def send_all(self, data: bytes | bytearray | memoryview) -> None:
        await self.transport_stream.send_all(data)

    async def wait_send_all_might_not_block(self) -> None:
        await self.transport_stream.wait_send_all_might_not_block()

    async def send_eof(self) -> None:
        await self.transport_stream.send_eof()

    async def aclose(self) -> None:
        await self.transport_stream.aclose()


def is_reset(exc: BaseException) -> bool:
    """Whether ``exc`` (or what caused it) says the peer reset the connection."""
    cur: BaseException | None = exc
    for _ in range(5):
        if cur is None:
            return False
        if isinstance(cur, ConnectionResetError | BrokenPipeError | ConnectionAbortedError):
            return True
        cur = cur.__cause__ or cur.__context__
    return False


async def receive_some(stream: trio.abc.Stream, max_bytes: int) -> bytes:
    """``stream.receive_some`` for the handshakes, on a plain socket straight from its file
    descriptor (as the relay's pumps read): the read is tried first and the wait for
    readability is the only schedule point.

    Raises ``OSError`` (not ``BrokenResourceError``) when the connection breaks.
    """
    fd = raw_fd(stream)
    if fd < 0:
        return bytes(await stream.receive_some(max_bytes))
    await trio.lowlevel.checkpoint_if_cancelled()
    while True:
        try:
            return os.read(fd, max_bytes)
        except BlockingIOError:
            await trio.lowlevel.wait_readable(fd)


async def send_all(stream: trio.abc.Stream, data: bytes) -> None:
    """``stream.send_all`` for the handshakes, written straight to a plain socket's file
    descriptor (see ``receive_some``); partial writes continue when it is writable again.

    Raises ``OSError`` (``BrokenPipeError``, ``ConnectionResetError``) when the peer is gone.
    """
    fd = raw_fd(stream)
    if fd < 0:
        await stream.send_all(data)
        return
    await trio.lowlevel.checkpoint_if_cancelled()
    view = memoryview(data)
    while view:
        try:
            view = view[os.write(fd, view) :]
        except BlockingIOError:
            await trio.lowlevel.wait_writable(fd)


@functools.lru_cache(maxsize=64)
def _ip_family(host: str) -> int | None:
    """``AF_INET``/``AF_INET6`` when ``host`` is an IP address literal, else ``None`` (a name).
    Cached: the relay asks for the same upstream host on every connection."""
    try:
        return socket.AF_INET6 if ipaddress.ip_address(host).version == 6 else socket.AF_INET
    except ValueError:
        return None


def _connected(sock: socket.socket) -> bool:
    """Whether a connect in progress has completed (the socket has a peer)."""
    try:
        sock.getpeername()
    except OSError:  # ENOTCONN: the handshake is still under way
        return False
    return True


async def open_tcp(host: str, port: int) -> trio.SocketStream:
    """``trio.open_tcp_stream``, minus its name resolution and Happy Eyeballs machinery (a
    nursery and a task per attempt) when ``host`` is an IP address: one address, one attempt,
    and connections open faster under load."""
    family = _ip_family(host)
    if family is None:
        return await trio.open_tcp_stream(host, port)
    # A non-blocking connect on the OS socket: trio's ``sock.connect`` adds a cancel scope
    # and several helpers per call, a visible share of the cost of opening a connection.
    sock = socket.socket(family, socket.SOCK_STREAM)
    try:
        sock.setblocking(False)
        err = sock.connect_ex((host, port))
        if err == errno.EINPROGRESS:
            # On loopback (and other local upstreams) the TCP handshake, or the refusal, has
            # usually completed by the time connect() returns: look before waiting, which
            # saves a trip through trio's I/O wait (two epoll_ctl calls and a reschedule).
            err = sock.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR)
            if not err and not _connected(sock):
                await trio.lowlevel.wait_writable(sock)
                err = sock.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR)
        if err:
            raise OSError(err, os.strerror(err))
    except BaseException:
        sock.close()
        raise
    return trio.SocketStream(trio.socket.from_stdlib_socket(sock))


# ---- splice(2): payloads nobody looks at stay in the kernel ------------------------------------


def splice(src: int, dst: int, n: int) -> int:
    """Move up to ``n`` bytes between file descriptors in the kernel (Linux splice(2))."""
    return os.splice(src, dst, n, flags=os.SPLICE_F_MOVE | os.SPLICE_F_NONBLOCK)


class Pipe:
    """A non-blocking pipe for splicing, ``size`` bytes deep; size 0 when none could be made
    (out of file descriptors): then nothing is spliced."""

    __slots__ = ("read", "size", "write")

    def __init__(self, read: int, write: int, size: int) -> None:
        self.read = read
        self.write = write
        self.size = size

    def close(self) -> None:
        if self.size:
            os.close(self.read)
            os.close(self.write)


def open_pipe() -> Pipe:
    import fcntl  # POSIX only, like splice

    try:
        r, w = os.pipe2(os.O_NONBLOCK | os.O_CLOEXEC)
    except OSError:
        return Pipe(-1, -1, 0)
    try:
        size = fcntl.fcntl(w, _F_SETPIPE_SZ, PIPE_SIZE)
    except OSError:  # over the system's pipe limits: the default size will do
        size = 64 * 1024
    return Pipe(r, w, size)


# ---- closing -----------------------------------------------------------------------------------


def _linger_rst(sock: socket.socket | None) -> None:
    if sock is not None:
        with contextlib.suppress(OSError):
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, _LINGER_RST)


async def close_streams(streams: Iterable[trio.abc.Stream], *, reset: bool) -> None:
    """Close ``streams``; with ``reset`` abortively (RST). Plain TCP sockets are closed at once,
    as ``SocketStream.aclose`` would minus its checkpoint (no await, no shielded scope, no
    timeout scope per stream: a visible share of the cost of a short connection); other
    streams (TLS) get half a second for a graceful close, then are closed by force."""
    for stream in streams:
        if type(stream) is trio.SocketStream:
            if reset:
                _linger_rst(stream.socket)  # type: ignore[arg-type]
            stream.socket.close()  # wakes any task still waiting on it, as aclose does
            continue
        with trio.CancelScope(shield=True):
            if reset:
                _linger_rst(raw_socket(stream))
                await trio.aclose_forcefully(stream)
                continue
            with (
                trio.move_on_after(0.5) as scope,
                contextlib.suppress(trio.BrokenResourceError, trio.ClosedResourceError, OSError),
            ):
                await stream.aclose()
            if scope.cancelled_caught:
                await trio.aclose_forcefully(stream)
