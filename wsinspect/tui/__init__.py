"""The Textual terminal UI (``wsinspect tui`` and ``wsinspect view``).

The only package that imports Textual: ``store`` (no Textual) holds events, ``bridge`` runs the
Trio relay in guest mode, ``table`` draws virtual tables, ``app`` ties them together.
"""
