"""Parsing one container log file read sequentially: ``FileParser`` and its state machine.

Each ``feed`` parses a *region*: the bytes carried over from earlier reads plus the new read. The
region's complete lines become rows (``cri``/``docker``), rows become records (``partial`` merges
P/F runs, ``multiline`` joins stack traces), and every record that starts before the first
unfinished one is emitted. The rest of the region (from that unfinished record, including the
unterminated last line) is carried to the next feed and parsed again: re-parsing a short carry is
cheaper than keeping a second representation of half-built records, and it makes the result the
same however the file was cut into reads, and the same after a restart at ``resume_offset``.

A physical line longer than ``max_line_bytes`` is cut: its head is kept and the rest is skipped
while it streams in (a *hole*: carry position + bytes skipped, so file offsets stay right). The
last ``CUT_TAIL_BYTES`` of a cut line are kept too: a docker line carries its stream and time
after the message, and they are rebuilt from there.

The format is only a hint until a line proves it: while every line so far is malformed in the
hinted format, a line well-formed in the other one switches the parser to that format (a docker
file whose first line was cut, say). Malformed lines come out the same in both formats (whole
stdout messages without timestamp), so switching changes nothing already emitted.
"""

from __future__ import annotations

from bisect import bisect_left, bisect_right
from collections.abc import Sequence
from dataclasses import dataclass, field
from itertools import accumulate
from operator import add

from kubestream.config.settings import LogsSettings
from kubestream.errors import KubestreamError
from kubestream.model import ParsedBlock
from kubestream.obs.metrics import Metrics
from kubestream.sources.logs.cri import parse_cri
from kubestream.sources.logs.docker import CUT_TAIL_BYTES, parse_docker, recover_cut
from kubestream.sources.logs.formats import LogFormat
from kubestream.sources.logs.multiline import StartMatcher, join_multiline
from kubestream.sources.logs.partial import Merged, merge_partials
from kubestream.sources.logs.records import Records, cut_row
from kubestream.sources.logs.rows import Rows
from kubestream.sources.logs.utf8 import cut_utf8, ensure_utf8


class NonContiguousReadError(KubestreamError):
    """A read did not start where the previous one ended: the file needs a new parser."""


@dataclass(slots=True)
class _Hole:
    position: int
    """Position in the carried bytes where bytes were dropped."""
    size: int
    tail: bytes = b""
    """The last (at most ``CUT_TAIL_BYTES``) bytes dropped: the end of the cut line so far."""


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
    tails: dict[int, bytes] = field(default_factory=dict)
    """Cut row → the last bytes of its line as written."""

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
        multiline: StartMatcher | None = None,
        metrics: Metrics | None = None,
        last_timestamp: bytes | None = None,
    ) -> None:
        self._format = fmt
        self._decided = False
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
        # Only informative now (the checkpoint keeps it): a line without a valid time no longer
        # borrows one, it gets b"" and the encoders stamp ingestion time.
        self._last_ts = last_timestamp or b""
        self._has_pending = False
        self._has_partial = False

    @property
    def has_pending(self) -> bool:
        return self._has_pending

    @property
    def has_partial(self) -> bool:
        """An unfinished P/F run (docker: a ``log`` without newline) waits for its end."""
        return self._has_partial

    @property
    def format(self) -> LogFormat:
        """The format lines are parsed in (the hint given, until a line proves the other)."""
        return self._format

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
            hole = self._holes[-1]
            if newline == -1:
                hole.size += len(data)
                hole.tail = (hole.tail + data[-CUT_TAIL_BYTES:])[-CUT_TAIL_BYTES:]
                return ParsedBlock(resume_offset=self._resume)
            hole.size += newline
            hole.tail = (hole.tail + data[max(0, newline - CUT_TAIL_BYTES):newline])[-CUT_TAIL_BYTES:]
            data = data[newline:]
            self._skipping = False
        return self._process(self._carry + data if self._carry else data, final=False, flush=False)

    def finish(self) -> ParsedBlock:
        return self._process(self._carry, final=True, flush=True)

    def flush_pending(self) -> ParsedBlock:
        if not self._has_pending:
            return ParsedBlock(resume_offset=self._resume)
        return self._process(self._carry, final=False, flush=True)

    def expire_partials(self) -> ParsedBlock:
        """Emit unfinished P/F runs as they are (the runtime wrote nothing for a while)."""
        if not self._has_partial:
            return ParsedBlock(resume_offset=self._resume)
        return self._process(self._carry, final=False, flush=False, expire=True)

    # ---- one region -----------------------------------------------------------------------

    def _process(self, region: bytes, *, final: bool, flush: bool, expire: bool = False) -> ParsedBlock:
        lines = self._split(region, final=final)
        rows = self._rows(lines)
        merged = merge_partials(rows, self._discarding, self._max_merged, final=final, expire=expire)
        records = self._decode(rows, merged)
        if self._pattern is not None:
            records = join_multiline(records, self._pattern, lines.offsets, self._max_merged, flush=flush)
        n = rows.count
        cut = cut_row(records, n)
        self._has_pending = len(records.pending) > len(merged.pending)
        self._has_partial = bool(merged.pending)
        self._commit_discarding(merged, cut)
        if cut > 0 and rows.timestamps[cut - 1]:
            self._last_ts = rows.timestamps[cut - 1]
        self._keep_carry(region, lines, cut)
        self._resume = self._next if final and self._next is not None else lines.offsets[cut]
        return self._emit(records, lines.offsets, cut)

    def _rows(self, lines: _Lines) -> Rows:
        rows = self._parse(self._format, lines)
        if not self._decided and rows.count:
            rows = self._decide(lines, rows)
        return rows

    def _parse(self, fmt: LogFormat, lines: _Lines) -> Rows:
        if fmt == LogFormat.CRI:
            rows = parse_cri(lines.lines, lines.offsets)
        else:
            rows = parse_docker(lines.lines, lines.offsets)
            if lines.tails and rows.malformed:
                recover_cut(rows, lines.lines, lines.tails)
        rows.truncated = lines.truncated
        return rows

    def _decide(self, lines: _Lines, rows: Rows) -> Rows:
        """Settle the format on the first well-formed line (see the module docstring)."""
        first = _first_well_formed(rows)
        if first > 0:
            other = LogFormat.DOCKER if self._format == LogFormat.CRI else LogFormat.CRI
            alternative = self._parse(other, lines)
            if _first_well_formed(alternative) < first:
                self._format, rows, first = other, alternative, _first_well_formed(alternative)
        self._decided = first < rows.count
        return rows

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
        tails: dict[int, bytes] = {}
        if self._holes:
            starts = list(map(add, accumulate(lens, initial=0), range(len(lens) + 1)))
            if incomplete_tail:
                starts[-1] -= 1  # the tail has no newline
            for hole in self._holes:
                row = bisect_right(starts, hole.position) - 1
                if row < len(lens):
                    lens[row] += hole.size
                    truncated.add(row)
                    tails[row] = hole.tail
        if lens and max(lens) > self._max_line:
            for i, line in enumerate(lines):
                if len(line) > self._max_line:
                    tails[i] = line[-CUT_TAIL_BYTES:]
                    lines[i] = cut_utf8(line, self._max_line)
                    truncated.add(i)
        offsets = list(map(add, accumulate(lens, initial=self._carry_offset), range(len(lens) + 1)))
        if incomplete_tail:
            offsets[-1] -= 1
        return _Lines(lines, offsets, self._carry_offset, starts, truncated, tails)

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
        holes = [_Hole(h.position - start, h.size, h.tail) for h in self._holes if h.position >= start]
        last_newline = tail.rfind(b"\n")
        if len(tail) - last_newline - 1 > self._max_line:
            # The unterminated last line is over the limit: keep its head, skip the rest.
            keep = last_newline + 1 + self._max_line
            holes.append(_Hole(keep, len(tail) - keep, tail[max(keep, len(tail) - CUT_TAIL_BYTES):]))
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


