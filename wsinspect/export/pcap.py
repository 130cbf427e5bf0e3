"""Export a recording as a classic pcap of synthetic Ethernet/IPv4/TCP packets.

Each WebSocket connection becomes one TCP stream as it crossed the client-facing side: a
SYN/SYN-ACK/ACK handshake, the HTTP upgrade request and the 101 response (RFC 6455 §4, rebuilt
from the recorded headers), then every frame's wire bytes (the recorded header and the payload
re-masked with the recorded key, §5.3) in its direction, with TCP sequence numbers that add up,
and a FIN from each side when the recording has the connection's end. Wireshark/tshark dissect
it as WebSocket with no configuration (``tshark -r OUT.pcap -Y websocket``).

What is synthetic, and honest about it:
- addresses: the client's recorded IPv4 address and port; the server side is the proxy's
  listening address from the recording header when that port is one Wireshark dissects as HTTP
  by default, else ``127.0.0.1:80`` (IPv6 or unknown clients get ``10.0.x.y``);
- payload bytes beyond the capture limit were never recorded: the pcap carries zero bytes in
  their place (before masking) so that the frame header keeps its real length and every later
  frame stays in step. ``wsinspect stats`` and the recording's ``sha256`` tell which frames;
- the capture is the client's connection: frames from the upstream that were not delivered
  (``delivered: false``) never reached the client, so they are left out; frames received from
  the client are in, delivered or not; frames the proxy wrote (``written``) are in when they
  went to the client, and left out when they went to the upstream;
- redacted header values appear as ``[redacted]``.
"""

from __future__ import annotations

import struct
import sys
import zlib
from array import array
from collections.abc import Iterable
from typing import BinaryIO

from wsinspect.events import ConnectionClosed, ConnectionOpened, Event, FrameSeen
from wsinspect.wire.frames import Frame, encode_frame, mask
from wsinspect.wire.sides import Direction

__all__ = ["HTTP_PORTS", "PcapWriter", "write_pcap"]

#: Ports Wireshark's HTTP dissector claims by default (``http.tcp.port``).
HTTP_PORTS = frozenset({80, 3128, 3132, 5985, 8080, 8088, 11371, 1900, 2869, 2710})
LINKTYPE_ETHERNET = 1
SNAPLEN = 262144
MSS = 65000  # segment size: IPv4 total length must stay under 65,536
_CLIENT_MAC = bytes.fromhex("020000000001")
_SERVER_MAC = bytes.fromhex("020000000002")

SYN, FIN, PSH, ACK = 0x02, 0x01, 0x08, 0x10


def _checksum(data: bytes) -> int:
    """Internet checksum (RFC 1071) at C speed: sum 16-bit words with ``array``."""
    if len(data) & 1:
        data += b"\0"
    words = array("H", data)
    total = sum(words)
    while total >> 16:
        total = (total & 0xFFFF) + (total >> 16)
    # ``array("H")`` reads native byte order; RFC 1071 §2(B): the sum of byte-swapped words is
    # the byte-swapped sum, so swapping the result back gives the network-order value.
    result = ~total & 0xFFFF
    if sys.byteorder == "little":
        result = ((result & 0xFF) << 8) | (result >> 8)
    return result


def _ip(text: str) -> bytes | None:
    parts = text.split(".")
    if len(parts) != 4 or not all(p.isdigit() and int(p) < 256 for p in parts):
        return None
    return bytes(int(p) for p in parts)


def _endpoint(text: str) -> tuple[bytes, int] | None:
    host, sep, port = text.rpartition(":")
    ip = _ip(host)
    if not sep or ip is None or not port.isdigit() or not 0 < int(port) < 65536:
        return None
    return ip, int(port)


class _Stream:
    """One TCP connection's state: addresses, next sequence numbers, whether it ended."""

    __slots__ = ("client", "done", "seq", "server")

    def __init__(self, client: tuple[bytes, int], server: tuple[bytes, int], conn: int) -> None:
        self.client = client
        self.server = server
        # Deterministic initial sequence numbers, different per connection (CRC of the id).
        isn_c = zlib.crc32(b"c%d" % conn)
        isn_s = zlib.crc32(b"s%d" % conn)
        self.seq = {"c2s": isn_c, "s2c": isn_s}
        self.done = False


