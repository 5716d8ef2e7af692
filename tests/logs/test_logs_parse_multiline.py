"""Multi-line joining by a start pattern: per stream, emitted on the next start, by flush or finish."""

from __future__ import annotations

import re

from kubestream.config.settings import LogsSettings
from kubestream.sources.logs.formats import LogFormat
from kubestream.sources.logs.parser import FileParser

START = re.compile(rb"\d{4}-\d\d-\d\d |Traceback|Exception")


def cri(i: int, stream: str, message: bytes, tag: str = "F") -> bytes:
    return b"2026-01-01T00:00:%02d.5Z %s %s %s\n" % (i, stream.encode(), tag.encode(), message)


TRACE = [b"Exception in thread main", b"\tat a.B.c(B.java:1)", b"\tat a.B.d(B.java:2)"]


def test_continuations_join_and_the_record_waits_for_the_next_start() -> None:
    data = b"".join(cri(i, "stderr", line) for i, line in enumerate(TRACE))
    parser = FileParser(LogFormat.CRI, LogsSettings(), multiline=START)
    block = parser.feed(data, 0)
    assert block.count == 0 and block.resume_offset == 0 and parser.has_pending
    nxt = cri(5, "stderr", b"2026-01-01 next record")
    block = parser.feed(nxt, len(data))
    assert block.messages == [b"\n".join(TRACE)] and block.offsets == [0]
    assert block.timestamps == [b"2026-01-01T00:00:00.5Z"] and block.resume_offset == len(data)


def test_flush_pending_emits_after_the_timeout_and_later_lines_start_afresh() -> None:
    data = b"".join(cri(i, "stderr", line) for i, line in enumerate(TRACE))
    parser = FileParser(LogFormat.CRI, LogsSettings(), multiline=START)
    parser.feed(data, 0)
    block = parser.flush_pending()
    assert block.messages == [b"\n".join(TRACE)] and block.resume_offset == len(data)
    assert not parser.has_pending and parser.flush_pending().count == 0
    late = cri(9, "stderr", b"\tat late.Frame")
    # No record is open any more: the late continuation is a record of its own, complete at once.
    assert parser.feed(late, len(data)).messages == [b"\tat late.Frame"]
    assert parser.finish().count == 0


def test_streams_are_joined_separately() -> None:
    lines = [cri(0, "stderr", TRACE[0]), cri(1, "stdout", b"2026-01-01 out one"), cri(2, "stderr", TRACE[1]),
             cri(3, "stdout", b"\tout continuation"), cri(4, "stderr", b"Exception two"),
             cri(5, "stdout", b"2026-01-01 out two")]
    parser = FileParser(LogFormat.CRI, LogsSettings(), multiline=START)
    block = parser.feed(b"".join(lines), 0)
    assert block.messages == [TRACE[0] + b"\n" + TRACE[1], b"2026-01-01 out one\n\tout continuation"]
    assert block.resume_offset == len(lines[0]) + len(lines[1]) + len(lines[2]) + len(lines[3])
    assert parser.finish().messages == [b"Exception two", b"2026-01-01 out two"]


def test_partial_lines_merge_before_multiline_joining() -> None:
    data = (cri(0, "stdout", b"Traceback (most", "P") + cri(0, "stdout", b" recent call last):")
            + cri(1, "stdout", b'  File "x.py"') + cri(2, "stdout", b"Traceback again"))
    block = FileParser(LogFormat.CRI, LogsSettings(), multiline=START).feed(data, 0)
    assert block.messages == [b'Traceback (most recent call last):\n  File "x.py"']


def test_a_record_is_closed_before_it_outgrows_max_merged_bytes() -> None:
    line = b"\tcontinuation " + b"c" * 500
    data = cri(0, "stdout", b"Exception start") + b"".join(cri(1, "stdout", line) for _ in range(6))
    parser = FileParser(LogFormat.CRI, LogsSettings(max_merged_bytes=1024), multiline=START)
    out = parser.feed(data, 0).messages + parser.finish().messages
    assert b"\n".join(out) == b"\n".join([b"Exception start"] + [line] * 6)
    assert all(len(m) <= 1024 for m in out) and len(out) == 6  # start+1, then one line each
