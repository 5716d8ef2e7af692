"""CRI log lines (containerd, CRI-O): ``<RFC3339Nano> <stdout|stderr> <P|F> <message>``.

The whole block is split with one ``bytes.split`` per line inside a list comprehension and
transposed with ``zip``; only a block holding a line that is not CRI-shaped takes the per-line path.
"""

from __future__ import annotations

from kubestream.sources.logs.rows import STDOUT, STREAMS, Rows

_TAGS = frozenset((b"P", b"F"))
_FIELDS = 4
_HEADER_ONLY = 3


def parse_cri(lines: list[bytes], offsets: list[int], fallback_ts: bytes) -> Rows:
    """Rows of complete CRI lines (without their newlines); ``fallback_ts`` stamps malformed ones."""
    if not lines:
        return Rows([], [], b"", [], offsets)
    parts = [line.split(b" ", 3) for line in lines]
    try:
        # zip(*parts) stops at the shortest row: a row with fewer fields makes the unpack fail.
        timestamps, streams, tags, messages = zip(*parts, strict=False)
    except ValueError:
        return _parse_slow(parts, lines, offsets, fallback_ts)
    # Free text almost never has "stdout"/"stderr" then "P"/"F" as its 2nd and 3rd words on every
    # line; timestamps are not checked row by row here (that costs as much as the split): the
    # encoders quote them safely and Parquet stores an unparsable one as null.
    if set(streams) <= STREAMS and set(tags) <= _TAGS:
        return Rows(timestamps, streams, b"".join(tags), messages, offsets)
    return _parse_slow(parts, lines, offsets, fallback_ts)


def _parse_slow(parts: list[list[bytes]], lines: list[bytes], offsets: list[int], fallback_ts: bytes) -> Rows:
    """Row by row: CRI-shaped lines are parsed, others become whole stdout messages (malformed)."""
    timestamps: list[bytes] = []
    streams: list[bytes] = []
    tags = bytearray()
    messages: list[bytes] = []
    malformed: set[int] = set()
    last_ts = fallback_ts
    for i, p in enumerate(parts):
        if len(p) == _HEADER_ONLY:
            p = [*p, b""]  # an empty message whose trailing space was lost
        if len(p) == _FIELDS and p[1] in STREAMS and p[2] in _TAGS and p[0][10:11] == b"T" and p[0][:4].isdigit():
            last_ts = p[0]
            timestamps.append(p[0])
            streams.append(p[1])
            tags += p[2]
            messages.append(p[3])
        else:
            malformed.add(i)
            timestamps.append(last_ts)
            streams.append(STDOUT)
            tags += b"F"
            messages.append(lines[i])
    return Rows(timestamps, streams, bytes(tags), messages, offsets, malformed=malformed)
