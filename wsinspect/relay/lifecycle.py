"""How a relayed connection ends: a sans-IO state machine (RFC 6455 §7).

Everything that decides the ending of a connection lives in this file. The session tells it
what happened (a close frame passed, a peer ended TCP, a send failed, the proxy was asked to
close or cut, ``--strict`` found a violation, a deadline passed) and carries out the commands it
returns, in order: send a close frame of the proxy's own, pass a FIN on, give the pumps a grace
period, tear both connections down (FIN, or RST), start a deadline, log a warning. No sockets,
no Trio, no clock: the session owns the I/O and the time, this file owns the decisions, and
``tests/relay/test_lifecycle.py`` reads as transcripts of them.

The proxy relays endings, it never decides them for a peer: close frames pass like any frame,
a FIN from one side becomes a FIN to the other and an RST an RST, and the side that did not end
is given ``END_GRACE`` seconds to follow. Only when asked (a control command, a fault,
``--strict``) does the proxy close on its own: then it stops forwarding, sends a close frame to
each peer (never inside a frame already under way: the session waits for a frame boundary),
consumes their replies, and ends TCP once both replied, or after ``CLOSE_TIMEOUT``.

``--strict`` ends a connection as a conforming endpoint would: a violation closes both sides,
but a frame a peer sends after its own close frame is discarded, not answered (RFC 6455
§5.5.1: the close frame is the last one; §7.1.1), so the closing handshake already under way
completes with the codes the peers chose.

At the end, ``outcome()`` says who ended the connection, how, and each side's close code.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass

from wsinspect.wire.sides import C2S, RECEIVER, S2C, SENDER, Direction, Initiator, PeerEnd, Side

__all__ = [
    "CLOSE_TIMEOUT",
    "END_GRACE",
    "Command",
    "Deadline",
    "Grace",
    "Lifecycle",
    "Outcome",
    "Phase",
    "SendClose",
    "SendFin",
    "TearDown",
    "Warn",
]

END_GRACE = 1.0  # after one side ended, how long the other may take to follow
CLOSE_TIMEOUT = 5.0  # a proxy-initiated close waits this long for both close replies


class Phase(enum.Enum):
    """Where the ending of a connection stands."""

    OPEN = "open"  # relaying; no close frame passed yet
    CLOSING = "closing"  # one peer's close frame was relayed; the other's is awaited
    CLOSED = "closed"  # both close frames relayed (§7.1.2): TCP ends within the grace period
    PROXY_CLOSING = "proxy-closing"  # the proxy sent close frames of its own; replies are consumed
    HALF_ENDED = "half-ended"  # one peer ended TCP, passed on; the other has the grace period
    TORN_DOWN = "torn-down"  # both connections are being closed now


# ---- commands: what the session must do, in order ---------------------------------------------


@dataclass(frozen=True, slots=True)
class SendClose:
    """Send a close frame of the proxy's own into ``direction`` (``c2s``: to the upstream,
    masked; ``s2c``: to the client) at the next frame boundary, then report ``close_sent`` or
    ``close_not_sent``."""

    direction: Direction
    code: int
    reason: str


@dataclass(frozen=True, slots=True)
class SendFin:
    """End the sending half of ``direction`` (TCP FIN toward its receiver); a close frame of
    the proxy's still waiting for a frame boundary there is given up."""

    direction: Direction


@dataclass(frozen=True, slots=True)
class Grace:
    """Both pumps must finish within ``seconds``."""

    seconds: float


@dataclass(frozen=True, slots=True)
class Deadline:
    """Call ``deadline_passed()`` after ``seconds`` unless the connection ended before."""

    seconds: float


@dataclass(frozen=True, slots=True)
class TearDown:
    """Stop both pumps now and close both connections: with RST (SO_LINGER 0) if ``reset``."""

    reset: bool


@dataclass(frozen=True, slots=True)
class Warn:
    """Publish a warning about this connection."""

    text: str


