"""Property tests: the same file (CRI or docker, with malformed lines, invalid times, extra CRI
tags, oversize lines) cut into reads anywhere, or read line by line, parses to the same records,
and a parser restarted at any checkpoint continues with exactly the records not yet emitted."""

from __future__ import annotations

import re
from itertools import pairwise

import orjson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from kubestream.config.settings import LogsSettings
from kubestream.model import ParsedBlock
from kubestream.sources.logs.formats import LogFormat
from kubestream.sources.logs.parser import FileParser
from kubestream.util.rfc3339 import is_rfc3339

START = re.compile(rb"START")
SETTINGS = LogsSettings(max_line_bytes=1024, max_merged_bytes=1024)

_message = st.one_of(
    st.binary(max_size=40).map(lambda b: b.replace(b"\n", b"")),
    st.sampled_from([b"START of record", b"\tcontinuation", b"bad \xff utf8", b"x" * 700, b"y" * 1500]),
)
_line = st.tuples(st.sampled_from(["stdout", "stderr"]), st.sampled_from(["F", "F", "P", "P:x:y", "F:tag"]),
                  _message)
# RFC 3339 in its forms (a valid time) and times that are not valid (the line is malformed then).
_time = st.sampled_from(["2026-01-01T00:00:%02d.%dZ", "2026-01-01t00:00:%02d.%dz", "2026-01-01T00:00:%02d.%d+01:00",
                         "2026-02-30T00:00:%02d.%dZ", "2026-01-01T00:00:%02d.%d", "garbage%02d%d"])
_garbage = st.sampled_from([b"not a cri line", b"", b"garbage stdout F x", b"2026-13-01T00:00:00Z stdout F month",
                            b"2026-01-01T00:00:00Z stdout X:y no tag", b"2026-01-01T00:00:00Z stdout P"])
_docker_garbage = st.sampled_from([b"not json", b"", b'{"log":"no stream\\n"}', b"[1,2]",
                                   b'ut","stream":"stdout","time":"2026-01-01T00:00:00Z"}'])


def _stamp(draw: st.DrawFn, i: int) -> str:
    """Mostly the runtime's own RFC3339Nano; one line in six another form, valid or not."""
    form = draw(_time) if draw(st.integers(0, 5)) == 0 else "2026-01-01T00:00:%02d.%dZ"
    return form % (i % 60, i)


@st.composite
def cri_files(draw: st.DrawFn) -> bytes:
    out = []
    for i, (stream, tag, message) in enumerate(draw(st.lists(_line, max_size=40))):
        if draw(st.integers(0, 20)) == 0:
            out.append(draw(_garbage) + b"\n")
        out.append(b"%s %s %s %s\n" % (_stamp(draw, i).encode(), stream.encode(), tag.encode(), message))
    return b"".join(out)


@st.composite
def docker_files(draw: st.DrawFn) -> bytes:
    out = []
    for i, (stream, tag, message) in enumerate(draw(st.lists(_line, max_size=30))):
        if draw(st.integers(0, 15)) == 0:
            out.append(draw(_docker_garbage) + b"\n")
        text = message.decode("utf-8", "replace") + ("" if tag.startswith("P") else "\n")
        out.append(orjson.dumps({"log": text, "stream": stream, "time": _stamp(draw, i)}) + b"\n")
    return b"".join(out)


def files(fmt: LogFormat) -> st.SearchStrategy[bytes]:
    return cri_files() if fmt == LogFormat.CRI else docker_files()


def records(block: ParsedBlock) -> list[tuple[bytes, bytes, bytes, int, bool, bytes | None]]:
    truncated = set(block.truncated_rows)
    return [(t, s, m, o, i in truncated, block.raw_messages.get(i)) for i, (t, s, m, o) in
            enumerate(zip(block.timestamps, block.streams, block.messages, block.offsets, strict=True))]


def parse(data: bytes, cuts: list[int], *, multiline: bool, start: int = 0, max_merged: int = 1024,
          last_timestamp: bytes | None = None, fmt: LogFormat = LogFormat.CRI,
          ) -> tuple[list[object], int, bytes | None]:
    """Records of ``data`` read in pieces, and the checkpoint: (offset, timestamp) at the end."""
    settings_ = SETTINGS.model_copy(update={"invalid_utf8": "lossless", "max_merged_bytes": max_merged})
    parser = FileParser(fmt, settings_, multiline=START if multiline else None,
                        last_timestamp=last_timestamp)
    out: list[object] = []
    bounds = sorted({c for c in cuts if 0 < c < len(data)} | {0, len(data)})
    resume, resume_ts = start, last_timestamp
    for a, b in pairwise(bounds):
        block = parser.feed(data[a:b], start + a)
        out += records(block)
        assert block.resume_offset >= resume  # the checkpoint never goes back
        resume, resume_ts = block.resume_offset, block.resume_timestamp
    return out, resume, resume_ts


FORMATS = [LogFormat.CRI, LogFormat.DOCKER]


@pytest.mark.parametrize("fmt", FORMATS)
@settings(max_examples=100, deadline=None)
@given(data=st.data(), cuts=st.lists(st.integers(0, 4000), max_size=8), multiline=st.booleans())
def test_any_cutting_gives_the_same_records(fmt: LogFormat, data: st.DataObject, cuts: list[int],
                                            multiline: bool) -> None:
    content = data.draw(files(fmt))
    whole, resume_whole, _ = parse(content, [], multiline=multiline, fmt=fmt)
    pieces, resume_pieces, _ = parse(content, cuts, multiline=multiline, fmt=fmt)
    assert pieces == whole and resume_pieces == resume_whole
    # Line by line, as a file growing one write at a time is read.
    lines = [i + 1 for i, byte in enumerate(content) if byte == 0x0A]
    assert parse(content, lines, multiline=multiline, fmt=fmt)[0] == whole
    # A line without a valid time has the empty timestamp, never a neighbour's or 1970.
    assert all(t == b"" or is_rfc3339(t) for t, *_ in whole)  # type: ignore[misc]


@pytest.mark.parametrize("fmt", FORMATS)
@settings(max_examples=100, deadline=None)
@given(data=st.data(), cut=st.integers(0, 4000), multiline=st.booleans())
def test_restarting_at_the_checkpoint_neither_repeats_nor_loses(fmt: LogFormat, data: st.DataObject, cut: int,
                                                                multiline: bool) -> None:
    # Runs stay under max_merged_bytes here: a run cut at that limit has its remainder dropped by
    # parser state that a restart does not have (test_logs_parse_cri covers that case).
    content = data.draw(files(fmt))
    big = 1 << 16
    whole, _, _ = parse(content, [], multiline=multiline, max_merged=big, fmt=fmt)
    head, resume, resume_ts = parse(content[:cut], [], multiline=multiline, max_merged=big, fmt=fmt)
    assert content[:resume].endswith(b"\n") or resume == 0  # never inside a line
    rest, _, _ = parse(content[resume:], [], multiline=multiline, start=resume, max_merged=big,
                       last_timestamp=resume_ts, fmt=fmt)
    assert head + rest == whole
