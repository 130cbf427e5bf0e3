"""The WebSocket protocol core, sans-IO: no sockets, no Trio, no clock, no imports of ours.

Everything here is fed bytes and returns values, so any transport (or a test) can drive it.
"""
