# Types of the optional C module built from _speedups.c (see its header comment).

def unmask(data: bytes | bytearray | memoryview, key: bytes, offset: int = 0, /) -> bytes: ...
def b64encode(data: bytes | bytearray | memoryview, /) -> bytes: ...
def scan_lines(
    data: bytes,
    pos: int,
    client: bool,
    limit: int,
    conn: int,
    direction: str,
    ts: float,
    seq: int,
    message_no: int,
    /,
) -> tuple[int, int, int, bytes | None]: ...