class FileParser:
    """Parses one log file read sequentially; keeps the state that spans reads.

    The state is the unterminated physical line at the end of the previous read, the pending P/F
    (or docker 16 KiB split) merge, and the pending multi-line record. Feed contiguous reads; a
    parser started at a checkpoint (``resume_offset``) produces exactly the records after it.
    """

    def __init__(
        self,
        fmt: LogFormat,
        settings: LogsSettings,
        *,
        multiline: StartMatcher | None = None,
        metrics: Metrics | None = None,
        last_timestamp: bytes | None = None,
    ) -> None:
        self.format = fmt
        # ``last_timestamp``: from the checkpoint (``ParsedBlock.resume_timestamp``) when resuming.
        self._impl = BlockParser(fmt, settings, multiline=multiline, metrics=metrics, last_timestamp=last_timestamp)

    def feed(self, data: bytes, offset: int) -> ParsedBlock:
        """Parse ``data`` read from the file at ``offset`` (must continue the previous read)."""
        return self._impl.feed(data, offset)

    def finish(self) -> ParsedBlock:
        """The file is let go: emit everything buffered (an incomplete tail is counted truncated)."""
        return self._impl.finish()

    def flush_pending(self) -> ParsedBlock:
        """Emit a pending multi-line record now (call after ``multiline_timeout_s`` without data).

        Only a *complete* record waiting for the next start line is emitted; an unterminated line
        or an unfinished P/F merge stays buffered (the runtime will finish it).
        """
        return self._impl.flush_pending()

    @property
    def has_pending(self) -> bool:
        """True while a complete multi-line record waits for its next start line."""
        return self._impl.has_pending

    @property
    def has_partial(self) -> bool:
        """True while an unfinished P/F run (docker: a ``log`` without newline) waits for its end."""
        return self._impl.has_partial

    def expire_partials(self) -> ParsedBlock:
        """Emit unfinished P/F runs as written so far (call after ``partial_expiry_s`` without data:
        an exited container's last part never gets its end)."""
        return self._impl.expire_partials()

    @property
    def next_offset(self) -> int:
        """The file offset the next ``feed`` must start at."""
        return self._impl.next_offset

    @property
    def mid_line(self) -> bool:
        """The last read ended inside a line: ``finish`` emits its head (as truncated)."""
        return self._impl.mid_line


def _first_well_formed(rows: Rows) -> int:
    """The index of the first row that is not malformed (``rows.count`` if there is none)."""
    malformed = rows.malformed
    return next((i for i in range(rows.count) if i not in malformed), rows.count)


def _indexes_of(rows: set[int], head_rows: Sequence[int] | None) -> set[int]:
    """Record indexes of the records whose first row is in ``rows``."""
    if not rows:
        return set()
    if head_rows is None:
        return set(rows)
    return {i for i, h in enumerate(head_rows) if h in rows}
