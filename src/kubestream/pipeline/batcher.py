"""The batcher of one stream: groups records, closes batches, hands them to the spool.

A batch closes on whichever comes first: ``batch.max_records`` records, ``batch.max_bytes``
(estimated from ``Record.size_hint``), or ``batch.max_age_s`` after its FIRST record (an idle
timer would let a steady trickle hold a batch open forever). Closing a batch sorts it by event
time, encodes it, names it after its position range, and commits it to the spool together with
the records' checkpoint updates (see spool.py for why that is exactly-once).

Closing a batch produces one payload per destination that takes the stream (a ``Route``): the
records that pass its filter, encoded with its encoder, split into parts by its payload limits;
a destination whose filter keeps no record gets no part. Every part and the checkpoint updates
are registered in one spool transaction.

A batch the encoder rejects is a poison batch: failing the commit would stop the stream, and
the restart would read the same records into the same failure. It is encoded with the safe
encoder (NDJSON) instead — or, should that fail too, as one plain JSON line per record — and
committed, positions and all, under the dead-letter folder (``naming.dead_letter_key``), logged
and counted in ``dead_letters{reason="encode"}``.
"""

from __future__ import annotations

import asyncio
import errno
import logging
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from kubestream.config.settings import Settings
from kubestream.errors import SpoolFullError, StateError
from kubestream.model import Batch, CheckpointUpdate, Record
from kubestream.obs.metrics import Metrics
from kubestream.pipeline import memory
from kubestream.pipeline.encode import Encoder, make_encoder
from kubestream.pipeline.encode.ndjson import dumps_line
from kubestream.pipeline.naming import (
    batch_key,
    batch_time,
    dead_letter_key,
    partition_cluster,
    sort_key_time,
)
from kubestream.pipeline.spool import DEFAULT_DESTINATION, PartPayload, Spool
from kubestream.state.store import StateStore
from kubestream.util.backoff import Backoff

log = logging.getLogger(__name__)

# A full spool disk is waited out (the batch stays in memory, the source is paused); anything
# else failing under a commit stops the pipeline, because committing later batches would move
# the positions past the lost one.
_DISK_FULL = frozenset({errno.ENOSPC, errno.EDQUOT})
_DISK_FULL_RETRY_S = (0.5, 30.0)


