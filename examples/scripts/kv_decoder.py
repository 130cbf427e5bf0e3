"""A decoder of your own protocol: "kv", messages of ``VERB key=value key=value ...``.

Registered with ``register_decoder``, it is like the built-in ones: connections that negotiate
the subprotocol ``kv.v1`` (or whose path ends in ``/kv``) are decoded with it, ``--decode kv``
or ``--decode kv:^/other`` names it, the TUI shows ``kv SET user=7`` in the frames table and
filters on ``kv:verb=SET`` or ``kv:user=7``, the JSON log carries ``"decoded"``, and ``p`` in
the TUI lists it. It keeps per-connection state: a ``REPLY`` says which request it answers.
The script has no hooks: it changes nothing that is relayed.

    wsinspect proxy -u ws://127.0.0.1:9000 --script examples/scripts/kv_decoder.py --log-format json
    wsinspect tui -u ws://127.0.0.1:9000 --script examples/scripts/kv_decoder.py --decode kv:^/legacy
"""

from __future__ import annotations

from wsinspect.script import Decoded, Handshake, equal_field, register_decoder


class KvConnection:
    """One connection's state: the verbs of the client's requests, in order."""

    def __init__(self) -> None:
        self.requests: list[str] = []

    def decode(self, direction: str, opcode: int, payload: bytes) -> Decoded:
        try:
            verb, *pairs = payload.decode("utf-8").split()
            fields: dict[str, str | int | float | bool] = dict(p.split("=", 1) for p in pairs)
        except ValueError as exc:  # not UTF-8, empty, or a word without "="
            return Decoded("kv", "error", "kv: not a kv message", error=str(exc) or "empty")
        fields["verb"] = verb
        if direction == "c2s":
            self.requests.append(verb)
        elif verb == "REPLY" and self.requests:
            fields["to"] = self.requests.pop(0)
        words = " ".join(f"{k}={v}" for k, v in fields.items() if k != "verb")
        return Decoded("kv", verb.lower(), f"kv {verb} {words}".rstrip(), fields, dict(fields))


class KvDecoder:
    name = "kv"
    filter_prefix = "kv"
    subprotocols = ("kv.v1",)
    main_field = "verb"  # what `wsinspect stats` counts by

    def recognises(self, handshake: Handshake) -> bool:
        return handshake.path.split("?")[0].endswith("/kv")

    def start(self, handshake: Handshake) -> KvConnection:
        return KvConnection()

    def field_matches(self, decoded: Decoded, key: str, value: str) -> bool:
        return equal_field(decoded, key, value)


register_decoder(KvDecoder())
