"""The state machine behind ``chunk.FileParser``: one instance per open file.

Each ``feed`` parses a *region*: the bytes carried over from earlier reads plus the new read. The
region's complete lines become rows (``cri``/``docker``), rows become records (``partial`` merges
P/F runs, ``multiline`` joins stack traces), and every record that starts before the first
unfinished one is emitted. The rest of the region (from that unfinished record, including the
unterminated last line) is carried to the next feed and parsed again: re-parsing a short carry is
cheaper than keeping a second representation of half-built records, and it makes the result the
same however the file was cut into reads, and the same after a restart at ``resume_offset``.

A physical line longer than ``max_line_bytes`` is cut: its head is kept and the rest is skipped
while it streams in (a *hole*: carry position + bytes skipped, so file offsets stay right).
"""

from __future__ import annotations

import re
from bisect import bisect_left, bisect_right
from collections.abc import Sequence
from dataclasses import dataclass
from itertools import accumulate
from operator import add

from kubestream.config.settings import LogsSettings
from kubestream.errors import KubestreamError
from kubestream.obs.metrics import Metrics
from kubestream.sources.logs.chunk import LogFormat, ParsedBlock
from kubestream.sources.logs.cri import parse_cri
from kubestream.sources.logs.docker import parse_docker
from kubestream.sources.logs.multiline import join_multiline
from kubestream.sources.logs.partial import Merged, merge_partials
from kubestream.sources.logs.records import Records, cut_row
from kubestream.sources.logs.rows import Rows
from kubestream.sources.logs.utf8 import cut_utf8, ensure_utf8

_EPOCH = b"1970-01-01T00:00:00Z"


class NonContiguousReadError(KubestreamError):
    """A read did not start where the previous one ended: the file needs a new parser."""


@dataclass(slots=True)
class _Hole:
    position: int
    """Position in the carried bytes where bytes were dropped."""
    size: int


@dataclass(slots=True)
class _Lines:
    """The complete lines of a region with their file offsets."""

    lines: list[bytes]
    offsets: list[int]
    base: int
    """File offset of the region's first byte."""
    starts: list[int] | None
    """Position of each line in the region bytes (plus the tail's) when holes make them differ
    from ``offsets - base``; None otherwise (the usual case: one list pass saved per read)."""
    truncated: set[int]

    def start(self, row: int) -> int:
        """Position of line ``row`` (``len(lines)``: the tail) in the region bytes."""
        return self.offsets[row] - self.base if self.starts is None else self.starts[row]


