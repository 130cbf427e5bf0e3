"""User scripts: Python files whose hooks rewrite, drop, delay and inject messages (``--script``).

A script imports what it needs from here::

    from wsinspect.script import DROP

    def on_message(conn, msg):
        if msg.is_text and msg.text.startswith("heartbeat"):
            return DROP

A script may also register a decoder of its own protocol (``register_decoder``, with
``Decoded``, ``Handshake`` and ``equal_field`` to write it: docs/decoders.md).

The hooks and their arguments are described in docs/scripting.md; ``wsinspect.script.loader``
loads and reloads script files, ``wsinspect.script.runtime`` runs them in the proxy.
"""

from wsinspect.script.api import DROP, ScriptMessage, register_decoder
from wsinspect.script.conn import CloseInfo, Conn
from wsinspect.wire.decoders import Decoded, Handshake, equal_field

__all__ = ["DROP", "CloseInfo", "Conn", "Decoded", "Handshake", "ScriptMessage", "equal_field",
           "register_decoder"]
