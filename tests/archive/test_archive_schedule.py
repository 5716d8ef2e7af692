"""Compaction as the events collector's periodic task: runs on a jittered timer, only while
leading, counts its results, and a failing archive is one log line, never an exception out of
the task."""

from __future__ import annotations

import asyncio
import logging
from pathlib import Path

import pytest
from archive_support import assert_reader_sees_the_ledger, build_archive, file_settings

from kubestream.archive.compact import CompactionReport
from kubestream.archive.schedule import JITTER, PeriodicCompaction
from kubestream.archive.store import open_archive
from kubestream.config.settings import Settings
from kubestream.errors import SinkUnreachableError
from kubestream.obs.metrics import Metrics


def _value(metrics: Metrics, name: str, **labels: str) -> float:
    return metrics.registry.get_sample_value(name, labels) or 0.0


class _Ticks:
    """An injected sleep: records each wait and stops the loop after ``rounds`` of them."""

    def __init__(self, rounds: int) -> None:
        self.waits: list[float] = []
        self._rounds = rounds

    async def __call__(self, seconds: float) -> None:
        if len(self.waits) == self._rounds:
            raise asyncio.CancelledError
        self.waits.append(seconds)


def _settings(tmp_path: Path, root: Path) -> Settings:
    return file_settings(root, tmp_path / "state", interval_s=600)


async def test_each_run_compacts_the_archive_and_counts_it(tmp_path: Path) -> None:
    root = tmp_path / "archive"
    ledger = build_archive(root, hours=1, objects_per_hour=4, records=5)
    before = sum(1 for p in root.rglob("*") if p.is_file())
    metrics = Metrics()
    ticks = _Ticks(rounds=2)
    task = PeriodicCompaction(_settings(tmp_path, root), metrics=metrics, sleep=ticks, rng=lambda: 0.5)
    with pytest.raises(asyncio.CancelledError):
        await task.run()
    assert ticks.waits == [600.0, 600.0] and task.runs == 2
    assert _value(metrics, "kubestream_compaction_runs_total", result="ok") == 2
    assert _value(metrics, "kubestream_compacted_objects_total") == before  # all of it, by the first run
    assert _value(metrics, "kubestream_compaction_last_success_timestamp_seconds") > 0
    store = open_archive(_settings(tmp_path, root))
    try:
        await assert_reader_sees_the_ledger(store, ledger)
    finally:
        await store.close()


def test_the_wait_is_jittered_within_ten_percent(tmp_path: Path) -> None:
    settings = _settings(tmp_path, tmp_path / "archive")
    low = PeriodicCompaction(settings, rng=lambda: 0.0).next_wait()
    high = PeriodicCompaction(settings, rng=lambda: 0.999999).next_wait()
    assert low == pytest.approx(600 * (1 - JITTER)) and high == pytest.approx(600 * (1 + JITTER), rel=1e-5)


async def test_a_follower_never_compacts(tmp_path: Path) -> None:
    calls: list[Settings] = []

    async def compact(settings: Settings) -> CompactionReport:
        calls.append(settings)
        return CompactionReport()

    task = PeriodicCompaction(_settings(tmp_path, tmp_path / "archive"), is_leader=lambda: False,
                              compact=compact, sleep=_Ticks(rounds=3))
    with pytest.raises(asyncio.CancelledError):
        await task.run()
    assert calls == [] and task.runs == 0


@pytest.mark.parametrize("error", [SinkUnreachableError("connection refused"), ValueError("a bug")])
async def test_a_failing_run_is_one_line_and_the_timer_goes_on(tmp_path: Path, error: Exception,
                                                               caplog: pytest.LogCaptureFixture) -> None:
    async def compact(settings: Settings) -> CompactionReport:
        raise error

    metrics = Metrics()
    task = PeriodicCompaction(_settings(tmp_path, tmp_path / "archive"), metrics=metrics, compact=compact,
                              sleep=_Ticks(rounds=2))
    with caplog.at_level(logging.WARNING, logger="kubestream.compact"), pytest.raises(asyncio.CancelledError):
        await task.run()
    assert task.runs == 2 and _value(metrics, "kubestream_compaction_runs_total", result="failed") == 2
    lines = [r for r in caplog.records if r.name == "kubestream.compact"]
    assert len(lines) == 2 and all(str(error) in r.getMessage() and r.exc_info is None for r in lines)


def test_the_task_needs_an_interval(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="interval_s"):
        PeriodicCompaction(file_settings(tmp_path / "a", tmp_path / "s"))


def test_the_interval_is_bounded_below() -> None:
    with pytest.raises(ValueError, match="interval_s"):
        Settings.model_validate({"compaction": {"interval_s": 1}})
