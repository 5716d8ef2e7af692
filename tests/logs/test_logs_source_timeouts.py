"""The logs source's two timers, driven through the real LogsSource → Pipeline → Spool → Delivery
→ FileSink: a pending multi-line record is flushed after ``multiline_timeout_s`` without new data,
and a rotated or deleted file not read to its end within ``drain_timeout_s`` is let go with its
unread lines counted as dropped (reason ``drain_timeout``) and logged."""

from __future__ import annotations

import asyncio
import logging
import time
import uuid
from pathlib import Path
from typing import Any

import pytest
from logs_source_support import Rig, eventually, make_settings, read_archive, spool_has_entries

CRI_PREFIX = b"2026-01-01T00:00:00.000000001Z stdout F "
MULTILINE_TIMEOUT_S = 0.3
DRAIN_TIMEOUT_S = 0.3
CHUNK = 4096


def container_log(tmp: Path, pod: str = "web-0", container: str = "app") -> Path:
    """``<root>/pods/default_<pod>_<uid>/<container>/0.log``, created empty."""
    path = tmp / "pods" / f"default_{pod}_{uuid.uuid4()}" / container / "0.log"
    path.parent.mkdir(parents=True)
    path.touch()
    return path


def append_cri(path: Path, *messages: str) -> None:
    """Append full (``F``) CRI lines, as the runtime does: one write per line."""
    with path.open("ab") as f:
        for message in messages:
            f.write(CRI_PREFIX + message.encode() + b"\n")
            f.flush()


def archived_messages(tmp: Path) -> list[str]:
    return [str(r["message"]) for r in read_archive(tmp / "out")]


async def wait_for_messages(tmp: Path, count: int, within: float = 5.0) -> list[str]:
    await eventually(lambda: len(archived_messages(tmp)) >= count, within)
    return archived_messages(tmp)


# -- multi-line timeout flush ----------------------------------------------------------------


async def test_a_pending_multiline_record_is_flushed_after_the_timeout_without_new_data(tmp_path: Path) -> None:
    settings = make_settings(tmp_path, multiline=[{"start_pattern": r"\S"}],
                             multiline_timeout_s=MULTILINE_TIMEOUT_S)
    log_file = container_log(tmp_path)
    rig = Rig(tmp_path, settings)
    await rig.start()
    try:
        written_at = time.monotonic()
        # A start line and its continuations, and no further start line: only the timer ends it.
        append_cri(log_file, "Exception in thread main", "\tat app.Main.run(Main.java:10)",
                   "\tat app.Main.main(Main.java:3)")
        first = await wait_for_messages(tmp_path, 1)
        waited = time.monotonic() - written_at
        # Lines arriving after the flush are not glued onto the record already emitted.
        append_cri(log_file, "\tat late.Frame(Late.java:1)", "Second error", "\tat app.Other.go(Other.java:7)")
        everything = await wait_for_messages(tmp_path, 3)
    finally:
        await rig.stop()
    assert first == ["Exception in thread main\n\tat app.Main.run(Main.java:10)\n\tat app.Main.main(Main.java:3)"]
    assert waited >= MULTILINE_TIMEOUT_S  # held back until the timeout, not emitted line by line
    assert everything == [first[0], "\tat late.Frame(Late.java:1)", "Second error\n\tat app.Other.go(Other.java:7)"]


async def test_the_timeout_restarts_with_each_continuation_line(tmp_path: Path) -> None:
    timeout = 1.0  # a wide margin over the 0.1 s gaps below, so a loaded machine cannot split the record
    settings = make_settings(tmp_path, multiline=[{"start_pattern": r"\S", "containers": ["app"]}],
                             multiline_timeout_s=timeout)
    log_file = container_log(tmp_path)
    rig = Rig(tmp_path, settings)
    await rig.start()
    try:
        append_cri(log_file, "Traceback (most recent call last):")
        # Continuations spaced at under the timeout: the record must stay open across all of them.
        for frame in range(4):
            await asyncio.sleep(0.1)
            append_cri(log_file, f'  File "app.py", line {frame}')
        messages = await wait_for_messages(tmp_path, 1)
        await asyncio.sleep(0.3)  # nothing else follows the flushed record
        messages = archived_messages(tmp_path)
    finally:
        await rig.stop()
    assert messages == ["Traceback (most recent call last):\n" +
                        "\n".join(f'  File "app.py", line {frame}' for frame in range(4))]


