"""The Trio man-in-the-middle: ``server`` (listener, ``serve``), ``opening`` (both handshakes),
``session`` (one connection: two pumps and the actions faults use), ``upstream`` (TCP/TLS
connect and a reusable client handshake), ``http`` (plain HTTP passthrough), ``control``
(commands for the TUI and the control socket) and ``hooks`` (the extension points)."""
