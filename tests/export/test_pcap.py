"""pcap export, checked by tshark's own dissectors."""

from __future__ import annotations

import argparse
import shutil
import struct
import subprocess
from pathlib import Path

import pytest
from recording_samples import every_kind

from wsinspect.commands import export
from wsinspect.events import Event, FrameSeen
from wsinspect.recording.reader import read_events
from wsinspect.recording.writer import Recorder

TSHARK = shutil.which("tshark")
needs_tshark = pytest.mark.skipif(
    TSHARK is None, reason="tshark is not installed (apt-get install tshark)"
)


def run_export(argv: list[str]) -> int:
    parser = argparse.ArgumentParser()
    export.configure(parser)
    return export.run(parser.parse_args(argv))


def recorded(tmp_path: Path, events: list[Event]) -> Path:
    path = tmp_path / "rec.jsonl"
    rec = Recorder.create(str(path), options={"listen": "127.0.0.1:8080"})
    for event in events:
        rec.publish(event)
    rec.close()
    return path


def tshark(pcap: Path, *args: str) -> list[list[str]]:
    assert TSHARK is not None
    out = subprocess.run(
        [TSHARK, "-r", str(pcap), *args], capture_output=True, text=True, check=True, timeout=60
    ).stdout
    return [line.split("\t") for line in out.splitlines()]


@pytest.fixture
def pcap(tmp_path: Path) -> Path:
    out = tmp_path / "out.pcap"
    assert run_export([str(recorded(tmp_path, every_kind())), "--format", "pcap", "-o", str(out)]) == 0
    return out


@pytest.fixture
def recording(pcap: Path) -> list[Event]:
    return list(read_events(str(pcap.parent / "rec.jsonl")))


def test_pcap_is_a_classic_ethernet_pcap(pcap: Path) -> None:
    magic, major, minor, _, _, snaplen, linktype = struct.unpack("<IHHiIII", pcap.read_bytes()[:24])
    assert (magic, major, minor, linktype) == (0xA1B2C3D4, 2, 4, 1)
    assert snaplen >= 65535


@needs_tshark
def test_tshark_dissects_every_frame_with_its_recorded_bits(pcap: Path, recording: list[Event]) -> None:
    # The client's connection: what reached the client, and what came from it.
    expected = [
        e for e in recording
        if isinstance(e, FrameSeen)
        and (e.delivered if e.direction == "s2c" else e.written is None)
    ]
    assert any(e.written == "edited" for e in expected)  # the proxy's frame to the client
    assert not any(e.written == "injected" for e in expected)  # its frame to the upstream
    rows = tshark(pcap, "-Y", "websocket", "-T", "fields", "-e", "websocket.fin",
                  "-e", "websocket.opcode", "-e", "websocket.mask", "-e", "websocket.masking_key",
                  "-e", "websocket.payload_length", "-e", "websocket.payload_length_ext_16",
                  "-e", "tcp.payload")
    assert len(rows) == len(expected)
    for row, event in zip(rows, expected, strict=True):
        f = event.frame
        fin, opcode, masked, key, len7, len16, tcp_payload = row
        assert (fin, int(opcode), masked) == (str(int(f.fin)), f.opcode, str(int(f.masked)))
        assert key == (f.mask_key.hex() if f.mask_key else "")
        assert int(len16 or len7) == f.length
        # The segment holds the frame exactly as it crossed the wire (as far as it was captured).
        segment = bytes.fromhex(tcp_payload)
        assert segment[: len(f.wire_bytes)] == f.wire_bytes
        assert len(segment) == f.wire_size


@needs_tshark
def test_tshark_shows_the_recorded_payloads(pcap: Path) -> None:
    rows = tshark(pcap, "-Y", "websocket", "-T", "fields", "-e", "websocket.payload.text",
                  "-e", "data.data", "-e", "websocket.payload.close.status_code",
                  "-e", "websocket.payload.close.reason")
    texts = [r[0] for r in rows if r[0]]
    # fragments are reassembled; "fixed" is the proxy's edit, which the client received
    assert sorted(texts) == ["fixed", "fragmented", "héllo", "héllo"]
    data = {bytes.fromhex(r[1]) for r in rows if r[1]}
    assert {bytes(range(256)) * 2, b"\xff\xfe\x00"} <= data
    assert sorted((r[2], r[3]) for r in rows if r[2]) == [("1000", ""), ("1000", "bye")]


@needs_tshark
def test_tcp_streams_are_consistent(pcap: Path) -> None:
    # No lost segments, retransmissions or bad checksums: the sequence numbers add up.
    assert tshark(pcap, "-Y", "tcp.analysis.flags") == []
    status = tshark(pcap, "-o", "tcp.check_checksum:TRUE", "-o", "ip.check_checksum:TRUE",
                    "-T", "fields", "-e", "tcp.checksum.status", "-e", "ip.checksum.status")
    assert status and all(row == ["1", "1"] for row in status)
    handshake = tshark(pcap, "-Y", "tcp.stream == 0 and tcp.flags.syn == 1", "-T", "fields",
                       "-e", "tcp.flags.ack")
    assert [r[0] for r in handshake] == ["0", "1"]  # SYN, SYN-ACK
    fins = tshark(pcap, "-Y", "tcp.stream == 0 and tcp.flags.fin == 1")
    assert len(fins) == 2


@needs_tshark
def test_http_upgrade_is_in_the_stream(pcap: Path) -> None:
    rows = tshark(pcap, "-Y", "http", "-T", "fields", "-e", "http.request.uri",
                  "-e", "http.response.code", "-e", "http.cookie")
    assert rows[0][0] == "/chat?room=1"
    assert rows[0][2] == "[redacted]"
    assert rows[1][1] == "101"


@needs_tshark
def test_truncated_payload_keeps_its_length_padded_with_zeros(pcap: Path) -> None:
    rows = tshark(pcap, "-Y", "websocket.opcode == 2 and tcp.stream == 1", "-T", "fields",
                  "-e", "websocket.payload_length_ext_16", "-e", "data.data")
    assert len(rows) == 1
    length, data = rows[0]
    payload = bytes.fromhex(data)
    assert int(length) == len(payload) == 5000
    assert payload == b"x" * 1000 + bytes(4000)
