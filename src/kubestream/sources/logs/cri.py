"""CRI log lines (containerd, CRI-O): ``<RFC3339Nano> <stdout|stderr> <P|F>[:tag...] <message>``.

The whole block is split with one ``bytes.split`` per line, driven by ``map`` (no bytecode per
line), flattened by ``chain.from_iterable`` into one list of fields, and cut into columns by four
strided slices; the timestamps are checked by one regex pass over all of them (``timestamps``).
Only a block holding a line that is not CRI-shaped takes the per-line path.

Garbage collection shapes this: each line's field list is freed as soon as ``chain`` moves past it,
so no per-line container outlives a young collection. The obvious ``zip(*rows)`` keeps one
iterator per line alive until the transposition ends (and a list comprehension keeps every row
list alive): 5,000 such objects per 1 MiB read reach the oldest generation and trigger full
collections, which walk every object of the agent (profiled: a quarter to a third of the whole
source's CPU time).

A line is CRI-shaped when its first field is a valid RFC 3339 time, its second a stream and its
third a tag whose first ``:``-separated part is ``P`` or ``F`` (kubelet accepts ``P:TAG1:TAG2``).
Any other line is *malformed*: kept whole as a stdout message with no timestamp (``b""``), so the
result depends on the line only, never on which lines happened to be read with it.
"""

from __future__ import annotations

from itertools import chain, repeat

from kubestream.sources.logs.rows import STDOUT, STREAMS, Rows
from kubestream.util.rfc3339 import all_rfc3339, is_rfc3339

_TAGS = frozenset((b"P", b"F"))
_TAG_SEPARATOR = b":"
_FIELDS = 4
_HEADER_ONLY = 3
NO_TIMESTAMP = b""
"""The timestamp of a line that carries no valid one (the encoders stamp ingestion time)."""


def parse_cri(lines: list[bytes], offsets: list[int]) -> Rows:
    """Rows of complete CRI lines (without their newlines)."""
    if not lines:
        return Rows([], [], b"", [], offsets)
    fields = list(chain.from_iterable(map(bytes.split, lines, repeat(b" "), repeat(_FIELDS - 1))))
    if len(fields) != _FIELDS * len(lines):
        # No line has more than four fields (maxsplit), so some line has fewer.
        return _parse_slow(lines, offsets)
    timestamps, streams, tags, messages = (fields[i::_FIELDS] for i in range(_FIELDS))
    # Free text almost never has "stdout"/"stderr" then "P"/"F" as its 2nd and 3rd words on every
    # line, and a valid time as its first.
    if not set(streams) <= STREAMS or not all_rfc3339(timestamps, newline_free=True):
        return _parse_slow(lines, offsets)
    tag_set = set(tags)
    if tag_set <= _TAGS:
        return Rows(timestamps, streams, b"".join(tags), messages, offsets)
    if all(map(_is_tag, tag_set)):
        return Rows(timestamps, streams, bytes(t[0] for t in tags), messages, offsets)
    return _parse_slow(lines, offsets)


def _is_tag(tag: bytes) -> bool:
    """``P``/``F``, optionally followed by ``:``-separated extra tags (ignored, as kubelet does)."""
    return tag[:1] in _TAGS and (len(tag) == 1 or tag[1:2] == _TAG_SEPARATOR)


def _parse_slow(lines: list[bytes], offsets: list[int]) -> Rows:
    """Row by row: CRI-shaped lines are parsed, others become whole stdout messages (malformed)."""
    timestamps: list[bytes] = []
    streams: list[bytes] = []
    tags = bytearray()
    messages: list[bytes] = []
    malformed: set[int] = set()
    for i, line in enumerate(lines):
        p = line.split(b" ", _FIELDS - 1)
        if len(p) == _HEADER_ONLY:
            p.append(b"")  # an empty message whose trailing space was lost
        if len(p) == _FIELDS and p[1] in STREAMS and _is_tag(p[2]) and is_rfc3339(p[0]):
            timestamps.append(p[0])
            streams.append(p[1])
            tags.append(p[2][0])
            messages.append(p[3])
        else:
            malformed.add(i)
            timestamps.append(NO_TIMESTAMP)
            streams.append(STDOUT)
            tags += b"F"
            messages.append(line)
    return Rows(timestamps, streams, bytes(tags), messages, offsets, malformed=malformed)


def is_cri_line(line: bytes) -> bool:
    """Whether one line (without its newline) is CRI-shaped."""
    return not parse_cri([line], [0, len(line) + 1]).malformed
