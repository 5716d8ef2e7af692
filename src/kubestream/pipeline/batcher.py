"""The batcher of one stream: groups records, closes batches, hands them to the spool.

A batch closes on whichever comes first: ``batch.max_records`` records, ``batch.max_bytes``
(estimated from ``Record.size_hint``), or ``batch.max_age_s`` after its FIRST record (an idle
timer would let a steady trickle hold a batch open forever). Closing a batch sorts it by event
time, encodes it, names it after its position range, and commits it to the spool together with
the records' checkpoint updates (see spool.py for why that is exactly-once).
"""

from __future__ import annotations

import asyncio
import errno
import logging
import time
from collections.abc import Callable
from typing import Any

from kubestream.config.settings import Settings
from kubestream.errors import StateError
from kubestream.model import Batch, CheckpointUpdate, Record
from kubestream.obs.metrics import Metrics
from kubestream.pipeline.encode import Encoder, make_encoder
from kubestream.pipeline.naming import batch_key, batch_time, sort_key_time
from kubestream.pipeline.spool import Spool
from kubestream.state.store import StateStore
from kubestream.util.backoff import Backoff

log = logging.getLogger(__name__)

# A full spool disk is waited out (the batch stays in memory, the source is paused); anything
# else failing under a commit stops the pipeline, because committing later batches would move
# the positions past the lost one.
_DISK_FULL = frozenset({errno.ENOSPC, errno.EDQUOT})
_DISK_FULL_RETRY_S = (0.5, 30.0)


class Pipeline:
    """Implements ``model.RecordSink`` for one stream (``"events"``, ``"logs"``, ...)."""

    def __init__(
        self,
        stream: str,
        settings: Settings,
        state: StateStore,
        spool: Spool,
        *,
        metrics: Metrics | None = None,
        clock: Callable[[], float] = time.monotonic,
        encoder: Encoder | None = None,
    ) -> None:
        # ``state`` is part of the agreed constructor; positions reach the state store only
        # through the spool's commit transaction, so the pipeline itself never writes to it.
        self.stream = stream
        self._batch_settings = settings.batch
        self._sink_settings = settings.sink
        self._state = state
        self._spool = spool
        self._metrics = metrics
        self._clock = clock
        self._encoder = encoder or make_encoder(settings.encoding)
        self._open = Batch(stream=stream)
        self._generation = 0  # bumps on every close, so the timer can tell batches apart
        self._first_record = asyncio.Event()
        # Commits of this stream happen one at a time, in close order, so positions only advance.
        self._commit_lock = asyncio.Lock()
        self._failure: BaseException | None = None

    @property
    def open_records(self) -> int:
        """Records in the open (not yet committed) batch."""
        return len(self._open.records)

    async def put(self, record: Record) -> None:
        """Add ``record`` to the open batch; waits while the spool is full (backpressure)."""
        if self._spool.is_full:
            await self._wait_for_room()
        batch = self._open
        if not batch.records:
            batch.opened_at = self._clock()
            self._first_record.set()
        batch.records.append(record)
        batch.bytes_estimate += record.size_hint
        limits = self._batch_settings
        if len(batch.records) >= limits.max_records or batch.bytes_estimate >= limits.max_bytes:
            await self._close(self._generation)

    async def run(self) -> None:
        """The max-age timer: closes each batch ``max_age_s`` after its first record."""
        max_age = self._batch_settings.max_age_s
        while True:
            if not self._open.records:
                self._first_record.clear()
                await self._first_record.wait()
                continue
            generation = self._generation
            remaining = self._open.opened_at + max_age - self._clock()
            if remaining > 0:
                await asyncio.sleep(remaining)
            if generation == self._generation:
                await self._close(generation)

    async def flush(self) -> None:
        """Close the open batch now (shutdown), and wait for every pending close to commit."""
        await self._close(self._generation)
        async with self._commit_lock:
            pass

    async def _wait_for_room(self) -> None:
        started = time.monotonic()
        try:
            await self._spool.wait_for_room()
        finally:
            if self._metrics is not None:
                self._metrics.backpressure_seconds.labels(source=self.stream).inc(time.monotonic() - started)

    async def _close(self, generation: int) -> None:
        """Detach the open batch (if it is still ``generation``) and commit it."""
        if self._failure is not None:
            raise StateError(f"pipeline {self.stream} stopped after a failed commit: {self._failure}")
        if generation != self._generation or not self._open.records:
            return
        batch, self._open = self._open, Batch(stream=self.stream)
        self._generation += 1
        async with self._commit_lock:
            commit = asyncio.ensure_future(self._commit(batch))
            try:
                await asyncio.shield(commit)
            except asyncio.CancelledError:
                # The caller was cancelled (shutdown stops the source while it may be inside
                # put()). The commit is one atomic step that flush() must be able to follow:
                # let it finish, then let the cancellation through.
                await asyncio.wait([commit])
                self._note_failure(commit)
                raise
            except Exception:
                self._note_failure(commit)
                raise

    def _note_failure(self, commit: asyncio.Future[None]) -> None:
        if commit.cancelled() or commit.exception() is None:
            return
        self._failure = commit.exception()
        log.error("pipeline %s: committing a batch failed: %r", self.stream, self._failure)

    async def _commit(self, batch: Batch) -> None:
        records = sorted(batch.records, key=_sort_key)  # stable: ties keep arrival order
        positions = [r.position for r in batch.records]
        key = batch_key(
            prefix=self._sink_settings.prefix,
            stream=self.stream,
            stream_uid=self._sink_settings.stream_uid,
            timestamp=batch_time(records[0].sort_key),
            first_position=min(positions),
            last_position=max(positions),
            extension=self._encoder.extension,
        )
        # Checkpoints in arrival order: a later position must win over an earlier one.
        updates: list[CheckpointUpdate] = [r.checkpoint for r in batch.records if r.checkpoint is not None]
        payload = await asyncio.to_thread(self._encoder.encode, records)
        backoff = Backoff(*_DISK_FULL_RETRY_S, reset_after_s=float("inf"))
        while True:
            try:
                await self._spool.commit(key, payload, updates, stream=self.stream, records=len(records))
                break
            except OSError as exc:
                if exc.errno not in _DISK_FULL:
                    raise
                delay = backoff.next_delay()
                log.warning("spool disk full (%s); retrying the %s batch %s in %.1fs", exc, self.stream, key, delay)
                await asyncio.sleep(delay)
        self._observe_committed(records)

    def _observe_committed(self, records: list[Record]) -> None:
        if self._metrics is None:
            return
        self._metrics.records_out.labels(source=self.stream).inc(len(records))
        lag = self._metrics.lag.labels(source=self.stream)
        now = time.time()
        for record in records:
            when = sort_key_time(record.sort_key)
            if when is not None:
                lag.observe(max(0.0, now - when.timestamp()))


def _sort_key(record: Record) -> Any:
    return record.sort_key
