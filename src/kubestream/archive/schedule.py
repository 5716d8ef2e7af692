"""Compaction as a periodic task of the events collector (``compaction.interval_s``).

The same work as ``kubestream compact``, on a timer: every ``interval_s`` times a factor drawn in
[0.9, 1.1] (replicas started together do not list the bucket in step) the archive is opened, every
closed partition compacted, and the store closed again. A compaction is safe to interrupt at any
point (see ``archive.compact``), so shutdown simply cancels the task, and a failure (an
unreachable archive, a refused write) is one log line and a counter: the next run starts from
what the archive holds, like the command run again. It never stops the collector.

Only one compactor should run at a time per archive: with leader election the task runs only while
this replica leads (``is_leader``), and a run is never started by a follower.
"""

from __future__ import annotations

import asyncio
import logging
import random
import time
from collections.abc import Awaitable, Callable

from kubestream.archive.compact import CompactionReport, compact_archive
from kubestream.archive.store import open_archive
from kubestream.config.settings import Settings
from kubestream.errors import KubestreamError
from kubestream.obs.metrics import Metrics

log = logging.getLogger("kubestream.compact")

JITTER = 0.1
"""Each wait is ``interval_s`` times a factor drawn in [1 - JITTER, 1 + JITTER]."""

Compactor = Callable[[Settings], Awaitable[CompactionReport]]


async def compact_once(settings: Settings) -> CompactionReport:
    """One compaction of the archive of ``settings`` (the store is opened and closed here)."""
    store = open_archive(settings)
    try:
        return await compact_archive(store, settings)
    finally:
        await store.close()


class PeriodicCompaction:
    """Runs ``compact`` every ``compaction.interval_s`` (with jitter) while ``is_leader()``."""

    def __init__(self, settings: Settings, *, metrics: Metrics | None = None,
                 is_leader: Callable[[], bool] = lambda: True, compact: Compactor = compact_once,
                 rng: Callable[[], float] = random.random,
                 sleep: Callable[[float], Awaitable[None]] = asyncio.sleep) -> None:
        if settings.compaction.interval_s is None:
            raise ValueError("compaction.interval_s is not set")
        self._settings = settings
        self._interval = settings.compaction.interval_s
        self._metrics = metrics
        self._is_leader = is_leader
        self._compact = compact
        self._rng = rng
        self._sleep = sleep
        self.runs = 0
        """Compactions started (tests, logs)."""

    def next_wait(self) -> float:
        """Seconds until the next run."""
        return self._interval * (1 - JITTER + 2 * JITTER * self._rng())

    async def run(self) -> None:
        """Compact on the timer until cancelled; never raises but ``CancelledError``."""
        while True:
            await self._sleep(self.next_wait())
            if self._is_leader():
                await self.run_once()

    async def run_once(self) -> CompactionReport | None:
        """One run: its report, or None when it failed (logged and counted)."""
        self.runs += 1
        started = time.monotonic()
        try:
            report = await self._compact(self._settings)
        except (KubestreamError, OSError) as exc:
            # The archive's own errors (unreachable, refused, disk): the next run starts again
            # from what the archive holds.
            log.warning("periodic compaction failed after %.1f s: %s; next run in about %.0f s",
                        time.monotonic() - started, exc, self._interval)
            self._count("failed")
            return None
        except Exception as exc:
            # Anything else (Arrow refusing a table, a bug) is still no reason to stop collecting
            # events: a compaction interrupted anywhere leaves the archive readable. Logged with
            # its class so it can be reported.
            log.error("periodic compaction failed after %.1f s with %s: %s; next run in about %.0f s",
                      time.monotonic() - started, type(exc).__name__, exc, self._interval)
            self._count("failed")
            return None
        self._count("ok")
        if self._metrics is not None:
            self._metrics.compacted_objects.inc(report.sources)
            self._metrics.compaction_last_success.set(time.time())
        if report.sources or report.unreadable:
            log.info("periodic compaction: %d objects into %d files in %.1f s%s", report.sources, report.parts,
                     report.seconds, f"; {len(report.unreadable)} unreadable objects left" if report.unreadable else "")
        return report

    def _count(self, result: str) -> None:
        if self._metrics is not None:
            self._metrics.compaction_runs.labels(result=result).inc()
