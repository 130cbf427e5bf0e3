"""Recordings: the format (``format``: its version and every event's dict form), the fast line
encoder (``encoder``), the recorder sink that writes them (``writer``) and the reader
(``reader``). The format itself is documented in docs/recording-format.md."""
