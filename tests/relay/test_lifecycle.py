"""Transcripts of the connection lifecycle (``relay.lifecycle``), socket-free.

Each test reads as the protocol: ``>>`` what happened, ``<<`` the commands the session must
carry out, and at the end the outcome a user sees in ``ConnectionClosed``.
"""

from __future__ import annotations

from typing import Any

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

BYE = (1000, "bye")


def play(lc: Lifecycle, *steps: tuple[str, Any]) -> None:
    """Feed ``(">>", lambda lc: lc.event(...))`` steps; each is followed by the commands it
    must return as ``("<<", [commands])``."""
    pending: list[Any] | None = None
    for arrow, value in steps:
        if arrow == ">>":
            assert pending is None, "a step's commands were not checked"
            pending = value(lc)
        else:
            assert arrow == "<<"
            assert pending == value
            pending = None
    assert pending is None, "the last step's commands were not checked"


def test_the_client_starts_the_close_handshake_and_the_server_ends_tcp() -> None:
    lc = Lifecycle()
    play(
        lc,
        (">>", lambda lc: lc.close_relayed(C2S, *BYE)), ("<<", []),
        (">>", lambda lc: lc.close_relayed(S2C, *BYE)), ("<<", [Grace(END_GRACE)]),
        (">>", lambda lc: lc.peer_ended(S2C, "fin")), ("<<", [SendFin(S2C), Grace(END_GRACE)]),
        (">>", lambda lc: lc.peer_ended(C2S, "fin")),
        ("<<", [SendFin(C2S), Grace(END_GRACE), TearDown(reset=False)]),
    )
    assert lc.phase is Phase.TORN_DOWN and not lc.reset
    assert lc.outcome() == Outcome("client", "close-handshake", None, 1000, "bye", BYE, BYE)


def test_the_upstream_starts_the_close_handshake() -> None:
    lc = Lifecycle()
    lc.close_relayed(S2C, 1001, "going away")
    assert lc.phase is Phase.CLOSING
    lc.close_relayed(C2S, 1001, "")
    assert lc.phase is Phase.CLOSED
    outcome = lc.outcome()
    assert (outcome.initiator, outcome.how, outcome.code, outcome.reason) == (
        "upstream", "close-handshake", 1001, "going away",
    )
    assert outcome.client_close == (1001, "") and outcome.upstream_close == (1001, "going away")


def test_who_closed_first_is_who_sent_first_whichever_send_finished_first() -> None:
    """The upstream's close was received first, but its send to the client was still under
    way when the client's reply had passed: the upstream started the handshake."""
    lc = Lifecycle()
    play(
        lc,
        (">>", lambda lc: lc.close_received(S2C)), ("<<", None),
        (">>", lambda lc: lc.close_received(C2S)), ("<<", None),
        (">>", lambda lc: lc.close_relayed(C2S, 1001, "")), ("<<", []),
        (">>", lambda lc: lc.close_relayed(S2C, 1001, "going away")),
        ("<<", [Grace(END_GRACE)]),
    )
    outcome = lc.outcome()
    assert (outcome.initiator, outcome.how, outcome.code, outcome.reason) == (
        "upstream", "close-handshake", 1001, "going away")


def test_a_close_frame_repeated_by_the_same_side_counts_once() -> None:
    lc = Lifecycle()
    lc.close_relayed(C2S, *BYE)
    assert lc.close_relayed(C2S, 1002, "again") == []
    assert lc.phase is Phase.CLOSING
    assert lc.close_frame("client") == BYE


def test_an_unanswered_close_names_its_sender_and_says_how_the_other_side_ended() -> None:
    lc = Lifecycle()
    play(
        lc,
        (">>", lambda lc: lc.close_relayed(C2S, *BYE)), ("<<", []),
        (">>", lambda lc: lc.peer_ended(S2C, "fin")), ("<<", [SendFin(S2C), Grace(END_GRACE)]),
    )
    outcome = lc.outcome()
    assert (outcome.initiator, outcome.how) == ("client", "fin")
    assert outcome.detail == "the upstream ended TCP (fin) without answering the close frame"
    assert outcome.upstream_close is None


def test_a_fin_without_close_frames_is_passed_on_and_the_other_side_gets_the_grace() -> None:
    lc = Lifecycle()
    play(lc, (">>", lambda lc: lc.peer_ended(C2S, "fin")), ("<<", [SendFin(C2S), Grace(END_GRACE)]))
    assert lc.phase is Phase.HALF_ENDED and lc.forwards
    assert lc.outcome() == Outcome("client", "fin", None, None, None, None, None)


