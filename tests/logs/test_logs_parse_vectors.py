"""Peers' test vectors (kubelet, containerd, docker json-file, Fluent Bit, Vector) through the real
parser: the same records whatever the input and however it was read (issue 9)."""

from __future__ import annotations

from itertools import pairwise

import orjson
import pytest
from prometheus_client import CollectorRegistry

from kubestream.config.settings import LogsSettings
from kubestream.model import ParsedBlock
from kubestream.obs.metrics import Metrics
from kubestream.sources.logs.detect import detect_format
from kubestream.sources.logs.formats import LogFormat
from kubestream.sources.logs.multiline import StartPatternError, compile_start_pattern
from kubestream.sources.logs.parser import FileParser
from kubestream.util.rfc3339 import all_rfc3339, is_rfc3339, rfc3339_to_epoch_ns

Record = tuple[bytes, bytes, bytes, int, bool]


def records(block: ParsedBlock) -> list[Record]:
    truncated = set(block.truncated_rows)
    return [(t, s, m, o, i in truncated) for i, (t, s, m, o) in
            enumerate(zip(block.timestamps, block.streams, block.messages, block.offsets, strict=True))]


def read(data: bytes, fmt: LogFormat, cuts: list[int] | None = None, *, finish: bool = True,
         settings: LogsSettings | None = None, metrics: Metrics | None = None) -> list[Record]:
    """Records of ``data`` fed in the reads ``cuts`` makes (None: one byte at a time)."""
    parser = FileParser(fmt, settings or LogsSettings(), metrics=metrics)
    bounds = sorted({0, len(data), *(range(len(data)) if cuts is None else cuts)})
    out: list[Record] = []
    for a, b in pairwise(bounds):
        out += records(parser.feed(data[a:b], a))
    if finish:
        out += records(parser.finish())
    return out


def dropped(metrics: Metrics, reason: str) -> float:
    return metrics.registry.get_sample_value(
        "kubestream_records_dropped_total", {"source": "logs", "reason": reason}) or 0.0


def docker(log: str, stream: str = "stdout", time: str = "2019-01-01T11:11:11.111111111Z") -> bytes:
    return orjson.dumps({"log": log, "stream": stream, "time": time}) + b"\n"


# -- item 8: timestamps -------------------------------------------------------------------------

VALID = [  # (value, Unix ns; checked against datetime.fromisoformat)
    (b"2016-10-06T00:17:09.669794202Z", 1475713029669794202),       # kubelet's CRI vectors (RFC3339Nano)
    (b"2016-10-20T18:39:20.57606443+08:00", 1476959960576064430),   # trailing zeros trimmed, an offset
    (b"2019-01-01T11:11:11Z", 1546341071000000000),                 # no fraction (a whole second)
    (b"2019-01-01t11:11:11.1z", 1546341071100000000),               # RFC 3339 allows lower-case t and z
    (b"2024-02-29T23:59:59.123456789-05:30", 1709270999123456789),  # a leap day, 9 digits, negative offset
    (b"2016-12-31T23:59:60Z", 1483228800000000000),                 # a leap second: POSIX time has none
]
INVALID = [
    b"garbage", b"", b"2019-01-01 11:11:11Z", b"2019-01-01T11:11:11", b"2019-01-01T11:11:11.Z",
    b"2019-01-01T11:11:11.1234567890Z", b"2023-02-29T00:00:00Z", b"2019-04-31T00:00:00Z",
    b"2019-13-01T00:00:00Z", b"2019-01-01T24:00:00Z", b"2019-01-01T11:60:00Z", b"2019-01-01T11:11:11+0800",
    b"2019-01-01T11:11:11+24:00", b"19-01-01T11:11:11Z", b"2019-01-01T11:11:11Z ",
]


@pytest.mark.parametrize(("value", "ns"), VALID)
def test_rfc3339_in_all_its_forms_is_valid_and_converts(value: bytes, ns: int) -> None:
    assert is_rfc3339(value) and all_rfc3339([value, VALID[0][0]])
    assert rfc3339_to_epoch_ns(value) == ns


@pytest.mark.parametrize("value", INVALID)
def test_anything_else_is_not_a_valid_time(value: bytes) -> None:
    assert not is_rfc3339(value) and rfc3339_to_epoch_ns(value) is None
    assert not all_rfc3339([VALID[0][0], value])


@pytest.mark.parametrize("line", [b"garbage stdout F x", b"2019-13-01T00:00:00Z stdout F x",
                                  b"2019-01-01T11:11:11 stderr F x"])
