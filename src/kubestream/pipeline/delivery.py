"""The delivery worker of one destination: uploads its spool parts strictly in commit order
under their fixed keys. Every destination has its own worker, so a slow or dead destination
delays only its own parts.

Each entry is retried until the sink acknowledges it, and only then removed from the spool, so
a crash at any point leaves the entry registered and the next start delivers it again under the
same key (the sink overwrites itself). Failures are classified by exception class only:

* ``SinkRetryableError``: wait (exponential backoff with full jitter between
  ``retry_initial_s`` and ``retry_max_s``, at least the sink's ``retry_after``) and retry;
* ``SinkRejectedError`` (this one object is refused for good: too large, a name the sink cannot
  store): the entry is a dead letter. It is counted (``dead_letters{reason="sink"}``), logged
  once, and delivered under the dead-letter folder (``naming.dead_letter_key``, same order
  place, same retries); if the sink refuses that too, the file is kept in the spool's
  ``dead-letter/`` directory and the entry forgotten, so the batches behind it go on. A live
  destination (``otlp``, ``http``) has no dead-letter folder, and sending refused data again
  would only be refused again: its part goes straight to ``dead-letter/<destination>/`` in the
  spool, counted in ``dead_letters{reason="sink"}`` and in the destination's
  ``destination_dropped_records{reason="rejected"}``, with one log line naming the destination
  and the answer;
* ``SinkFatalError``: log one line and raise, which stops the agent with a non-zero exit;
* anything else is a bug in a sink; it is logged with its traceback and retried like a
  retryable error, because dropping the batch would lose data.

``sink_reachable{sink}`` follows every attempt: 0 after one that got no answer
(``SinkUnreachableError``), 1 after any answer.
"""

from __future__ import annotations

import asyncio
import logging
import time

from kubestream.config.settings import SinkSettings
from kubestream.errors import SinkFatalError, SinkRejectedError, SinkRetryableError, SinkUnreachableError
from kubestream.obs.metrics import Metrics
from kubestream.pipeline.naming import dead_letter_key, is_dead_letter_key
from kubestream.pipeline.spool import DEFAULT_DESTINATION, Spool, SpoolEntry
from kubestream.sinks.base import Sink
from kubestream.util.backoff import Backoff

log = logging.getLogger(__name__)

LIVE_TYPES = frozenset({"otlp", "http"})
"""Destination types without a dead-letter folder: a part they refuse for good is set aside in
the spool at once instead of being sent again under a dead-letter key."""