def test_a_reset_tears_both_down_with_a_reset() -> None:
    lc = Lifecycle()
    play(lc, (">>", lambda lc: lc.peer_ended(S2C, "rst")), ("<<", [TearDown(reset=True)]))
    assert lc.reset and not lc.forwards
    assert (lc.outcome().initiator, lc.outcome().how) == ("upstream", "rst")


def test_a_receive_error_tears_down_without_reset_and_keeps_its_detail() -> None:
    lc = Lifecycle()
    assert lc.peer_ended(C2S, "error", "OSError: boom") == [TearDown(reset=False)]
    assert lc.outcome().detail == "OSError: boom"


def test_a_failed_send_means_the_receiver_is_gone() -> None:
    lc = Lifecycle()
    assert lc.receiver_gone(C2S, reset=True) == [TearDown(reset=True)]
    assert (lc.outcome().initiator, lc.outcome().how) == ("upstream", "rst")
    assert lc.receiver_gone(S2C, reset=False) == []  # already torn down: the first end stands
    assert lc.outcome().how == "rst"


def test_a_cut_ends_both_with_fin_or_rst_and_names_the_fault() -> None:
    lc = Lifecycle()
    assert lc.cut(how="cut-after", detail="after 10 bytes") == [TearDown(reset=False)]
    assert lc.outcome() == Outcome("proxy", "cut-after", "after 10 bytes", None, None, None, None)
    rst = Lifecycle()
    assert rst.cut(rst=True) == [TearDown(reset=True)]
    assert rst.outcome().how == "rst"


def test_the_proxy_closes_both_and_ends_tcp_once_both_replied() -> None:
    lc = Lifecycle()
    play(
        lc,
        (">>", lambda lc: lc.proxy_close(4000, "maintenance")),
        ("<<", [SendClose(C2S, 4000, "maintenance"), SendClose(S2C, 4000, "maintenance"),
                Deadline(CLOSE_TIMEOUT)]),
    )
    assert lc.phase is Phase.PROXY_CLOSING and not lc.forwards
    lc.close_sent(C2S)
    lc.close_sent(S2C)
    assert lc.close_due(C2S) is None
    play(
        lc,
        (">>", lambda lc: lc.close_consumed(S2C, 4000, "")), ("<<", []),
        (">>", lambda lc: lc.close_consumed(C2S, 4000, "")), ("<<", [TearDown(reset=False)]),
    )
    outcome = lc.outcome()
    assert (outcome.initiator, outcome.how, outcome.code) == ("proxy", "closed-by-proxy", None)
    assert outcome.client_close == (4000, "") and outcome.upstream_close == (4000, "")


def test_a_proxy_close_may_send_the_client_another_code() -> None:
    lc = Lifecycle()
    commands = lc.proxy_close(1001, "x", client_code=1002, how="strict")
    assert commands[:2] == [SendClose(C2S, 1001, "x"), SendClose(S2C, 1002, "x")]


def test_a_side_that_already_sent_its_close_is_not_waited_for() -> None:
    lc = Lifecycle()
    lc.close_relayed(C2S, *BYE)
    commands = lc.proxy_close(1000)
    assert commands[-1] == Deadline(CLOSE_TIMEOUT)
    assert lc.close_consumed(S2C, 1000, "") == [TearDown(reset=False)]


def test_a_proxy_close_after_both_closes_passed_ends_at_once() -> None:
    lc = Lifecycle()
    lc.close_relayed(C2S, *BYE)
    lc.close_relayed(S2C, *BYE)
    assert lc.proxy_close(1000)[-1] == TearDown(reset=False)


def test_a_proxy_close_without_replies_times_out() -> None:
    lc = Lifecycle()
    lc.proxy_close(1000, how="idle-timeout", timeout=2)
    lc.close_consumed(C2S, 1000, "")
    assert lc.deadline_passed() == [TearDown(reset=False)]
    outcome = lc.outcome()
    assert (outcome.initiator, outcome.how) == ("proxy", "timeout")
    assert outcome.detail == "no close reply within 2 s after idle-timeout"
    assert lc.deadline_passed() == []  # already torn down


def test_a_deadline_after_the_replies_changes_nothing() -> None:
    lc = Lifecycle()
    lc.proxy_close(1000)
    lc.close_consumed(C2S, 1000, "")
    lc.close_consumed(S2C, 1000, "")
    assert lc.deadline_passed() == []
    assert lc.outcome().how == "closed-by-proxy"