def test_a_cri_line_without_a_valid_time_is_malformed_however_it_is_read(line: bytes) -> None:
    good = b"2019-01-01T11:11:11Z stdout F ok\n"
    data = good + line + b"\n" + good
    whole = read(data, LogFormat.CRI, [])
    assert whole[1] == (b"", b"stdout", line, len(good), False)  # the empty timestamp, the line kept whole
    assert read(data, LogFormat.CRI) == whole  # byte by byte
    assert read(data, LogFormat.CRI, [len(good), len(good) + len(line) + 1]) == whole  # line by line


def test_a_docker_line_with_an_invalid_time_keeps_its_message_and_gets_no_timestamp() -> None:
    data = docker("a\n") + docker("b\n", "stderr", "yesterday") + docker("c\n", time="2019-02-29T00:00:00Z")
    for cuts in ([], None):
        got = read(data, LogFormat.DOCKER, cuts)
        assert [(t, s, m) for t, s, m, _, _ in got] == [
            (b"2019-01-01T11:11:11.111111111Z", b"stdout", b"a"), (b"", b"stderr", b"b"), (b"", b"stdout", b"c")]


# -- item 9: CRI tags with extras ---------------------------------------------------------------


def test_cri_tags_with_extras_are_partial_or_full_by_their_first_tag() -> None:
    ts = b"2016-10-20T18:39:20.57606443+08:00"
    data = (ts + b" stdout P:TAG1:TAG2 cri log \n" + ts + b" stdout F:x-tag content\n"
            + ts + b" stderr F:TAG1 second\n" + ts + b" stderr X:TAG1 not a tag\n")
    for cuts in ([], None):
        got = read(data, LogFormat.CRI, cuts)
        assert [(t, s, m) for t, s, m, _, _ in got] == [
            (ts, b"stdout", b"cri log content"), (ts, b"stderr", b"second"),
            (b"", b"stdout", ts + b" stderr X:TAG1 not a tag")]


# -- item 10: a malformed line inside an open P run ---------------------------------------------


@pytest.mark.parametrize("fmt", [LogFormat.CRI, LogFormat.DOCKER])
def test_a_malformed_line_ends_an_open_run_and_is_a_counted_record_of_its_own(fmt: LogFormat) -> None:
    if fmt == LogFormat.CRI:
        ts = b"2019-01-01T11:11:11Z"
        data = ts + b" stdout P part one \n" + b"garbage\n" + ts + b" stdout F end\n"
    else:
        data = docker("part one ") + b"garbage\n" + docker("end\n")
    metrics = Metrics(CollectorRegistry())
    got = read(data, fmt, [], metrics=metrics)
    assert [(s, m, trunc) for _, s, m, _, trunc in got] == [
        (b"stdout", b"part one ", False), (b"stdout", b"garbage", False), (b"stdout", b"end", False)]
    assert got[1][0] == b"" and dropped(metrics, "malformed") == 1
    assert read(data, fmt) == got


# -- item 11: the last partial of an exited container --------------------------------------------


@pytest.mark.parametrize("fmt", [LogFormat.CRI, LogFormat.DOCKER])
def test_an_unfinished_partial_is_emitted_as_written_when_it_expires(fmt: LogFormat) -> None:
    if fmt == LogFormat.CRI:  # containerd: the last write of an exited container is a P
        first, last = b"2019-01-01T11:11:11Z stdout F before\n", b"2019-01-01T11:11:12Z stdout P the last words\n"
        other = b"2019-01-01T11:11:13Z stderr F held back\n"
    else:  # docker: a log without "\n"
        first, last, other = docker("before\n"), docker("the last words"), docker("held back\n", "stderr")
    data = first + last + other
    parser = FileParser(fmt, LogsSettings())
    block = parser.feed(data, 0)
    assert block.messages == [b"before"] and parser.has_partial  # the P holds everything after it back
    expired = parser.expire_partials()
    assert expired.messages == [b"the last words", b"held back"] and expired.truncated == 0
    assert expired.resume_offset == len(data) and not parser.has_partial
    assert parser.expire_partials().count == 0 and parser.finish().count == 0


# -- item 13: multi-line ------------------------------------------------------------------------


def test_lines_before_the_first_start_line_are_records_of_their_own() -> None:
    ts = b"2019-01-01T11:11:11Z stdout F "
    lines = [b"banner one", b"  banner two", b"Exception: boom", b"\tat a.b(C.java:1)", b"Exception: next"]
    data = b"".join(ts + line + b"\n" for line in lines)
    for cuts in ([], None):
        parser = FileParser(LogFormat.CRI, LogsSettings(), multiline=compile_start_pattern(r"Exception"))
        bounds = sorted({0, len(data), *(range(len(data)) if cuts is None else cuts)})
        messages = [m for a, b in pairwise(bounds) for m in parser.feed(data[a:b], a).messages]
        messages += parser.finish().messages
        assert messages == [b"banner one", b"  banner two", b"Exception: boom\n\tat a.b(C.java:1)",
                            b"Exception: next"]


