"""CRI and docker parsing: P/F merges, truncation, invalid UTF-8, malformed lines, checkpoints."""

from __future__ import annotations

import orjson
import pytest
from prometheus_client import CollectorRegistry

from kubestream.config.settings import LogsSettings
from kubestream.model import ParsedBlock
from kubestream.obs.metrics import Metrics
from kubestream.sources.logs.detect import detect_format
from kubestream.sources.logs.formats import LogFormat
from kubestream.sources.logs.parser import FileParser, NonContiguousReadError

TS = b"2026-01-01T00:00:0%d.5Z"


def cri(i: int, stream: str, tag: str, message: bytes) -> bytes:
    return TS % (i % 10) + b" " + stream.encode() + b" " + tag.encode() + b" " + message + b"\n"


def rows(block: ParsedBlock) -> list[tuple[bytes, bytes, int]]:
    return list(zip(block.streams, block.messages, block.offsets, strict=True))


def dropped(metrics: Metrics, reason: str) -> float:
    value = metrics.registry.get_sample_value(
        "kubestream_records_dropped_total", {"source": "logs", "reason": reason})
    return value or 0.0


def test_detects_cri_and_docker_and_waits_for_more() -> None:
    assert detect_format(cri(1, "stdout", "F", b"hi")) is LogFormat.CRI
    assert detect_format(b'{"log":"hi\\n","stream":"stdout","time":"2026-01-01T00:00:00Z"}\n') is LogFormat.DOCKER
    assert detect_format(b"2026-01-01T00:0") is None
    assert detect_format(b"") is None
    assert detect_format(b"plain text from somewhere\n") is LogFormat.CRI  # read as malformed lines


def test_full_lines_keep_offsets_and_the_checkpoint_is_after_the_last_newline() -> None:
    data = cri(1, "stdout", "F", b"one") + cri(2, "stderr", "F", b"two") + cri(3, "stdout", "F", b"thr")
    parser = FileParser(LogFormat.CRI, LogsSettings())
    block = parser.feed(data[:-5], 100)
    first_two = len(cri(1, "stdout", "F", b"one")) + len(cri(2, "stderr", "F", b"two"))
    assert rows(block) == [(b"stdout", b"one", 100), (b"stderr", b"two", 100 + len(cri(1, "stdout", "F", b"one")))]
    assert block.timestamps == [TS % 1, TS % 2]
    assert block.resume_offset == 100 + first_two
    block = parser.feed(data[-5:], 100 + len(data) - 5)
    assert rows(block) == [(b"stdout", b"thr", 100 + first_two)] and block.resume_offset == 100 + len(data)


def test_partial_lines_merge_per_stream_and_the_checkpoint_waits_for_the_f() -> None:
    data = (cri(1, "stdout", "P", b"ab") + cri(2, "stderr", "F", b"err") + cri(3, "stdout", "P", b"cd")
            + cri(4, "stdout", "F", b"ef") + cri(5, "stdout", "F", b"next"))
    cut = data.index(cri(4, "stdout", "F", b"ef"))
    parser = FileParser(LogFormat.CRI, LogsSettings())
    block = parser.feed(data[:cut], 0)
    # The stderr line is complete but after the pending stdout run: it waits, and so does the checkpoint.
    assert block.count == 0 and block.resume_offset == 0
    block = parser.feed(data[cut:], cut)
    assert rows(block) == [(b"stdout", b"abcdef", 0), (b"stderr", b"err", len(cri(1, "stdout", "P", b"ab"))),
                           (b"stdout", b"next", len(data) - len(cri(5, "stdout", "F", b"next")))]
    assert block.timestamps[0] == TS % 1 and block.resume_offset == len(data)