Command = SendClose | SendFin | Grace | Deadline | TearDown | Warn


@dataclass(frozen=True, slots=True)
class Outcome:
    """Who ended a connection and how (``ConnectionClosed``'s fields).

    ``how`` is ``close-handshake`` (both close frames passed), ``fin``, ``rst``, ``error``,
    ``timeout`` (a proxy close got no replies), ``strict``, ``shutdown`` (the proxy stopped),
    ``closed-by-proxy`` or the name of the fault that acted (``idle-timeout``, ...).
    ``code``/``reason`` are those of the first close frame relayed.
    """

    initiator: Initiator
    how: str
    detail: str | None
    code: int | None
    reason: str | None
    client_close: tuple[int | None, str] | None
    upstream_close: tuple[int | None, str] | None


# ---- the machine ----------------------------------------------------------------------------


class Lifecycle:
    """The ending of one relayed connection.

    ``forwards`` is what the relay reads per chunk: false while blackholed or once the proxy
    closes (frames are then consumed: published as not delivered). ``reset`` says whether the
    teardown is abortive (RST).
    """

    __slots__ = (
        "_close",
        "_closes",
        "_discarding",
        "_end",
        "_ended",
        "_how",
        "_received",
        "_relayed",
        "_replied",
        "_sent",
        "_timeout",
        "blackholed",
        "forwards",
        "phase",
        "reset",
    )

    def __init__(self) -> None:
        self.phase = Phase.OPEN
        self.forwards = True
        self.blackholed = False
        self.reset = False
        self._relayed: list[Side] = []  # sides whose close frame was relayed, in order
        self._received: list[Side] = []  # ... received, in order (a send may finish later)
        self._closes: dict[Side, tuple[int | None, str]] = {}  # each side's first close frame
        self._end: tuple[Initiator, str, str | None] | None = None  # the first end noted
        self._ended: set[Side] = set()  # sides that ended TCP
        # A proxy-initiated close: its frames per direction, which went out, who replied.
        self._close: dict[Direction, SendClose] | None = None
        self._sent: set[Direction] = set()
        self._replied: set[Side] = set()
        self._discarding: set[Side] = set()  # --strict: sides whose frames after close are dropped
        self._how = ""
        self._timeout = CLOSE_TIMEOUT

    # ---- queries --------------------------------------------------------------------------

    @property
    def proxy_closing(self) -> bool:
        """A close of the proxy's own is under way (or done)."""
        return self._close is not None

    def close_due(self, direction: Direction) -> SendClose | None:
        """The proxy's close frame for ``direction`` if it has not gone out yet."""
        if self._close is None or direction in self._sent:
            return None
        return self._close[direction]

    def close_frame(self, side: Side) -> tuple[int | None, str] | None:
        """``(code, reason)`` of the first close frame ``side`` sent, if any."""
        return self._closes.get(side)

    # ---- what the peers did ---------------------------------------------------------------

    def close_received(self, direction: Direction) -> None:
        """A close frame from the sender of ``direction`` is about to be passed on. Noted in
        receive order: the other direction's close may finish passing first (its send did
        not wait), and who closed first is who sent first."""
        side = SENDER[direction]
        if side not in self._received:
            self._received.append(side)

    def close_relayed(self, direction: Direction, code: int | None, reason: str) -> list[Command]:
        """A close frame from the sender of ``direction`` was passed on."""
        side = SENDER[direction]
        if side in self._relayed:
            return []
        self._relayed.append(side)
        self._closes.setdefault(side, (code, reason))
        if self._close is not None:
            # A close frame already under way when the proxy closed: it counts as the reply.
            return self._replied_by(side)
        if len(self._relayed) == 2:
            # Both close frames passed: the server now closes TCP (§7.1.1); both sides get
            # the grace period to end before the proxy closes what is left.
            self._enter(Phase.CLOSED)
            return [Grace(END_GRACE)]
        self._enter(Phase.CLOSING)
        return []

    def close_consumed(self, direction: Direction, code: int | None, reason: str) -> list[Command]:
        """A close frame from the sender of ``direction`` was received and not passed on
        (a reply to the proxy's close; in a blackhole nothing is noted)."""
        if self._close is None:
            return []
        side = SENDER[direction]
        self._closes.setdefault(side, (code, reason))
        return self._replied_by(side)

    def peer_ended(self, direction: Direction, how: PeerEnd, detail: str | None = None) -> list[Command]:
        """The sender of ``direction`` ended its side: ``how`` is ``fin`` (end of stream),
        ``rst`` (a reset) or ``error`` (another receive error, ``detail`` says which). A FIN is
        passed on and the other side gets the grace period; anything else tears both down."""
        side = SENDER[direction]
        self._ended.add(side)
        self._note_end(side, how, detail)
        if how != "fin":
            return self._tear_down(reset=how == "rst")
        commands: list[Command] = []
        if self._close is not None:
            # This peer answered the proxy's close (or left): a close frame toward the other
            # peer that has not gone out goes before the FIN, or that peer sees only a FIN
            # (1006) instead of the code it was promised.
            due = self.close_due(direction)
            if due is not None:
                commands.append(due)
            self._replied.add(side)
        commands += [SendFin(direction), Grace(END_GRACE)]
        if len(self._ended) == 2 or (self._close is not None and len(self._replied) == 2):
            commands += self._tear_down(reset=False)
        elif self.phase in (Phase.OPEN, Phase.CLOSING):
            self._enter(Phase.HALF_ENDED)
        return commands

    def receiver_gone(self, direction: Direction, reset: bool) -> list[Command]:
        """Sending into ``direction`` failed: its receiver is gone (``reset``: with an RST).
        The other side is ended the same way."""
        receiver = RECEIVER[direction]
        self._ended.add(receiver)
        self._note_end(receiver, "rst" if reset else "fin", None)
        return self._tear_down(reset=reset)

    # ---- what the proxy was asked to do ---------------------------------------------------

    def blackhole(self, on: bool) -> None:
        """Stop (or resume) forwarding; both connections stay open."""
        self.blackholed = on
        self.forwards = not on and self._close is None

    def proxy_close(
        self,
        code: int = 1000,
        reason: str = "",
        *,
        client_code: int | None = None,
        how: str = "closed-by-proxy",
        timeout: float = CLOSE_TIMEOUT,
    ) -> list[Command]:
        """Close both peers with ``code`` (``client_code`` toward the client if different)
        and complete both closing handshakes (§7.1.2): forwarding stops now, each peer's reply
        is consumed, and TCP ends once both replied or after ``timeout`` seconds. Nothing
        happens when a close is already under way or the connection is being torn down."""
        if self._close is not None or self.phase is Phase.TORN_DOWN:
            return []
        self._note_end("proxy", how, None)
        text = reason.encode()[:123].decode(errors="ignore")  # a control frame's 125 bytes
        down = code if client_code is None else client_code
        self._close = {C2S: SendClose(C2S, code, text), S2C: SendClose(S2C, down, text)}
        self._how = how
        self._timeout = timeout
        self.forwards = False
        self._enter(Phase.PROXY_CLOSING)
        # A side that already sent its close frame will not send another.
        self._replied |= set(self._closes)
        commands: list[Command] = [self._close[C2S], self._close[S2C]]
        if len(self._replied) == 2:
            return commands + self._tear_down(reset=False)
        return [*commands, Deadline(timeout)]

    def violation(
        self, direction: Direction, close_code: int, section: str, message: str
    ) -> list[Command]:
        """``--strict``: the sender of ``direction`` broke the protocol. Close it with the
        violation's code and the other side with 1001 (going away), and say why.

        A sender whose close frame was already relayed is not closed again: whatever it sends
        after its close frame (RFC 6455 §5.5.1) is discarded by the relay, once said, and the
        closing handshake under way goes on (the other side's close frame is relayed back)."""
        if self._close is not None or self.phase is Phase.TORN_DOWN:
            return []
        offender = SENDER[direction]
        if offender in self._relayed:
            if offender in self._discarding:
                return []
            self._discarding.add(offender)
            return [Warn(
                f"--strict: discarding what the {offender} sends after its close frame; the "
                f"closing handshake goes on: {section}: {message}"
            )]
        warning = Warn(
            f"--strict: closing the {offender} with {close_code} and the other side "
            f"with 1001: {section}: {message}"
        )
        # Toward the offender goes its own code; ``client_code`` is the code toward the client.
        up, down = (1001, close_code) if direction == C2S else (close_code, 1001)
        return [warning, *self.proxy_close(up, "protocol violation", client_code=down, how="strict")]

    def close_sent(self, direction: Direction) -> None:
        """The proxy's close frame went out into ``direction``."""
        self._sent.add(direction)

    def close_not_sent(self, direction: Direction) -> list[Command]:
        """The proxy's close frame could not be sent: that peer is gone, no reply will come."""
        self._sent.add(direction)
        return self._replied_by(RECEIVER[direction])

    def cut(
        self, *, rst: bool = False, how: str | None = None, detail: str | None = None
    ) -> list[Command]:
        """End both TCP connections now, without close frames: FIN, or RST with ``rst``.
        ``how`` names it in the outcome (default ``fin``/``rst``)."""
        self._note_end("proxy", how or ("rst" if rst else "fin"), detail)
        return self._tear_down(reset=rst)

    def deadline_passed(self) -> list[Command]:
        """The proxy's close got no reply from one of the peers in time: end TCP."""
        if self.phase is Phase.TORN_DOWN:
            return []
        self._end = ("proxy", "timeout", f"no close reply within {self._timeout:g} s after {self._how}")
        return self._tear_down(reset=False)

    def failed(self, detail: str) -> None:
        """The relay itself failed (a bug): the proxy ended the connection."""
        self._note_end("proxy", "error", detail)
        self._enter(Phase.TORN_DOWN)

    # ---- the end --------------------------------------------------------------------------

    def outcome(self) -> Outcome:
        """Who ended the connection and how. A relayed close handshake wins over the TCP ends
        that follow it; a close frame left unanswered makes its sender the initiator, and the
        detail says how the other side ended instead."""
        relayed = sorted(self._relayed, key=lambda s: (
            self._received.index(s) if s in self._received else 2))  # receive order
        code: int | None = None
        reason: str | None = None
        if relayed:
            code, reason = self._closes[relayed[0]]
        initiator, how, detail = self._end or ("proxy", "shutdown", None)
        if len(relayed) == 2:
            initiator, how, detail = relayed[0], "close-handshake", None
        elif relayed and initiator not in ("proxy", relayed[0]):
            detail = f"the {initiator} ended TCP ({how}) without answering the close frame"
            initiator = relayed[0]
        client, upstream = self._closes.get("client"), self._closes.get("upstream")
        return Outcome(initiator, how, detail, code, reason, client, upstream)

    # ---- inside ---------------------------------------------------------------------------

    def _enter(self, phase: Phase) -> None:
        if self.phase is not Phase.TORN_DOWN:
            self.phase = phase

    def _note_end(self, initiator: Initiator, how: str, detail: str | None) -> None:
        if self._end is None:
            self._end = (initiator, how, detail)

    def _replied_by(self, side: Side) -> list[Command]:
        self._replied.add(side)
        if len(self._replied) == 2:
            return self._tear_down(reset=False)
        return []

    def _tear_down(self, *, reset: bool) -> list[Command]:
        if self.phase is Phase.TORN_DOWN:
            return []
        self.phase = Phase.TORN_DOWN
        self.forwards = False
        self.reset = reset
        return [TearDown(reset)]