# -- item 14: format detection ------------------------------------------------------------------


def test_a_docker_file_starting_mid_line_is_docker() -> None:
    data = b'ne cut","stream":"stdout","time":"2019-01-01T11:11:11Z"}\n' + docker("whole\n") + docker("x\n")
    assert detect_format(data[:256]) is LogFormat.DOCKER
    got = read(data, LogFormat.DOCKER, [])
    assert [m for _, _, m, _, _ in got] == [data.split(b"\n")[0], b"whole", b"x"]


def test_the_format_is_re_decided_when_the_first_lines_prove_nothing() -> None:
    # The head (256 bytes) holds only a cut first line: read as CRI, then the docker lines prove docker.
    data = b"x" * 300 + b'","stream":"stdout","time":"2019-01-01T11:11:11Z"}\n' + docker("<b>\n") + docker("y\n")
    assert detect_format(data[:256]) is LogFormat.CRI
    for cuts in ([], None, [10, 400]):
        got = read(data, LogFormat.CRI, cuts)
        assert [m for _, _, m, _, _ in got] == [data.split(b"\n")[0], b"<b>", b"y"]
        assert got[1][0] == b"2019-01-01T11:11:11.111111111Z"
    # And the other way round: a CRI file whose first lines are garbage, read with a docker hint.
    cri = b"junk\n" + b"2019-01-01T11:11:11Z stdout F real\n"
    assert [m for _, _, m, _, _ in read(cri, LogFormat.DOCKER, [])] == [b"junk", b"real"]


def test_more_lines_outvote_one() -> None:
    cri = b"2019-01-01T11:11:11Z stdout F "
    head = docker("json as a message\n")[:-1] + b"\n" + cri + b"a\n" + cri + b"b\n"
    assert detect_format(head) is LogFormat.CRI


# -- item 15: an oversize docker line -----------------------------------------------------------


@pytest.mark.parametrize("log", ["L" * 5000 + "\n", "\u00e9\\\"" * 2000 + "\n", "p" * 5000])
def test_an_oversize_docker_line_keeps_its_stream_and_time(log: str) -> None:
    settings = LogsSettings(max_line_bytes=1024)
    data = docker(log, "stderr", "2019-01-01T11:11:11.5Z") + docker("next\n")
    metrics = Metrics(CollectorRegistry())
    whole = read(data, LogFormat.DOCKER, [], settings=settings, metrics=metrics)
    assert len(whole) == 2
    ts, stream, message, offset, truncated = whole[0]
    assert (ts, stream, offset, truncated) == (b"2019-01-01T11:11:11.5Z", b"stderr", 0, True)
    assert log.startswith(message.decode()) and 600 < len(message) <= 1024  # decoded: escapes shrink
    assert whole[1][:3] == (b"2019-01-01T11:11:11.111111111Z", b"stdout", b"next")
    assert dropped(metrics, "truncated") == 1 and dropped(metrics, "malformed") == 0
    for cuts in (list(range(0, len(data), 300)), list(range(0, len(data), 7))):
        assert read(data, LogFormat.DOCKER, cuts, settings=settings) == whole


def test_an_oversize_docker_split_still_merges_with_its_rest() -> None:
    # A 16 KiB docker split (no "\n") cut at max_line_bytes is a P: its F part follows.
    settings = LogsSettings(max_line_bytes=1024)
    data = docker("p" * 3000, "stderr") + docker(" end\n", "stderr")
    got = read(data, LogFormat.DOCKER, [], settings=settings)
    assert len(got) == 1 and got[0][1] == b"stderr" and got[0][2].endswith(b"p end") and got[0][4]


# -- item 3: start patterns on RE2 --------------------------------------------------------------


@pytest.mark.parametrize("pattern", [r"(a)\1", r"(?=x)y", r"(?<!a)b", r"\Z", "(unclosed", "x" * 5000])
def test_patterns_re2_cannot_compile_are_refused_with_a_one_line_reason(pattern: str) -> None:
    with pytest.raises(StartPatternError) as caught:
        compile_start_pattern(pattern)
    assert isinstance(caught.value, ValueError)
    assert str(caught.value) and "\n" not in str(caught.value)


