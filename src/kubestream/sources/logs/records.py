"""Logical records of one region, decoded, before the parser decides which of them to emit."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field


@dataclass(slots=True)
class Records:
    """Parallel columns of records in the order of their first row, plus what holds them back."""

    timestamps: Sequence[bytes]
    streams: Sequence[bytes]
    messages: list[bytes]
    """UTF-8 (checked) message bytes."""
    head_rows: Sequence[int] | None
    """First row of each record (None: record ``i`` is row ``i``)."""
    spans: list[tuple[int, int]] = field(default_factory=list)
    """(first row, last row) of every record made of several rows."""
    pending: list[int] = field(default_factory=list)
    """First rows of unfinished records (P/F runs, multi-line records)."""
    truncated: set[int] = field(default_factory=set)
    """Indexes of shortened records."""
    invalid: set[int] = field(default_factory=set)
    """Indexes of records that were not valid UTF-8."""
    raw: dict[int, bytes] = field(default_factory=dict)
    """Lossless mode: index → original bytes of an invalid record."""
    malformed: set[int] = field(default_factory=set)
    """Indexes of records made from lines that were not CRI/docker-shaped."""

    @property
    def count(self) -> int:
        """The number of records."""
        return len(self.messages)

    def head_row(self, index: int) -> int:
        """The first row of record ``index``."""
        return index if self.head_rows is None else self.head_rows[index]


def cut_row(records: Records, row_count: int) -> int:
    """The first row not to emit: the earliest unfinished record, moved back past any emitted
    record that has rows at or after it (so restarting there repeats nothing and loses nothing)."""
    cut = min(records.pending, default=row_count)
    if not records.pending:
        return cut
    moved = True
    while moved:
        moved = False
        for first, last in records.spans:
            if first < cut <= last:
                cut, moved = first, True
    return cut
