"""The delivery worker: uploads spool entries strictly in commit order under their fixed keys.

Each entry is retried until the sink acknowledges it, and only then removed from the spool, so
a crash at any point leaves the entry registered and the next start delivers it again under the
same key (the sink overwrites itself). Failures are classified by exception class only:

* ``SinkRetryableError``: wait (exponential backoff with full jitter between
  ``retry_initial_s`` and ``retry_max_s``, at least the sink's ``retry_after``) and retry;
* ``SinkFatalError``: log one line and raise, which stops the agent with a non-zero exit;
* anything else is a bug in a sink; it is logged with its traceback and retried like a
  retryable error, because dropping the batch would lose data.
"""

from __future__ import annotations

import asyncio
import logging
import time

from kubestream.config.settings import SinkSettings
from kubestream.errors import SinkFatalError, SinkRetryableError
from kubestream.obs.metrics import Metrics
from kubestream.pipeline.spool import Spool, SpoolEntry
from kubestream.sinks.base import Sink
from kubestream.util.backoff import Backoff

log = logging.getLogger(__name__)


class Delivery:
    """Moves spool entries to ``sink`` in order; one attempt in flight at a time."""

    def __init__(self, spool: Spool, sink: Sink, *, settings: SinkSettings, metrics: Metrics | None = None) -> None:
        self._spool = spool
        self._sink = sink
        self._metrics = metrics
        # Failures never "age out" here: the counter resets on the next acknowledged upload.
        self._backoff = Backoff(settings.retry_initial_s, settings.retry_max_s, reset_after_s=float("inf"))
        # run() and drain() may overlap during shutdown; one upload of an entry at a time.
        self._attempt_lock = asyncio.Lock()
        self.delivered = 0
        """Entries acknowledged by the sink since start."""

    async def run(self) -> None:
        """Deliver entries as they are committed, forever (until cancelled or a fatal error)."""
        while True:
            await self._spool.wait_pending()
            await self._deliver_pending()

    # The agreed contract takes a timeout (shutdown passes its remaining bound).
    async def drain(self, timeout: float) -> bool:  # noqa: ASYNC109
        """Deliver everything pending within ``timeout`` seconds; True if the spool is empty.

        A fatal sink error is raised, as in ``run``.
        """
        try:
            async with asyncio.timeout(timeout):
                await self._deliver_pending()
        except TimeoutError:
            return False
        return not self._spool.pending()

    async def _deliver_pending(self) -> None:
        while True:
            pending = self._spool.pending()
            if not pending:
                return
            await self._deliver_with_retries(pending[0])

    async def _deliver_with_retries(self, entry: SpoolEntry) -> None:
        retrying = False
        while True:
            async with self._attempt_lock:
                if not any(e.seq == entry.seq for e in self._spool.pending()):
                    return  # delivered meanwhile by the other caller
                if retrying and self._metrics is not None:
                    self._metrics.sink_retries.labels(sink=self._sink.name).inc()
                delay = await self._attempt(entry)
            if delay is None:
                return
            retrying = True
            await asyncio.sleep(delay)

    async def _attempt(self, entry: SpoolEntry) -> float | None:
        """One upload; None on success, else how long to wait before the next attempt."""
        started = time.monotonic()
        try:
            await self._sink.put(entry.key, entry.path, entry.size)
        except SinkFatalError as exc:
            self._count_error("fatal")
            log.error("sink %s failed permanently delivering %s: %s", self._sink.name, entry.key, exc)
            raise
        except SinkRetryableError as exc:
            self._count_error("retryable")
            delay = max(self._backoff.next_delay(), exc.retry_after or 0.0)
            log.warning("sink %s: delivering %s failed (%s); retry %d in %.2fs",
                        self._sink.name, entry.key, exc, self._backoff.attempt, delay)
            return delay
        except Exception:
            self._count_error("unexpected")
            delay = self._backoff.next_delay()
            log.exception("sink %s: unexpected error delivering %s; retry in %.2fs", self._sink.name, entry.key, delay)
            return delay
        self._backoff.reset()
        self._spool.remove(entry)
        self.delivered += 1
        self._count_success(entry)
        log.debug("delivered %s (%d bytes) in %.3fs", entry.key, entry.size, time.monotonic() - started)
        return None

    def _count_error(self, kind: str) -> None:
        if self._metrics is not None:
            self._metrics.sink_errors.labels(sink=self._sink.name, kind=kind).inc()

    def _count_success(self, entry: SpoolEntry) -> None:
        if self._metrics is not None:
            self._metrics.batches.labels(sink=self._sink.name, stream=entry.stream).inc()
            self._metrics.batch_bytes.labels(sink=self._sink.name, stream=entry.stream).inc(entry.size)