def test_restarting_at_the_checkpoint_repeats_and_loses_nothing() -> None:
    data = b"".join(cri(i, "stdout", "P" if i % 3 == 0 else "F", b"m%d" % i) for i in range(1, 40))
    whole = FileParser(LogFormat.CRI, LogsSettings()).feed(data, 0).messages
    for cut in range(0, len(data), 7):
        first = FileParser(LogFormat.CRI, LogsSettings())
        head = first.feed(data[:cut], 0)
        resume = head.resume_offset
        assert data[:resume].endswith(b"\n") or resume == 0
        rest = FileParser(LogFormat.CRI, LogsSettings()).feed(data[resume:], resume)
        assert head.messages + rest.messages == whole


def test_merged_lines_beyond_max_merged_bytes_are_truncated_and_counted() -> None:
    metrics = Metrics(CollectorRegistry())
    part = b"x" * 700
    data = b"".join(cri(1, "stdout", "P", part) for _ in range(4)) + cri(1, "stdout", "F", b"end") \
        + cri(2, "stdout", "F", b"after")
    parser = FileParser(LogFormat.CRI, LogsSettings(max_merged_bytes=1024), metrics=metrics)
    block = parser.feed(data, 0)
    assert block.messages == [b"x" * 1024, b"after"]
    assert block.truncated == 1 and block.truncated_rows == [0]
    assert dropped(metrics, "truncated") == 1


def test_the_rest_of_a_cut_run_is_dropped_in_later_reads_too() -> None:
    part = b"y" * 800
    data = b"".join(cri(1, "stdout", "P", part) for _ in range(6)) + cri(1, "stdout", "F", b"z") \
        + cri(2, "stdout", "F", b"after")
    parser = FileParser(LogFormat.CRI, LogsSettings(max_merged_bytes=1024))
    out: list[bytes] = []
    step = 500
    for at in range(0, len(data), step):
        out += parser.feed(data[at:at + step], at).messages
    assert out == [b"y" * 1024, b"after"]


def test_a_restart_inside_a_cut_run_archives_its_remainder_as_a_separate_truncated_record() -> None:
    # The documented limit of the discard state: it is not in the checkpoint. No byte is archived
    # twice: the remainder that a run-through would drop comes out as its own record.
    part = b"y" * 800
    data = b"".join(cri(1, "stdout", "P", part) for _ in range(3)) + cri(1, "stdout", "F", b"z")
    cut = 3 * len(cri(1, "stdout", "P", part))
    first = FileParser(LogFormat.CRI, LogsSettings(max_merged_bytes=1024)).feed(data[:cut], 0)
    assert first.messages == [b"y" * 1024] and first.resume_offset == cut
    rest = FileParser(LogFormat.CRI, LogsSettings(max_merged_bytes=1024)).feed(data[cut:], cut)
    assert rest.messages == [b"z"]


def test_physical_lines_beyond_max_line_bytes_are_truncated_and_offsets_stay_right() -> None:
    metrics = Metrics(CollectorRegistry())
    long_line = cri(1, "stdout", "F", b"L" * 5000)
    data = long_line + cri(2, "stderr", "F", b"short")
    parser = FileParser(LogFormat.CRI, LogsSettings(max_line_bytes=1024), metrics=metrics)
    blocks = [parser.feed(data[at:at + 300], at) for at in range(0, len(data), 300)]
    got = [r for b in blocks for r in rows(b)]
    assert len(got) == 2 and got[0][1] == b"L" * (1024 - len(TS % 1) - 10) and got[0][2] == 0
    assert got[1] == (b"stderr", b"short", len(long_line))
    assert sum(b.truncated for b in blocks) == 1 and dropped(metrics, "truncated") == 1
    assert blocks[-1].resume_offset == len(data)