def test_a_catastrophic_pattern_runs_in_linear_time_and_matches_at_the_start() -> None:
    pattern = compile_start_pattern(r"(a+)+$")
    assert pattern.match(b"a" * 34 + b"!") is None  # backtracking engines take 2^34 steps here
    assert pattern.match(b"a" * 100_000) is not None
    assert compile_start_pattern(r"\d{4}").match(b"x 2019") is None  # match, not search
    assert compile_start_pattern(r"é").match("é!".encode()) is not None  # UTF-8 text


# -- the whole-block timestamp check: fixed-width fast path and its edges ----------------------

_FIXED = b"2026-03-31T23:59:59.123456789Z"
_EDGES = [
    (b"2026-03-31T23:59:60.123456789Z", True),   # leap second: left to the exact check
    (b"2026-03-31T18:29:59.123456789+05:30", True),
    (b"2026-03-31t23:59:59.123456789Z", True),
    (b"2026-03-31T23:59:59.123456789z", True),
    (b"2026-03-31T23:59:59Z", True),             # no fraction
    (b"2026-03-31T23:59:59.12345678Z", True),    # RFC3339Nano with a trailing zero trimmed
    (b"2026-03-31T23:59:59.1234567890Z", False),  # 10 fraction digits
    (b"2026-13-31T23:59:59.123456789Z", False),  # month 13, same width
    (b"2026-04-31T23:59:59.123456789Z", False),  # April 31, same width
    (b"2025-02-29T23:59:59.123456789Z", False),
    (b"2024-02-29T23:59:59.123456789Z", True),
    (b"2026-03-31T24:59:59.123456789Z", False),
    (b"2026-03-31T23:60:59.123456789Z", False),
    (b"2026-03-31T23:59:61.123456789Z", False),
    ("2026-03-31T23:59:59.12345678\u0669Z".encode(), False),  # non-ASCII digit (Arabic-Indic nine)
    ("2026-03-31T23:59:5\u0669.123456789Z".encode()[:30], False),
    (b"2026-03-31T23:59:59.123456789Z\n", False),
    (b"2026-03-31T23:59:59.123456789", False),
]


@pytest.mark.parametrize(("value", "valid"), _EDGES)
@pytest.mark.parametrize("where", ["alone", "first", "middle", "last"])
def test_the_block_check_agrees_with_the_exact_check_wherever_the_stamp_is(value: bytes, valid: bool, where: str) -> None:
    assert is_rfc3339(value) is valid
    block = {"alone": [value], "first": [value] + [_FIXED] * 99, "middle": [_FIXED] * 50 + [value] + [_FIXED] * 49,
             "last": [_FIXED] * 99 + [value]}[where]
    assert all_rfc3339(block) is valid
    if b"\n" not in value:
        assert all_rfc3339(block, newline_free=True) is valid


def test_a_fixed_width_block_spanning_hours_days_and_a_leap_day_is_checked_exactly() -> None:
    stamps = [b"2024-02-28T23:59:59.999999999Z", b"2024-02-29T00:00:00.000000001Z", b"2024-03-01T00:00:00.000000000Z"]
    assert all_rfc3339(stamps * 10)
    assert not all_rfc3339(stamps * 10 + [b"2023-02-29T00:00:00.000000000Z"])
    assert all_rfc3339([b"2026-01-01T00:00:00.000000000Z"] * 3 + [b"2026-01-01T23:00:00.000000000Z"])


def test_a_cri_block_whose_only_bad_line_is_the_last_keeps_every_other_line() -> None:
    good = b"".join(b"2026-03-31T23:59:%02d.123456789Z stdout F line %d\n" % (i % 60, i) for i in range(200))
    bad = b"2026-13-31T23:59:59.123456789Z stdout F bad\n"
    for cuts in ([], [len(good)], [len(good) + 10]):  # one read; the bad line in a read of its own; cut in it
        out = read(good + bad, LogFormat.CRI, cuts)
        assert len(out) == 201
        assert [r[0] for r in out[:200]] == [b"2026-03-31T23:59:%02d.123456789Z" % (i % 60) for i in range(200)]
        assert [r[2] for r in out[:200]] == [b"line %d" % i for i in range(200)]
        assert out[200][:3] == (b"", b"stdout", bad[:-1])


def test_a_docker_block_whose_only_bad_time_is_the_last_keeps_every_other_time() -> None:
    good = b"".join(docker(f"line {i}\n", time=_FIXED.decode()) for i in range(100))
    out = read(good + docker("bad\n", time="2026-03-31T23:59:59.123456789z\n"), LogFormat.DOCKER, [])
    assert len(out) == 101
    assert [r[0] for r in out[:100]] == [_FIXED] * 100
    assert out[100][:3] == (b"", b"stdout", b"bad")