def test_a_reply_racing_a_fin_sends_the_pending_close_to_the_other_peer_first() -> None:
    """The upstream answers the proxy's close with close + FIN before the close frame toward
    the client went out (the client's direction was mid-frame): the client must get its close
    frame before the FIN, or it sees 1006 instead of the promised code."""
    lc = Lifecycle()
    lc.proxy_close(1001, "bye")
    lc.close_sent(C2S)  # to the upstream; the frame to the client waits for a frame boundary
    assert lc.close_due(S2C) == SendClose(S2C, 1001, "bye")
    play(
        lc,
        (">>", lambda lc: lc.close_consumed(S2C, 1001, "")), ("<<", []),
        (">>", lambda lc: lc.peer_ended(S2C, "fin")),
        ("<<", [SendClose(S2C, 1001, "bye"), SendFin(S2C), Grace(END_GRACE)]),
    )
    lc.close_sent(S2C)
    assert lc.close_consumed(C2S, 1001, "") == [TearDown(reset=False)]


def test_a_close_that_cannot_be_sent_means_no_reply_will_come() -> None:
    lc = Lifecycle()
    lc.proxy_close(1000)
    lc.close_sent(C2S)
    assert lc.close_not_sent(S2C) == []  # the client is gone
    assert lc.close_consumed(S2C, 1000, "") == [TearDown(reset=False)]


def test_a_close_frame_already_under_way_when_the_proxy_closed_counts_as_the_reply() -> None:
    lc = Lifecycle()
    lc.proxy_close(1000)
    lc.close_consumed(C2S, 1000, "")
    assert lc.close_relayed(S2C, 1000, "late") == [TearDown(reset=False)]


def test_only_one_proxy_close_runs_and_none_after_the_teardown() -> None:
    lc = Lifecycle()
    lc.proxy_close(1000)
    assert lc.proxy_close(4000) == []
    cut = Lifecycle()
    cut.cut()
    assert cut.proxy_close(1000) == []
    assert cut.violation(C2S, 1002, "RFC 6455 §5.1", "unmasked") == []


def test_strict_closes_the_offender_with_its_code_and_the_other_side_with_1001() -> None:
    lc = Lifecycle()
    play(
        lc,
        (">>", lambda lc: lc.violation(C2S, 1002, "RFC 6455 §5.1", "a client frame must be masked")),
        ("<<", [
            Warn("--strict: closing the client with 1002 and the other side with 1001: "
                 "RFC 6455 §5.1: a client frame must be masked"),
            SendClose(C2S, 1001, "protocol violation"),
            SendClose(S2C, 1002, "protocol violation"),
            Deadline(CLOSE_TIMEOUT),
        ]),
    )
    assert lc.outcome().how == "strict"
    upstream = Lifecycle()
    commands = upstream.violation(S2C, 1007, "RFC 6455 §8.1", "invalid UTF-8")
    assert commands[1:3] == [SendClose(C2S, 1007, "protocol violation"),
                             SendClose(S2C, 1001, "protocol violation")]


def test_a_blackhole_stops_forwarding_and_consumed_closes_are_not_replies() -> None:
    lc = Lifecycle()
    lc.blackhole(True)
    assert not lc.forwards and lc.phase is Phase.OPEN
    assert lc.close_consumed(C2S, *BYE) == []
    assert lc.close_frame("client") is None
    lc.blackhole(False)
    assert lc.forwards


def test_a_blackhole_lifted_during_a_proxy_close_does_not_resume_forwarding() -> None:
    lc = Lifecycle()
    lc.blackhole(True)
    lc.proxy_close(1000)
    lc.blackhole(False)
    assert not lc.forwards


def test_a_long_close_reason_is_cut_to_fit_a_control_frame_on_a_character_boundary() -> None:
    lc = Lifecycle()
    commands = lc.proxy_close(1000, "é" * 100)  # 200 bytes of UTF-8
    reason = commands[0].reason  # type: ignore[union-attr]
    assert len(reason.encode()) <= 123 and reason == "é" * 61


def test_a_connection_stopped_with_nothing_noted_was_shut_down_by_the_proxy() -> None:
    assert Lifecycle().outcome() == Outcome("proxy", "shutdown", None, None, None, None, None)


def test_a_relay_failure_is_the_proxys_error() -> None:
    lc = Lifecycle()
    lc.failed("RuntimeError: bug")
    assert lc.outcome() == Outcome("proxy", "error", "RuntimeError: bug", None, None, None, None)
    assert lc.proxy_close(1000) == []