class BlockParser:
    """See the module docstring."""

    def __init__(
        self,
        fmt: LogFormat,
        settings: LogsSettings,
        *,
        multiline: re.Pattern[bytes] | None = None,
        metrics: Metrics | None = None,
        last_timestamp: bytes | None = None,
    ) -> None:
        self._parse_rows = parse_cri if fmt == LogFormat.CRI else parse_docker
        self._max_line = settings.max_line_bytes
        self._max_merged = settings.max_merged_bytes
        self._lossless = settings.invalid_utf8 == "lossless"
        self._pattern = multiline
        self._metrics = metrics
        self._carry = b""
        self._carry_offset = 0
        self._holes: list[_Hole] = []
        self._skipping = False
        self._next: int | None = None
        self._resume = 0
        self._discarding: set[int] = set()
        self._last_ts = last_timestamp or _EPOCH
        self._has_pending = False

    @property
    def has_pending(self) -> bool:
        return self._has_pending

    @property
    def next_offset(self) -> int:
        return self._next if self._next is not None else self._resume

    @property
    def mid_line(self) -> bool:
        """The carried bytes end inside a line (the last read cut it, or an over-long line is skipped)."""
        return self._skipping or bool(self._carry and not self._carry.endswith(b"\n"))

    def feed(self, data: bytes, offset: int) -> ParsedBlock:
        if self._next is None:
            self._carry_offset = self._resume = offset
        elif offset != self._next:
            raise NonContiguousReadError(f"read at offset {offset}, expected {self._next}")
        self._next = offset + len(data)
        if self._skipping:
            newline = data.find(b"\n")
            if newline == -1:
                self._holes[-1].size += len(data)
                return ParsedBlock(resume_offset=self._resume)
            self._holes[-1].size += newline
            data = data[newline:]
            self._skipping = False
        return self._process(self._carry + data if self._carry else data, final=False, flush=False)

    def finish(self) -> ParsedBlock:
        return self._process(self._carry, final=True, flush=True)

    def flush_pending(self) -> ParsedBlock:
        if not self._has_pending:
            return ParsedBlock(resume_offset=self._resume)
        return self._process(self._carry, final=False, flush=True)

    # ---- one region -----------------------------------------------------------------------

    def _process(self, region: bytes, *, final: bool, flush: bool) -> ParsedBlock:
        lines = self._split(region, final=final)
        rows = self._parse_rows(lines.lines, lines.offsets, self._last_ts)
        rows.truncated = lines.truncated
        merged = merge_partials(rows, self._discarding, self._max_merged, final=final)
        records = self._decode(rows, merged)
        if self._pattern is not None:
            records = join_multiline(records, self._pattern, lines.offsets, self._max_merged, flush=flush)
        n = rows.count
        cut = cut_row(records, n)
        self._has_pending = len(records.pending) > len(merged.pending)
        self._commit_discarding(merged, cut)
        if cut > 0:
            self._last_ts = rows.timestamps[cut - 1]
        self._keep_carry(region, lines, cut)
        self._resume = self._next if final and self._next is not None else lines.offsets[cut]
        return self._emit(records, lines.offsets, cut)

    def _split(self, region: bytes, *, final: bool) -> _Lines:
        lines = region.split(b"\n")
        tail = lines.pop()
        incomplete_tail = final and bool(tail)
        if incomplete_tail:
            lines.append(tail)
        lens = list(map(len, lines))
        truncated: set[int] = set()
        if incomplete_tail:
            truncated.add(len(lines) - 1)
        starts: list[int] | None = None
        if self._holes:
            starts = list(map(add, accumulate(lens, initial=0), range(len(lens) + 1)))
            if incomplete_tail:
                starts[-1] -= 1  # the tail has no newline
            for hole in self._holes:
                row = bisect_right(starts, hole.position) - 1
                if row < len(lens):
                    lens[row] += hole.size
                    truncated.add(row)
        if lens and max(lens) > self._max_line:
            for i, line in enumerate(lines):
                if len(line) > self._max_line:
                    lines[i] = cut_utf8(line, self._max_line)
                    truncated.add(i)
        offsets = list(map(add, accumulate(lens, initial=self._carry_offset), range(len(lens) + 1)))
        if incomplete_tail:
            offsets[-1] -= 1
        return _Lines(lines, offsets, self._carry_offset, starts, truncated)

    def _decode(self, rows: Rows, merged: Merged) -> Records:
        checked = ensure_utf8(merged.messages, lossless=self._lossless)
        records = Records(merged.timestamps, merged.streams, checked.messages, merged.head_rows)
        records.invalid = set(checked.invalid_rows)
        records.raw = checked.raw
        records.spans = merged.spans
        records.pending = list(merged.pending)
        records.truncated = _indexes_of(merged.truncated_heads, merged.head_rows)
        records.malformed = _indexes_of(rows.malformed, merged.head_rows)
        return records

    def _commit_discarding(self, merged: Merged, cut: int) -> None:
        """Keep the discard state that belongs to what was emitted (the rest is parsed again)."""
        kept = {code for code in self._discarding if merged.discard_ends.get(code, cut) >= cut}
        self._discarding = kept | {code for code, head, end in merged.forced if head < cut and (end == -1 or end >= cut)}

    def _keep_carry(self, region: bytes, lines: _Lines, cut: int) -> None:
        start = lines.start(min(cut, len(lines.lines)))
        tail = region[start:]
        holes = [_Hole(h.position - start, h.size) for h in self._holes if h.position >= start]
        last_newline = tail.rfind(b"\n")
        if len(tail) - last_newline - 1 > self._max_line:
            # The unterminated last line is over the limit: keep its head, skip the rest.
            keep = last_newline + 1 + self._max_line
            holes.append(_Hole(keep, len(tail) - keep))
            tail = tail[:keep]
            self._skipping = True
        self._carry, self._holes = tail, holes
        self._carry_offset = lines.offsets[min(cut, len(lines.lines))]

    def _emit(self, records: Records, offsets: list[int], cut: int) -> ParsedBlock:
        heads = records.head_rows
        k = cut if heads is None else bisect_left(heads, cut)
        messages = records.messages if k == records.count else records.messages[:k]
        block = ParsedBlock(
            timestamps=list(records.timestamps[:k]),
            streams=list(records.streams[:k]),
            messages=messages,
            offsets=offsets[:k] if heads is None else list(map(offsets.__getitem__, heads[:k])),
            resume_offset=self._resume,
            resume_timestamp=self._last_ts,
        )
        block.truncated_rows = sorted(i for i in records.truncated if i < k)
        block.truncated = len(block.truncated_rows)
        block.invalid_utf8 = sum(1 for i in records.invalid if i < k)
        block.malformed = sum(1 for i in records.malformed if i < k)
        block.raw_messages = {i: b for i, b in records.raw.items() if i < k}
        self._count(block)
        return block

    def _count(self, block: ParsedBlock) -> None:
        if self._metrics is None:
            return
        dropped = self._metrics.records_dropped
        if block.truncated:
            dropped.labels(source="logs", reason="truncated").inc(block.truncated)
        if block.malformed:
            dropped.labels(source="logs", reason="malformed").inc(block.malformed)
        if block.invalid_utf8 and not self._lossless:
            dropped.labels(source="logs", reason="invalid_utf8").inc(block.invalid_utf8)


def _indexes_of(rows: set[int], head_rows: Sequence[int] | None) -> set[int]:
    """Record indexes of the records whose first row is in ``rows``."""
    if not rows:
        return set()
    if head_rows is None:
        return set(rows)
    return {i for i, h in enumerate(head_rows) if h in rows}
