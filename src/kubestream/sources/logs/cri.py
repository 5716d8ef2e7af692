"""CRI log lines (containerd, CRI-O): ``<RFC3339Nano> <stdout|stderr> <P|F> <message>``.

The whole block is split with one ``bytes.split`` per line, driven by ``map`` (no bytecode per
line), flattened by ``chain.from_iterable`` into one list of fields, and cut into columns by four
strided slices; only a block holding a line that is not CRI-shaped takes the per-line path.

Garbage collection shapes this: each line's field list is freed as soon as ``chain`` moves past it,
so no per-line container outlives a young collection. The obvious ``zip(*rows)`` keeps one
iterator per line alive until the transposition ends (and a list comprehension keeps every row
list alive): 5,000 such objects per 1 MiB read reach the oldest generation and trigger full
collections, which walk every object of the agent (profiled: a quarter to a third of the whole
source's CPU time).
"""

from __future__ import annotations

from itertools import chain, repeat

from kubestream.sources.logs.rows import STDOUT, STREAMS, Rows

_TAGS = frozenset((b"P", b"F"))
_FIELDS = 4
_HEADER_ONLY = 3


def parse_cri(lines: list[bytes], offsets: list[int], fallback_ts: bytes) -> Rows:
    """Rows of complete CRI lines (without their newlines); ``fallback_ts`` stamps malformed ones."""
    if not lines:
        return Rows([], [], b"", [], offsets)
    fields = list(chain.from_iterable(map(bytes.split, lines, repeat(b" "), repeat(_FIELDS - 1))))
    if len(fields) != _FIELDS * len(lines):
        # No line has more than four fields (maxsplit), so some line has fewer.
        return _parse_slow(lines, offsets, fallback_ts)
    timestamps, streams, tags, messages = (fields[i::_FIELDS] for i in range(_FIELDS))
    # Free text almost never has "stdout"/"stderr" then "P"/"F" as its 2nd and 3rd words on every
    # line; timestamps are not checked row by row here (that costs as much as the split): the
    # encoders quote them safely and Parquet stores an unparsable one as null.
    if set(streams) <= STREAMS and set(tags) <= _TAGS:
        return Rows(timestamps, streams, b"".join(tags), messages, offsets)
    return _parse_slow(lines, offsets, fallback_ts)


def _parse_slow(lines: list[bytes], offsets: list[int], fallback_ts: bytes) -> Rows:
    """Row by row: CRI-shaped lines are parsed, others become whole stdout messages (malformed)."""
    parts = [line.split(b" ", 3) for line in lines]
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
