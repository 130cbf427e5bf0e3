"""One value for every refused WebSocket handshake, and the HTTP response that says so (sans-IO).

A handshake can be refused by the proxy (a malformed or invalid request, a handshake gate such as
the Origin policy or a ``refuse`` fault, an upstream that cannot be reached: 400, 403, 426, 431,
502, 504, ...) or by the upstream itself (its own 401/403/404/3xx/5xx, relayed as-is). Either way
the client gets one HTTP response and one ``rejected`` event is published; a ``Refusal`` holds
what both need, the way wsproto's ``RejectConnection`` carries the answer to a bad handshake.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from http import HTTPStatus
from typing import Literal

import h11

__all__ = ["HOP_BY_HOP", "Headers", "Refusal", "RefusedBy", "standard_phrase"]

Headers = tuple[tuple[str, str], ...]
RefusedBy = Literal["proxy", "upstream"]

# RFC 9110 §7.6.1 hop-by-hop headers: never copied from one connection to the other. Connection
# and Upgrade are rewritten to the canonical upgrade pair where a WebSocket needs them.
HOP_BY_HOP = frozenset(
    {
        "connection",
        "keep-alive",
        "proxy-connection",
        "te",
        "trailer",
        "transfer-encoding",
        "upgrade",
    }
)


def standard_phrase(status: int) -> str:
    """``Bad Request`` for 400: the reason phrase clients and logs expect on a status line
    (``Error`` for a status HTTP does not name)."""
    try:
        return HTTPStatus(status).phrase
    except ValueError:
        return "Error"


@dataclass(frozen=True, slots=True)
class Refusal:
    """A refused handshake: what the client is answered and what the ``rejected`` event says.

    ``status`` and ``phrase`` make the status line (``phrase`` defaults to the standard one for
    the status; an upstream's own phrase is kept). ``reason`` is one human-readable line: the
    event's reason, and the plain-text body unless ``body`` is given (``b""`` is an empty body,
    ``None`` the default one). ``headers`` are extra response headers in order, such as
    ``Sec-WebSocket-Version: 13`` on a 426 (RFC 6455 §4.4) or an upstream's own; their framing
    and hop-by-hop headers are replaced when the response is written. ``rule`` names what caused
    it (an Origin policy rule, ``fault:refuse``), ``origin`` the Origin it judged. ``by`` tells
    who refused; for an upstream's refusal ``complete`` tells whether its body was read whole
    (it is cut at the upstream handshake's body limit otherwise).
    """

    status: int
    reason: str
    headers: Headers = ()
    body: bytes | None = None
    rule: str | None = None
    origin: str | None = None
    by: RefusedBy = "proxy"
    phrase: str = ""
    complete: bool = True

    def __post_init__(self) -> None:
        if not self.phrase:
            object.__setattr__(self, "phrase", standard_phrase(self.status))

    @property
    def response_body(self) -> bytes:
        """The body sent: ``body``, or the one-line ``reason`` and a newline."""
        if self.body is None:
            return self.reason.encode("utf-8", "replace") + b"\n"
        return self.body

    def response_headers(self) -> list[tuple[str, str]]:
        """The headers sent, in order: ``headers`` without hop-by-hop or Content-Length ones,
        ``Content-Type`` for the default body, then ``Content-Length`` of the body sent and
        ``Connection: close`` (the proxy ends the connection after a refusal)."""
        headers: Iterable[tuple[str, str]] = self.headers
        if self.body is None:
            headers = [*headers, ("Content-Type", "text/plain; charset=utf-8")]
        out = [
            (n, v)
            for n, v in headers
            if n.lower() not in HOP_BY_HOP and n.lower() != "content-length"
        ]
        out += [("Content-Length", str(len(self.response_body))), ("Connection", "close")]
        return out

    def response(self, conn: h11.Connection | None = None) -> bytes:
        """The complete HTTP/1.1 response, serialised by ``conn`` (the h11 server connection
        that read the request) when it can answer now.

        Without ``conn``, or when h11 will not answer (the request never completed: a 431, a
        malformed head), the same bytes are written here: the status line, the headers (ours,
        already valid) and the body.
        """
        headers = self.response_headers()
        body = self.response_body
        if conn is not None:
            try:
                data = conn.send(h11.Response(
                    status_code=self.status,
                    headers=[(n.encode("latin-1"), v.encode("latin-1")) for n, v in headers],
                    reason=self.phrase.encode("latin-1", "replace"),
                )) or b""
                if conn.our_state is h11.SEND_BODY:
                    data += conn.send(h11.Data(data=body)) or b""
                    data += conn.send(h11.EndOfMessage()) or b""
                return data
            except h11.LocalProtocolError:
                pass
        lines = [f"HTTP/1.1 {self.status} {self.phrase}"] + [f"{n}: {v}" for n, v in headers]
        return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + body