@pytest.mark.parametrize("mode", ["replace", "lossless"])
def test_invalid_utf8_is_replaced_or_kept_losslessly(mode: str) -> None:
    metrics = Metrics(CollectorRegistry())
    bad = b"bin \xff\xfe end"
    data = cri(1, "stdout", "F", b"ok \xc3\xa9") + cri(2, "stdout", "F", bad)
    parser = FileParser(LogFormat.CRI, LogsSettings(invalid_utf8=mode), metrics=metrics)  # type: ignore[arg-type]
    block = parser.feed(data, 0)
    assert block.messages == ["ok é".encode(), "bin \ufffd\ufffd end".encode()]
    assert block.invalid_utf8 == 1
    if mode == "lossless":
        assert block.raw_messages == {1: bad} and dropped(metrics, "invalid_utf8") == 0
    else:
        assert block.raw_messages == {} and dropped(metrics, "invalid_utf8") == 1


def test_malformed_lines_are_kept_whole_and_counted() -> None:
    metrics = Metrics(CollectorRegistry())
    data = cri(1, "stdout", "F", b"good") + b"garbage without framing\n" + cri(2, "stderr", "F", b"again")
    block = FileParser(LogFormat.CRI, LogsSettings(), metrics=metrics).feed(data, 0)
    assert block.messages == [b"good", b"garbage without framing", b"again"]
    # No valid time of its own: the empty timestamp (the encoders stamp ingestion time), never a neighbour's.
    assert block.timestamps[1] == b"" and block.streams[1] == b"stdout"
    assert block.malformed == 1 and dropped(metrics, "malformed") == 1


def test_finish_emits_the_unterminated_tail_and_a_pending_run_as_truncated() -> None:
    data = cri(1, "stdout", "P", b"half") + cri(2, "stderr", "F", b"err") + cri(3, "stderr", "F", b"tail")[:-1]
    parser = FileParser(LogFormat.CRI, LogsSettings())
    assert parser.feed(data, 0).count == 0
    block = parser.finish()
    assert block.messages == [b"half", b"err", b"tail"]
    assert block.truncated_rows == [0, 2] and block.resume_offset == len(data)


def test_an_unterminated_tail_can_finish_a_run_at_finish() -> None:
    data = cri(1, "stdout", "P", b"half") + cri(2, "stdout", "F", b"rest")[:-1]
    parser = FileParser(LogFormat.CRI, LogsSettings())
    assert parser.feed(data, 0).count == 0
    block = parser.finish()
    assert block.messages == [b"halfrest"] and block.truncated_rows == [0]


def test_reads_must_be_contiguous() -> None:
    parser = FileParser(LogFormat.CRI, LogsSettings())
    parser.feed(cri(1, "stdout", "F", b"a"), 0)
    assert parser.next_offset == len(cri(1, "stdout", "F", b"a"))
    with pytest.raises(NonContiguousReadError):
        parser.feed(cri(2, "stdout", "F", b"b"), 5)


def docker(log: str, stream: str = "stdout", time: str = "2026-01-01T00:00:01.25Z") -> bytes:
    return orjson.dumps({"log": log, "stream": stream, "time": time}) + b"\n"


def test_docker_splits_merge_and_text_is_decoded() -> None:
    data = (docker("part one ", "stdout") + docker("err <x> & y\n", "stderr") + docker("part two\n", "stdout")
            + b'{"log":"\\u003cb\\u003e \\u00e9\\n","stream":"stdout","time":"2026-01-01T00:00:02Z"}\n')
    parser = FileParser(LogFormat.DOCKER, LogsSettings())
    block = parser.feed(data, 0)
    assert block.messages == [b"part one part two", b"err <x> & y", "<b> é".encode()]
    assert block.streams == [b"stdout", b"stderr", b"stdout"]
    assert block.timestamps[2] == b"2026-01-01T00:00:02Z" and block.resume_offset == len(data)


def test_docker_malformed_lines_are_kept() -> None:
    data = docker("ok\n") + b"not json at all\n" + b'{"log":"\\ud800 lone\\n","stream":"stderr","time":"t"}\n'
    block = FileParser(LogFormat.DOCKER, LogsSettings()).feed(data, 0)
    assert block.messages == [b"ok", b"not json at all", "\ufffd lone".encode()]
    assert block.malformed == 1 and block.streams == [b"stdout", b"stdout", b"stderr"]