class PcapWriter:
    """Writes pcap records to a binary file; ``feed(event)`` turns events into packets."""

    def __init__(self, out: BinaryIO, *, server: str | None = None) -> None:
        self.out = out
        self.packets = 0
        self._streams: dict[int, _Stream] = {}
        ep = _endpoint(server) if server else None
        self._server = ep if ep is not None and ep[1] in HTTP_PORTS else (bytes((127, 0, 0, 1)), 80)
        # magic, version 2.4, GMT offset, sigfigs, snaplen, link type (Ethernet)
        out.write(struct.pack("<IHHiIII", 0xA1B2C3D4, 2, 4, 0, 0, SNAPLEN, LINKTYPE_ETHERNET))

    # -- packets

    def _packet(self, ts: float, s: _Stream, direction: Direction, flags: int, payload: bytes = b"") -> None:
        if direction == "c2s":
            (src, sport), (dst, dport) = s.client, s.server
            smac, dmac = _CLIENT_MAC, _SERVER_MAC
        else:
            (src, sport), (dst, dport) = s.server, s.client
            smac, dmac = _SERVER_MAC, _CLIENT_MAC
        other = "s2c" if direction == "c2s" else "c2s"
        seq = s.seq[direction] & 0xFFFFFFFF
        ack = s.seq[other] & 0xFFFFFFFF if flags & ACK else 0
        tcp = struct.pack("!HHIIBBHHH", sport, dport, seq, ack, 5 << 4, flags, 65535, 0, 0)
        pseudo = src + dst + struct.pack("!BBH", 0, 6, len(tcp) + len(payload))
        csum = _checksum(pseudo + tcp + payload)
        tcp = tcp[:16] + struct.pack("!H", csum) + tcp[18:]
        total = 20 + len(tcp) + len(payload)
        ip = struct.pack("!BBHHHBBH4s4s", 0x45, 0, total, self.packets & 0xFFFF, 0x4000, 64, 6,
                         0, src, dst)
        ip = ip[:10] + struct.pack("!H", _checksum(ip)) + ip[12:]
        frame = dmac + smac + b"\x08\x00" + ip + tcp
        length = len(frame) + len(payload)
        sec = int(ts)
        usec = min(999_999, max(0, round((ts - sec) * 1_000_000)))
        self.out.write(struct.pack("<IIII", sec, usec, length, length))
        self.out.write(frame)
        self.out.write(payload)
        self.packets += 1
        s.seq[direction] += len(payload) + (1 if flags & (SYN | FIN) else 0)

    def _data(self, ts: float, s: _Stream, direction: Direction, data: bytes) -> None:
        view = memoryview(data)
        for i in range(0, len(data), MSS):
            self._packet(ts, s, direction, PSH | ACK, bytes(view[i : i + MSS]))

    # -- events

    def open(self, event: ConnectionOpened) -> None:
        client = _endpoint(event.client) or (
            bytes((10, 0, (event.conn >> 8) & 0xFF, event.conn & 0xFF)), 40000 + event.conn % 20000
        )
        s = self._streams[event.conn] = _Stream(client, self._server, event.conn)
        t = event.ts
        # The handshakes happened just before the open event; a millisecond apart each.
        self._packet(t - 0.003, s, "c2s", SYN)
        self._packet(t - 0.003, s, "s2c", SYN | ACK)
        self._packet(t - 0.002, s, "c2s", ACK)
        request = [f"GET {event.path or '/'} HTTP/1.1"]
        request += [f"{n}: {v}" for n, v in _upgrade(event.request_headers)]
        self._data(t - 0.001, s, "c2s", _http(request))
        status = event.status
        response = [f"HTTP/1.1 {status} Switching Protocols" if status == 101 else f"HTTP/1.1 {status} "]
        response += [f"{n}: {v}" for n, v in _upgrade(event.response_headers)]
        self._data(t, s, "s2c", _http(response))

    def frame(self, event: FrameSeen) -> None:
        s = self._streams.get(event.conn)
        if event.direction == "s2c":
            off_the_wire = not event.delivered  # never reached the client
        else:
            off_the_wire = event.written is not None  # went to the upstream, not from the client
        if s is None or s.done or off_the_wire:
            return
        self._data(event.ts, s, event.direction, frame_wire_bytes(event.frame))

    def close(self, event: ConnectionClosed) -> None:
        s = self._streams.get(event.conn)
        if s is None or s.done:
            return
        first: Direction = "s2c" if event.initiator == "upstream" else "c2s"
        second: Direction = "c2s" if first == "s2c" else "s2c"
        self._packet(event.ts, s, first, FIN | ACK)
        self._packet(event.ts, s, second, FIN | ACK)
        self._packet(event.ts, s, first, ACK)
        s.done = True

    def feed(self, event: Event) -> None:
        if isinstance(event, FrameSeen):
            self.frame(event)
        elif isinstance(event, ConnectionOpened):
            self.open(event)
        elif isinstance(event, ConnectionClosed):
            self.close(event)


def _upgrade(headers: Iterable[tuple[str, str]]) -> list[tuple[str, str]]:
    """``headers`` plus ``Upgrade``/``Connection`` when the recording lacks them (a HAR, hand-made
    events): both are mandatory in a WebSocket handshake (RFC 6455 §4.1, §4.2.2), and Wireshark
    needs them to hand the stream to its WebSocket dissector."""
    out = list(headers)
    names = {n.lower() for n, _ in out}
    if "upgrade" not in names:
        out.append(("Upgrade", "websocket"))
    if "connection" not in names:
        out.append(("Connection", "Upgrade"))
    return out


def _http(lines: list[str]) -> bytes:
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1", "replace")


def frame_wire_bytes(f: Frame) -> bytes:
    """The bytes of a recorded frame as they went over the wire.

    The recorded header is used as is; the payload is padded with zeros up to the frame's length
    when it was cut at the capture limit, then masked with the recorded key. A frame without
    recorded header bytes (read from a HAR) gets a minimal header, masked with a zero key when
    it was a masked frame, as no key was kept.
    """
    payload = f.payload
    if len(payload) < f.length:
        payload = payload + bytes(f.length - len(payload))
    if not f.header:
        key = f.mask_key or (b"\0\0\0\0" if f.masked else None)
        return encode_frame(f.opcode, payload, fin=f.fin, rsv1=f.rsv1, rsv2=f.rsv2,
                            rsv3=f.rsv3, mask_key=key)
    if f.mask_key is not None:
        payload = mask(payload, f.mask_key)
    return f.header + payload


def write_pcap(events: Iterable[Event], out: BinaryIO, *, server: str | None = None) -> int:
    """Write ``events`` to ``out`` as pcap; return the number of packets."""
    writer = PcapWriter(out, server=server)
    for event in events:
        writer.feed(event)
    return writer.packets
