"""Joining multi-line records (stack traces) by a start pattern, per stream.

A record starts at a line matching the pattern; the lines that follow on the same stream and do
not match are continuations, joined with ``"\\n"``. A line that does not match while its stream
has no open record (the lines before the first start line, or after a record was closed) is a
record of its own: nothing is glued onto a line that does not start a record. A record is
complete when the next start line of its stream arrives, or it is flushed (timeout, end of
file). It is also closed (not truncated, nothing is lost) before it would grow beyond
``max_merged_bytes`` or span more than twice that many bytes of the file, so one silent stream
cannot hold the file back.

Start patterns come from pod annotations and the config, so they run on RE2 (``google-re2``),
whose matching time is linear in the line: a pattern like ``(a+)+$`` cannot stall the agent. A
pattern RE2 cannot compile (backreferences, look-around, ``\\Z``) is refused by
``compile_start_pattern`` with a one-line reason. The pattern is matched at the start of the
message (``re.match`` semantics, not ``search``) against its UTF-8 bytes.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Protocol

import re2  # type: ignore[import-untyped]

from kubestream.errors import KubestreamError
from kubestream.sources.logs.records import Records

MAX_PATTERN_CHARS = 4096
"""Longer start patterns are refused: no real first-line pattern is this long."""
_ANCHOR_START = re2._re2.RE2.Anchor.ANCHOR_START
_NO_MATCH = (-1, -1)


class StartPatternError(KubestreamError, ValueError):
    """A multi-line start pattern the linear-time engine refuses; the message is a one-line reason."""


class StartMatcher(Protocol):
    """What joining needs of a start pattern: ``match`` at the start of a message."""

    def match(self, data: bytes, /) -> object | None: ...


class StartPattern:
    """A compiled start pattern (see ``compile_start_pattern``)."""

    __slots__ = ("_compiled", "_match", "pattern")

    _compiled: object

    def __init__(self, pattern: str, compiled: object) -> None:
        self.pattern = pattern
        # The wrapper's ``match`` builds a generator and a match object per call; the pybind11
        # object under it answers spans directly, about twice as fast per line (measured).
        raw = getattr(compiled, "_regexp", None)
        self._match = raw.Match if raw is not None and hasattr(raw, "Match") else None
        self._compiled = compiled if self._match is None else None

    def match(self, data: bytes, /) -> bool | None:
        """True if a record starts with ``data``; None otherwise (like ``re.Pattern.match``)."""
        if self._match is not None:
            return True if self._match(_ANCHOR_START, data, 0, len(data))[0] != _NO_MATCH else None
        return True if self._compiled.match(data) is not None else None  # type: ignore[attr-defined]

    def __repr__(self) -> str:
        return f"StartPattern({self.pattern!r})"


def compile_start_pattern(pattern: str) -> StartPattern:
    """Compile a start pattern with RE2; ``StartPatternError`` (a ``ValueError``) if it cannot be."""
    if len(pattern) > MAX_PATTERN_CHARS:
        raise StartPatternError(f"longer than {MAX_PATTERN_CHARS} characters")
    options = re2.Options()
    options.never_capture = True  # only "does it match" is asked: no groups to track
    options.log_errors = False  # RE2 would print refusals to stderr itself
    try:
        compiled = re2.compile(pattern, options)
    except re2.error as exc:
        detail = exc.args[0] if exc.args else ""
        text = detail.decode("utf-8", "replace") if isinstance(detail, bytes) else str(detail)
        reason = " ".join(text.split()) or "not a valid RE2 regular expression"
        raise StartPatternError(f"RE2 cannot compile it: {reason}") from None
    return StartPattern(pattern, compiled)


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
        if not starts:
            if group is not None and self._fits(group, offset, size):
                group.members.append(index)
                group.size += size
                return
            if group is not None:
                group.complete = True
                del self.open[stream]
            # Continues no open record: a record of its own, complete now (what follows cannot
            # change that, so the result does not depend on where reads end).
            self.groups.append(_Group([index], offset, size, complete=True))
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
    pattern: StartMatcher,
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
