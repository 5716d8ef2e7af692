"""Merging partial lines: CRI ``P…P F`` runs and docker 16 KiB splits, per stream.

Only the rows of a run are visited in Python: runs are found with ``bytes.find`` on the tag string
and the next row of the same stream with ``bytes.find`` on the stream-code string. Rows outside
runs are carried over by list slices. stdout and stderr runs may interleave (the runtime writes
the two streams from separate goroutines), so a run collects the next rows *of its own stream*.

A run longer than ``max_merged_bytes`` is cut there (the record is flagged truncated) and the rest
of the run is dropped, also in later reads ("discarding" state per stream). A run whose next part
starts more than ``2 * max_merged_bytes`` after its head is cut the same way, so an unfinished run
cannot hold the rest of the file back (both rules depend on the file only, not on read sizes).

A malformed line (not CRI/docker-shaped) belongs to no stream: it ends every run open before it
(the run is emitted as it is, then the line as its own record), so it is never glued onto a run
as its end. ``expire`` (the runtime wrote nothing for ``partial_expiry_s``: an exited container's
last ``P``, a docker ``log`` without newline) emits the unfinished runs as they are, not truncated.
"""

from __future__ import annotations

from bisect import bisect_right
from collections.abc import Sequence
from dataclasses import dataclass, field

from kubestream.sources.logs.rows import FULL, PARTIAL, Rows
from kubestream.sources.logs.utf8 import cut_utf8

_P = bytes((PARTIAL,))
_NO_STREAM = 0
"""The stream code given to malformed rows: no run ever finds them as its next part."""


@dataclass(slots=True)
class Merged:
    """Logical records (before multi-line joining), in the order of their first row."""

    timestamps: Sequence[bytes]
    streams: Sequence[bytes]
    messages: Sequence[bytes]
    head_rows: Sequence[int] | None
    """The first row of each record; None when records are exactly the rows."""
    spans: list[tuple[int, int]] = field(default_factory=list)
    """(first row, last row) of every record made of several rows."""
    pending: list[int] = field(default_factory=list)
    """First rows of runs not finished yet: they and everything after them wait."""
    truncated_heads: set[int] = field(default_factory=set)
    """First rows of records that were shortened."""
    forced: list[tuple[int, int, int]] = field(default_factory=list)
    """(stream code, first row, end row) of every run cut short whose remaining parts are dropped;
    the end row is the F that ended the dropping, -1 while the rest of the run is still to come.
    The parser keeps dropping in the next read if the run was emitted and its end is not (the end
    is parsed again then, and must be dropped again)."""
    discard_ends: dict[int, int] = field(default_factory=dict)
    """Stream code → the F row that ended a run being discarded since an earlier read."""

    def head_row(self, index: int) -> int:
        """The first row of record ``index``."""
        return index if self.head_rows is None else self.head_rows[index]


@dataclass(slots=True)
class _Run:
    head: int
    members: list[int]
    complete: bool
    cut: bool


def merge_partials(rows: Rows, discarding: set[int], max_merged: int, *, final: bool,
                   expire: bool = False) -> Merged:
    """Merge the P/F runs of ``rows``; ``discarding``: streams whose current run is being dropped;
    ``final``: unfinished runs are emitted truncated; ``expire``: they are emitted as they are."""
    if _P not in rows.tags and not discarding:
        return Merged(rows.timestamps, rows.streams, rows.messages, None,
                      truncated_heads=set(rows.truncated))
    return _Merger(rows, discarding, max_merged, final, expire).merge()


