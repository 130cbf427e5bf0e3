"""One module per subcommand; each has ``configure(parser)`` and ``run(args) -> int``.

Modules import their heavy dependencies (Textual, the relay) inside ``run`` so that
``wsinspect --help`` and light commands start fast.
"""