class Delivery:
    """Moves spool entries to ``sink`` in order; one attempt in flight at a time."""

    def __init__(self, spool: Spool, sink: Sink, *, settings: SinkSettings, metrics: Metrics | None = None,
                 destination: str = DEFAULT_DESTINATION) -> None:
        self._spool = spool
        self.destination = destination
        """The destination whose parts this worker delivers."""
        # Log lines name the sink, and the destination when there are several.
        self._label = sink.name if destination == DEFAULT_DESTINATION else f"{sink.name} ({destination})"
        self._sink = sink
        self.sink = sink
        """The destination (read-only)."""
        self._metrics = metrics
        self._prefix = settings.prefix
        self._live = settings.type in LIVE_TYPES
        # Failures never "age out" here: the counter resets on the next acknowledged upload.
        self._backoff = Backoff(settings.retry_initial_s, settings.retry_max_s, reset_after_s=float("inf"))
        # run() and drain() may overlap during shutdown; one upload of an entry at a time.
        self._attempt_lock = asyncio.Lock()
        self.delivered = 0
        """Entries acknowledged by the sink since start."""
        self.reachable = True
        """Whether the last attempt got an answer from the sink (see ``set_reachable``)."""
        self.usable = asyncio.Event()
        """``run`` delivers only while set: the agent clears it while a sink that did not answer
        at start is being checked again, so the first answer it acts on is the write check's."""
        self.usable.set()

    async def run(self) -> None:
        """Deliver entries as they are committed, forever (until cancelled or a fatal error)."""
        while True:
            await self.usable.wait()
            await self._spool.wait_pending(self.destination)
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
        return not self._spool.pending(self.destination)

    async def _deliver_pending(self) -> None:
        while True:
            pending = self._spool.pending(self.destination)
            if not pending:
                return
            await self._deliver_with_retries(pending[0])

    async def _deliver_with_retries(self, entry: SpoolEntry) -> None:
        retrying = False
        while True:
            async with self._attempt_lock:
                if not any(e.seq == entry.seq for e in self._spool.pending(self.destination)):
                    return  # delivered meanwhile by the other caller (or dropped: on_full drop)
                if retrying and self._metrics is not None:
                    self._metrics.sink_retries.labels(sink=self._sink.name).inc()
                self._spool.begin_attempt(entry)
                try:
                    delay = await self._attempt(entry)
                finally:
                    self._spool.end_attempt(entry)
            if delay is None:
                return
            retrying = True
            await asyncio.sleep(delay)

    async def _attempt(self, entry: SpoolEntry) -> float | None:
        """One upload; None on success, else how long to wait before the next attempt."""
        started = time.monotonic()
        try:
            await self._sink.put(entry.key, entry.path, entry.size)
        except SinkRejectedError as exc:
            self._count_error("rejected")
            self.set_reachable(True)
            return self._dead_letter(entry, exc)
        except SinkFatalError as exc:
            self._count_error("fatal")
            self.set_reachable(True)
            log.error("sink %s failed permanently delivering %s: %s", self._label, entry.key, exc)
            raise
        except SinkRetryableError as exc:
            self._count_error("retryable")
            self.set_reachable(not isinstance(exc, SinkUnreachableError))
            delay = max(self._backoff.next_delay(), exc.retry_after or 0.0)
            log.warning("sink %s: delivering %s failed (%s); retry %d in %.2fs",
                        self._label, entry.key, exc, self._backoff.attempt, delay)
            return delay
        except Exception:
            self._count_error("unexpected")
            delay = self._backoff.next_delay()
            log.exception("sink %s: unexpected error delivering %s; retry in %.2fs", self._label, entry.key, delay)
            return delay
        self._backoff.reset()
        self.set_reachable(True)
        self._spool.remove(entry)
        self.delivered += 1
        self._count_success(entry)
        log.debug("delivered %s (%d bytes) in %.3fs", entry.key, entry.size, time.monotonic() - started)
        return None

    def _dead_letter(self, entry: SpoolEntry, exc: SinkRejectedError) -> float | None:
        """The sink refused ``entry`` for good: deliver it as a dead letter, or keep it locally.

        None to go on at once, else how long to wait (keeping it locally failed)."""
        if self._live:
            return self._set_aside_live(entry, exc)
        if not is_dead_letter_key(entry.key, self._prefix):
            key = dead_letter_key(entry.key, self._prefix)
            self._spool.rekey(entry, key)
            if self._metrics is not None:
                self._metrics.dead_letters.labels(stream=entry.stream, reason="sink").inc()
            log.error("sink %s refused %s for good (%s); delivering it as the dead letter %s instead",
                      self._label, entry.key, exc, key)
            return None
        try:
            kept = self._spool.set_aside(entry)
        except OSError as error:
            delay = self._backoff.next_delay()
            log.error("sink %s refused the dead letter %s too (%s), and keeping it locally failed (%s); "
                      "retry in %.2fs", self._label, entry.key, exc, error, delay)
            return delay
        log.error("sink %s refused the dead letter %s too (%s); its %d records are kept in %s",
                  self._label, entry.key, exc, entry.records, kept)
        return None

    def _set_aside_live(self, entry: SpoolEntry, exc: SinkRejectedError) -> float | None:
        """A live destination refused ``entry`` for good: keep its file in the spool's
        ``dead-letter/<destination>/`` directory and go on (no second POST of refused data)."""
        try:
            kept = self._spool.set_aside(entry)
        except OSError as error:
            delay = self._backoff.next_delay()
            log.error("destination %s refused %s for good (%s), and keeping it locally failed (%s); retry in %.2fs",
                      self._label, entry.key, exc, error, delay)
            return delay
        if self._metrics is not None:
            self._metrics.dead_letters.labels(stream=entry.stream, reason="sink").inc()
            self._metrics.destination_dropped.labels(destination=self.destination, reason="rejected").inc(
                entry.records)
            self._metrics.destination_dropped_parts.labels(destination=self.destination, reason="rejected").inc()
        log.error("destination %s refused %s for good (%s); its %d records are kept in %s and not sent again",
                  self._label, entry.key, exc, entry.records, kept)
        return None

    def set_reachable(self, reachable: bool) -> None:
        """Record whether the sink answered the last attempt (``reachable``, readiness)."""
        self.reachable = reachable
        if self._metrics is not None:
            self._metrics.sink_reachable.labels(sink=self._sink.name).set(1 if reachable else 0)
            self._metrics.destination_reachable.labels(destination=self.destination).set(1 if reachable else 0)

    def _count_error(self, kind: str) -> None:
        if self._metrics is not None:
            self._metrics.sink_errors.labels(sink=self._sink.name, kind=kind).inc()

    def _count_success(self, entry: SpoolEntry) -> None:
        if self._metrics is not None:
            self._metrics.batches.labels(sink=self._sink.name, stream=entry.stream).inc()
            self._metrics.batch_bytes.labels(sink=self._sink.name, stream=entry.stream).inc(entry.size)
            self._metrics.destination_delivered_parts.labels(destination=self.destination).inc()
            self._metrics.destination_delivered_records.labels(destination=self.destination).inc(entry.records)