class _Merger:
    def __init__(self, rows: Rows, discarding: set[int], max_merged: int, final: bool, expire: bool) -> None:
        self.rows = rows
        self.codes = rows.stream_codes
        self.barriers = sorted(rows.malformed)
        if self.barriers:
            codes = bytearray(self.codes)
            for row in self.barriers:
                codes[row] = _NO_STREAM
            self.codes = bytes(codes)
        self.discarding = discarding
        self.max_merged = max_merged
        self.final = final
        self.expire = expire
        self.skip: set[int] = set()
        self.runs: dict[int, _Run] = {}
        self.out = Merged([], [], [], [], truncated_heads=set())

    def merge(self) -> Merged:
        for code in self.discarding:
            self._drop_rest(code, -1, inherited=True)
        tags = self.rows.tags
        i = tags.find(_P)
        while i != -1:
            if i not in self.skip:
                self.runs[i] = self._walk(i)
            i = tags.find(_P, i + 1)
        self._build()
        return self.out

    def _next_of_stream(self, row: int) -> int:
        return self.codes.find(self.codes[row], row + 1)

    def _walk(self, head: int) -> _Run:
        rows, offsets = self.rows, self.rows.offsets
        run = _Run(head, [head], complete=False, cut=False)
        size = rows.message_size(head)
        j = head
        while True:
            barrier = self._barrier_after(j)
            j = self._next_of_stream(j)
            if barrier != -1 and (j == -1 or barrier < j):
                # A malformed line ends the run: emitted as it is, or cut if that line starts as far
                # away as a next part may not (the rule a read ending there applies, too).
                if offsets[barrier] - offsets[head] > 2 * self.max_merged:
                    run.cut = True
                else:
                    run.complete = True
                return run
            if j == -1:
                break
            self.skip.add(j)
            if offsets[j] - offsets[head] > 2 * self.max_merged:
                self._cut(run, j, include=True)
                return run
            run.members.append(j)
            size += rows.message_size(j)
            if rows.tags[j] == FULL:
                run.complete = True
                break
            if size > self.max_merged:
                self._cut(run, j, include=False)
                return run
        if not run.complete:
            too_far = offsets[-1] - offsets[head] > 2 * self.max_merged
            if self.final or too_far or size > self.max_merged:
                run.cut = True
                if not self.final:
                    self._force(head, -1)
            elif self.expire:
                run.complete = True  # the runtime will not finish it: emitted as written so far
        return run

    def _barrier_after(self, row: int) -> int:
        """The first malformed row after ``row``, -1 if there is none."""
        k = bisect_right(self.barriers, row)
        return self.barriers[k] if k < len(self.barriers) else -1

    def _cut(self, run: _Run, row: int, *, include: bool) -> None:
        """End ``run`` early; drop the rest of it (from ``row``, or after it) now and later."""
        run.cut = True
        if include:
            self.skip.add(row)
            if self.rows.tags[row] == FULL:
                self._force(run.head, row)
                return
        self._force(run.head, self._drop_rest(self.codes[row], row, inherited=False))

    def _force(self, head: int, end: int) -> None:
        """Record that the rest of the run at ``head`` is dropped up to row ``end`` (-1: not seen yet).

        Even when the dropped parts end in this region they may lie after the parser's cut, and
        then a re-parse from the cut must drop them again instead of taking them for records.
        """
        self.out.forced.append((self.codes[head], head, end))

    def _drop_rest(self, code: int, after: int, *, inherited: bool) -> int:
        """Skip the rows of ``code`` after ``after`` up to its next F (or a malformed row: it ends
        every run); that row, or -1."""
        j = after
        stop = self._barrier_after(after)
        while True:
            j = self.codes.find(code, j + 1)
            if stop != -1 and (j == -1 or stop < j):
                if inherited:
                    self.out.discard_ends[code] = stop
                return stop
            if j == -1:
                return -1
            self.skip.add(j)
            if self.rows.tags[j] == FULL:
                if inherited:
                    self.out.discard_ends[code] = j
                return j

    def _build(self) -> None:
        """Rows outside runs by slices, each run as one record at its head's place."""
        rows, out = self.rows, self.out
        ts, st = list(rows.timestamps), list(rows.streams)
        msgs = list(rows.messages)
        heads: list[int] = []
        o_ts: list[bytes] = []
        o_st: list[bytes] = []
        o_msg: list[bytes] = []
        prev = 0
        for r in sorted(self.skip | self.runs.keys()):
            if r > prev:
                o_ts += ts[prev:r]
                o_st += st[prev:r]
                o_msg += msgs[prev:r]
                heads += range(prev, r)
            prev = r + 1
            run = self.runs.get(r)
            if run is None:
                continue
            if not run.complete and not run.cut:
                out.pending.append(r)
                continue
            o_ts.append(ts[r])
            o_st.append(st[r])
            o_msg.append(self._join(run))
            heads.append(r)
            out.spans.append((r, run.members[-1]))
        o_ts += ts[prev:]
        o_st += st[prev:]
        o_msg += msgs[prev:]
        heads += range(prev, len(msgs))
        out.timestamps, out.streams, out.head_rows = o_ts, o_st, heads
        out.messages = o_msg
        out.truncated_heads |= {r for r in rows.truncated if r not in self.skip}
        # A run keeps the truncation of any of its parts.
        for r, run in self.runs.items():
            if run.cut or any(m in rows.truncated for m in run.members):
                out.truncated_heads.add(r)

    def _join(self, run: _Run) -> bytes:
        joined = b"".join([self.rows.messages[m] for m in run.members])
        if len(joined) > self.max_merged:
            run.cut = True
            return cut_utf8(joined, self.max_merged)
        return joined
