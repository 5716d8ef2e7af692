"""Joining multi-line records (stack traces) by a start pattern, per stream.

A record starts at a line matching the pattern; the lines that follow on the same stream and do
not match are continuations, joined with ``"\\n"``. A record is complete when the next start line
of its stream arrives, or it is flushed (timeout, end of file). It is also closed (not truncated,
nothing is lost) before it would grow beyond ``max_merged_bytes`` or span more than twice that
many bytes of the file, so one silent stream cannot hold the file back.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from kubestream.sources.logs.records import Records


@dataclass(slots=True)
class _Group:
    members: list[int]
    head_offset: int
    size: int
    complete: bool = False


@dataclass(slots=True)
class _Grouper:
    records: Records
    offsets: list[int]
    max_merged: int
    groups: list[_Group] = field(default_factory=list)
    open: dict[bytes, _Group] = field(default_factory=dict)

    def add(self, index: int, starts: bool) -> None:
        stream = self.records.streams[index]
        offset = self.offsets[self.records.head_row(index)]
        size = len(self.records.messages[index]) + 1
        group = self.open.get(stream)
        if group is not None and not starts and self._fits(group, offset, size):
            group.members.append(index)
            group.size += size
            return
        if group is not None:
            group.complete = True
        new = _Group([index], offset, size)
        self.groups.append(new)
        self.open[stream] = new

    def _fits(self, group: _Group, offset: int, size: int) -> bool:
        return group.size + size <= self.max_merged and offset - group.head_offset <= 2 * self.max_merged


def join_multiline(
    records: Records,
    pattern: re.Pattern[bytes],
    offsets: list[int],
    max_merged: int,
    *,
    flush: bool,
) -> Records:
    """Group ``records`` into multi-line records; ``flush``: open records are complete too."""
    grouper = _Grouper(records, offsets, max_merged)
    # An unfinished P/F run may hold continuations of an open record: stop grouping at the first
    # one, so the open records stay open (and everything from there is parsed again later).
    barrier = min(records.pending, default=len(offsets))
    for index, data in enumerate(records.messages):
        if records.head_row(index) >= barrier:
            break
        grouper.add(index, pattern.match(data) is not None)
    if flush:
        for group in grouper.open.values():
            group.complete = True
    return _collect(records, grouper.groups)


def _collect(records: Records, groups: list[_Group]) -> Records:
    spans = dict(records.spans)
    out = Records([], [], [], [], pending=list(records.pending))
    ts, st, heads = list(out.timestamps), list(out.streams), []
    for group in groups:
        first = group.members[0]
        head = records.head_row(first)
        if not group.complete:
            out.pending.append(head)
            continue
        index = len(out.messages)
        ts.append(records.timestamps[first])
        st.append(records.streams[first])
        heads.append(head)
        texts = [records.messages[m] for m in group.members]
        out.messages.append(b"\n".join(texts))
        last = max(spans.get(records.head_row(m), records.head_row(m)) for m in group.members)
        if last != head:
            out.spans.append((head, last))
        members = set(group.members)
        if members & records.truncated:
            out.truncated.add(index)
        if members & records.malformed:
            out.malformed.add(index)
        if members & records.invalid:
            out.invalid.add(index)
            if records.raw:
                out.raw[index] = b"\n".join(records.raw.get(m, t) for m, t in zip(group.members, texts, strict=True))
    out.timestamps, out.streams, out.head_rows = ts, st, heads
    return out