@dataclass(frozen=True, slots=True)
class Route:
    """What one destination takes of a stream's batches, and how it is encoded and named."""

    destination: str
    prefix: str
    stream_uid: str
    encoder: Encoder
    fallback_encoder: Encoder
    """The safe encoder of poison payloads (NDJSON)."""
    accepts: Callable[[Record], bool] | None = None
    """The destination's filter; None takes every record."""
    max_records: int | None = None
    """At most this many records per part."""
    max_bytes: int | None = None
    """Split a part whose payload is larger than this (while it has more than one record)."""


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
        fallback_encoder: Encoder | None = None,
        routes: Sequence[Route] | None = None,
    ) -> None:
        # ``state`` is part of the agreed constructor; positions reach the state store only
        # through the spool's commit transaction, so the pipeline itself never writes to it.
        self.stream = stream
        self._batch_settings = settings.batch
        self._memory_settings = settings.memory
        self._sink_settings = settings.sink
        self._key_cluster = partition_cluster(settings.cluster)
        self._state = state
        self._spool = spool
        self._metrics = metrics
        self._clock = clock
        self._encoder = encoder or make_encoder(settings.encoding, cluster=settings.cluster.name)
        # The safe format for poison batches: NDJSON with the configured compression.
        self._fallback_encoder = fallback_encoder or make_encoder(
            settings.encoding.model_copy(update={"format": "ndjson"}), cluster=settings.cluster.name)
        # Without routes: the single ``sink`` destination, with the encoders above.
        self.routes: tuple[Route, ...] = tuple(routes) if routes is not None else (
            Route(DEFAULT_DESTINATION, self._sink_settings.prefix, self._sink_settings.stream_uid, self._encoder,
                  self._fallback_encoder),)
        self._open = Batch(stream=stream)
        self._generation = 0  # bumps on every close, so the timer can tell batches apart
        self._first_record = asyncio.Event()
        # Commits of this stream happen one at a time, in close order, so positions only advance.
        self._commit_lock = asyncio.Lock()
        self._failure: BaseException | None = None
        # Set by give_up() (the shutdown bound ran out): a commit waiting out a full disk stops.
        self._giving_up = asyncio.Event()

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

    def give_up(self) -> None:
        """Stop waiting out a full spool disk (the shutdown bound ran out).

        The commit that waits fails with ``SpoolFullError``: nothing of it is registered and no
        position advances, so its records are read again at the next start; the pipeline is
        stopped like after any failed commit, so no later batch moves the positions past it.
        """
        self._giving_up.set()

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
            if self._failure is not None:
                # The commit before this one failed while we waited for the lock.
                raise StateError(f"pipeline {self.stream} stopped after a failed commit: {self._failure}")
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
        timestamp = batch_time(records[0].sort_key)
        first, last = min(positions), max(positions)
        # Checkpoints in arrival order: a later position must win over an earlier one.
        updates: list[CheckpointUpdate] = [r.checkpoint for r in batch.records if r.checkpoint is not None]
        parts = await asyncio.to_thread(self._encode_routes, records, timestamp, first, last)
        backoff = Backoff(*_DISK_FULL_RETRY_S, reset_after_s=float("inf"))
        described = parts[0].key if parts else f"{self.stream} {first}-{last}"
        while True:
            try:
                await self._spool.commit_parts(parts, updates, stream=self.stream)
                break
            except OSError as exc:
                if exc.errno not in _DISK_FULL:
                    raise
                delay = backoff.next_delay()
                log.warning("spool disk full (%s); retrying the %s batch %s in %.1fs", exc, self.stream, described,
                            delay)
                if await self._given_up_within(delay):
                    raise SpoolFullError(f"the spool disk stayed full until the shutdown bound; the {self.stream} "
                                         f"batch {described} was not written") from exc
        self._observe_committed(records)

    def _encode_routes(self, records: list[Record], timestamp: Any, first: int, last: int) -> list[PartPayload]:
        """The parts of a closed batch for every route, in route order (runs in a thread)."""
        parts: list[PartPayload] = []
        for route in self.routes:
            taken = records if route.accepts is None else [r for r in records if route.accepts(r)]
            if not taken:
                continue
            encoded = self._split(route, taken)

            def key_for(extension: str, number: int | None, route: Route = route) -> str:
                return batch_key(prefix=route.prefix, stream=self.stream, stream_uid=route.stream_uid,
                                 timestamp=timestamp, first_position=first, last_position=last,
                                 extension=extension, cluster=self._key_cluster, part=number)

            for index, (payload, extension, failure, count) in enumerate(encoded):
                key = key_for(extension, index + 1 if len(encoded) > 1 else None)
                if failure is not None:
                    key = dead_letter_key(key, route.prefix)
                    self._count_dead_letter()
                    log.error("pipeline %s: the encoder rejected a batch of %d records (%s); it goes to the dead "
                              "letters as %s", self.stream, count, _describe(failure), key)
                parts.append(PartPayload(route.destination, key, payload, count))
        # The encoders' buffers are garbage now: give them back before the next batch, or the
        # peak grows with every allocator's high-water mark (see pipeline.memory).
        memory.release(self._memory_settings)
        return parts

    def _split(self, route: Route, records: list[Record]) -> list[tuple[bytes, str, Exception | None, int]]:
        """Encode ``records`` for ``route`` in parts of at most ``max_records`` records and (while
        a part holds more than one record) at most ``max_bytes`` bytes. Deterministic: the same
        records always give the same parts."""
        size = route.max_records or len(records)
        chunks = [records[i:i + size] for i in range(0, len(records), size)]
        out: list[tuple[bytes, str, Exception | None, int]] = []
        while chunks:
            chunk = chunks.pop(0)
            payload, extension, failure = self._encode(chunk, route.encoder, route.fallback_encoder)
            if route.max_bytes is not None and len(payload) > route.max_bytes and len(chunk) > 1:
                half = len(chunk) // 2
                chunks[:0] = [chunk[:half], chunk[half:]]
                continue
            out.append((payload, extension, failure, len(chunk)))
        return out

    async def _given_up_within(self, delay: float) -> bool:
        """Sleep ``delay`` seconds; True at once if ``give_up`` is (or gets) called."""
        try:
            async with asyncio.timeout(delay):
                await self._giving_up.wait()
        except TimeoutError:
            return False
        return True

    @staticmethod
    def _encode(records: list[Record], encoder: Encoder,
                fallback: Encoder) -> tuple[bytes, str, Exception | None]:
        """(payload, extension, None), or the dead letter's payload and extension and why."""
        try:
            return encoder.encode(records), encoder.extension, None
        except Exception as exc:  # any encoder failure makes this batch, not the stream, fail
            failure = exc
        try:
            return fallback.encode(records), fallback.extension, failure
        except Exception:
            return _plain_lines(records), "ndjson", failure

    def _count_dead_letter(self) -> None:
        if self._metrics is not None:
            self._metrics.dead_letters.labels(stream=self.stream, reason="encode").inc()

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


def _describe(exc: BaseException) -> str:
    """One line naming an exception: its class and the first line of its message."""
    text = str(exc).strip().split("\n", 1)[0][:300]
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


def _plain_lines(records: list[Record]) -> bytes:
    """The last resort for a batch no encoder takes: one JSON line per record, anything JSON
    cannot hold written as its ``str``, so the records stay readable and nothing is lost."""
    lines = []
    for record in records:
        data: Any = record.data if record.chunk is None else {"chunk": record.chunk}
        try:
            lines.append(dumps_line({"position": record.position, "sort_key": str(record.sort_key),
                                     "data": data}))
        except Exception:  # a value whose str() fails, or a cycle
            lines.append(dumps_line({"position": record.position, "data": _safe_repr(data)}))
    return b"".join(lines)


def _safe_repr(value: object) -> str:
    try:
        return repr(value)
    except Exception:
        return "<unrepresentable>"
