"""Breaking things on purpose: Origin policy, idle timeouts and WebSocket-aware faults.

Sans-IO parts (no sockets, no Trio): ``spec`` (the ``--fault`` syntax and ``[[fault]]``
tables), ``origin`` (``--allow-origin`` patterns, RFC 6454 origins), ``stages`` (what a fault
does to each frame: drop, duplicate, refragment, swallow pongs, hold or withhold close frames,
close after N messages, cut after N bytes), ``actions`` (what faults ask the session to do) and
``plan`` (everything configured, asked per handshake and per connection).

Trio parts: ``shaping`` (latency, jitter and throttle as a send-stream wrapper), ``idle`` (the
idle watcher), ``runtime`` (plugs the plan into the relay's hooks and carries out run-time
commands) and ``control_socket`` (``--control PATH`` for ``wsinspect ctl``).

Importing this package imports neither: ``wsinspect.config`` uses ``spec`` on the light CLI path.
"""