# -- drain timeout ---------------------------------------------------------------------------


def fixed_line(index: int, size: int) -> str:
    """A message that makes the whole CRI line ``size`` bytes (newline included)."""
    return f"line-{index:06d}-".ljust(size - len(CRI_PREFIX) - 1, "x")


def let_file_go(log_file: Path, how: str) -> None:
    if how == "deleted":
        log_file.unlink()
    else:  # kubelet's rotation: rename, the runtime reopens the path
        log_file.rename(log_file.with_name("0.log.20260101-000000"))


@pytest.mark.parametrize("how", ["deleted", "rotated"])
@pytest.mark.parametrize("line_bytes", [64, 100], ids=["reads-end-on-line", "reads-end-mid-line"])
async def test_a_file_not_drained_in_time_is_let_go_and_its_unread_lines_counted(
        tmp_path: Path, caplog: pytest.LogCaptureFixture, how: str, line_bytes: int) -> None:
    total = 1000
    log_file = container_log(tmp_path)
    append_cri(log_file, *(fixed_line(i, line_bytes) for i in range(total)))
    settings = make_settings(tmp_path, batch=2, read_chunk_bytes=CHUNK, drain_timeout_s=DRAIN_TIMEOUT_S,
                             sweep_interval_s=0.1)
    # A full spool and no delivery: the source pauses after a few chunks, far from the file's end.
    rig = Rig(tmp_path, settings, spool_max_bytes=1, deliver=False)
    caplog.set_level(logging.WARNING, logger="kubestream.sources.logs.source")
    source = await rig.start()
    try:
        await eventually(lambda: spool_has_entries(rig))
        let_file_go(log_file, how)
        await eventually(lambda: all(t.expired for t in source.files.tailers()) and bool(source.files.tailers()))
        assert rig.dropped("drain_timeout") == 0  # counted when the reader lets go, not before
        rig.start_delivery()
        await eventually(lambda: not source.files.tailers())
    finally:
        await rig.stop()
    records = read_archive(tmp_path / "out")
    archived = [r["message"] for r in records if not r.get("truncated")]
    read_whole = len(archived)
    assert 0 < read_whole < total // 2
    # What was read is the file's head, in order, once; nothing after the drop point slipped in.
    assert archived == [fixed_line(i, line_bytes) for i in range(read_whole)]
    # Every physical line is either archived whole or counted as dropped: never both, never neither.
    # A line cut by the last read (its head archived, marked truncated) counts as truncated only.
    cut = [r for r in records if r.get("truncated")]
    dropped = rig.dropped("drain_timeout")
    assert read_whole + len(cut) + dropped == total
    assert len(cut) == (1 if CHUNK % line_bytes else 0)
    assert rig.dropped("truncated") == len(cut)
    if cut:  # the head of the line the last read ended in, as far as it was read
        assert fixed_line(read_whole, line_bytes).startswith(cut[0]["message"])
    assert metric_value(rig, "drain_timeout") == dropped
    warnings = [r.getMessage() for r in caplog.records if "dropping" in r.getMessage()]
    assert len(warnings) == 1 and f"dropping {int(dropped)} lines" in warnings[0]


def metric_value(rig: Rig, reason: str) -> Any:
    """The counter itself (not the registry sample) of ``records_dropped{source="logs"}``."""
    return rig.metrics.records_dropped.labels(source="logs", reason=reason)._value.get()
