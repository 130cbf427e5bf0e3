"""User scripts: Python files whose hooks rewrite, drop, delay and inject messages (``--script``).

A script imports what it needs from here::

    from wsinspect.script import DROP

    def on_message(conn, msg):
        if msg.is_text and msg.text.startswith("heartbeat"):
            return DROP

The hooks and their arguments are described in docs/scripting.md; ``wsinspect.script.loader``
loads and reloads script files, ``wsinspect.script.runtime`` runs them in the proxy.
"""

from wsinspect.script.api import DROP, ScriptMessage
from wsinspect.script.conn import CloseInfo, Conn

__all__ = ["DROP", "CloseInfo", "Conn", "ScriptMessage"]
