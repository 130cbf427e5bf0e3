"""Transcripts of how ``--strict`` ends a connection (``relay.lifecycle``), socket-free: like a
conforming endpoint (issue #11). ``>>`` what happened, ``<<`` what the session must do."""

from __future__ import annotations

from test_lifecycle import BYE, play

from wsinspect.relay.lifecycle import (
    CLOSE_TIMEOUT,
    END_GRACE,
    Deadline,
    Grace,
    Lifecycle,
    Outcome,
    Phase,
    SendClose,
    SendFin,
    TearDown,
    Warn,
)
from wsinspect.wire.sides import C2S, S2C

AFTER_CLOSE = ("RFC 6455 §5.5.1", "frame sent after a close frame")
NORMAL = (1000, "")


def test_frames_after_a_close_are_discarded_and_the_handshake_completes_with_the_peers_codes() -> None:
    lc = Lifecycle()
    play(
        lc,
        (">>", lambda lc: lc.close_relayed(C2S, *NORMAL)), ("<<", []),
        # A ping after the close: flagged, discarded, said once; no close of the proxy's.
        (">>", lambda lc: lc.violation(C2S, 1002, *AFTER_CLOSE)),
        ("<<", [Warn("--strict: discarding what the client sends after its close frame; the "
                     "closing handshake goes on: RFC 6455 §5.5.1: frame sent after a close frame")]),
        # A second close and a text frame: discarded too, nothing more to say.
        (">>", lambda lc: lc.violation(C2S, 1002, *AFTER_CLOSE)), ("<<", []),
        (">>", lambda lc: lc.violation(C2S, 1002, *AFTER_CLOSE)), ("<<", []),
        # The server's reply is relayed back: the handshake the client started completes.
        (">>", lambda lc: lc.close_relayed(S2C, *NORMAL)), ("<<", [Grace(END_GRACE)]),
        (">>", lambda lc: lc.peer_ended(S2C, "fin")), ("<<", [SendFin(S2C), Grace(END_GRACE)]),
        (">>", lambda lc: lc.peer_ended(C2S, "fin")),
        ("<<", [SendFin(C2S), Grace(END_GRACE), TearDown(reset=False)]),
    )
    assert not lc.proxy_closing
    assert lc.outcome() == Outcome("client", "close-handshake", None, 1000, "", NORMAL, NORMAL)


def test_the_server_s_frames_after_its_close_are_discarded_the_same_way() -> None:
    lc = Lifecycle()
    lc.close_relayed(S2C, 1001, "going away")
    commands = lc.violation(S2C, 1002, *AFTER_CLOSE)
    assert len(commands) == 1 and isinstance(commands[0], Warn)
    assert "the upstream sends after its close frame" in commands[0].text
    assert lc.phase is Phase.CLOSING and lc.forwards


def test_the_side_that_did_not_close_yet_is_still_closed_for_a_violation() -> None:
    """The client closed; the server, which may still send, breaks a rule: --strict closes it
    (the client already sent its close frame, so only the server's reply is awaited)."""
    lc = Lifecycle()
    lc.close_relayed(C2S, *BYE)
    play(
        lc,
        (">>", lambda lc: lc.violation(S2C, 1002, "RFC 6455 §5.1", "server frame is masked")),
        ("<<", [
            Warn("--strict: closing the upstream with 1002 and the other side with 1001: "
                 "RFC 6455 §5.1: server frame is masked"),
            SendClose(C2S, 1002, "protocol violation"),
            SendClose(S2C, 1001, "protocol violation"),
            Deadline(CLOSE_TIMEOUT),
        ]),
        (">>", lambda lc: lc.close_consumed(S2C, 1002, "")), ("<<", [TearDown(reset=False)]),
    )
    assert lc.outcome().how == "strict"


def test_a_frame_too_big_at_its_header_closes_the_sender_with_1009() -> None:
    lc = Lifecycle()
    play(
        lc,
        (">>", lambda lc: lc.violation(
            C2S, 1009, "RFC 6455 §7.4.1", "message exceeds the maximum size of 67108864 bytes")),
        ("<<", [
            Warn("--strict: closing the client with 1009 and the other side with 1001: "
                 "RFC 6455 §7.4.1: message exceeds the maximum size of 67108864 bytes"),
            SendClose(C2S, 1001, "protocol violation"),
            SendClose(S2C, 1009, "protocol violation"),
            Deadline(CLOSE_TIMEOUT),
        ]),
    )
    assert not lc.forwards  # the rest of that frame is consumed, never forwarded


def test_during_a_proxy_close_frames_after_a_close_say_nothing() -> None:
    lc = Lifecycle()
    lc.close_relayed(C2S, *BYE)
    lc.proxy_close(1001)
    assert lc.violation(C2S, 1002, *AFTER_CLOSE) == []
