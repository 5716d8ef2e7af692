"""The node agent's container logs source: discover, tail, parse, enrich, checkpoint.

Data path: a file is found (startup walk, inotify, or the periodic sweep) → a ``Tailer`` opens it
and resumes at the committed offset of its content fingerprint → the reader loop reads one
``read_chunk_bytes`` chunk at a time, round-robin over files with new data, feeds logs-parse's
``FileParser`` and puts one ``Record`` per parsed block into the pipeline. ``put`` waiting (spool
full) pauses the loop: at most one chunk is in flight, so memory stays bounded and nothing is
dropped.

Exactly-once: a record's checkpoint is the block's ``resume_offset`` (never inside a pending P/F
merge or multiline record) plus the stream's line number; both are applied in the transaction
registering the batch. After a crash the file is matched by fingerprint (not by path: it may have
been renamed or gzipped meanwhile) and a fresh parser starts at the committed offset.

Single writer: only the reader loop touches a tailer's fd and parser (reads, truncation handover,
letting go); inotify callbacks and the sweep only set flags and queue the tailer.

Timers: a complete multi-line record waiting for its next start line is flushed after
``multiline_timeout_s`` without new data; an unfinished partial line (an exited container's last
``P``, a docker ``log`` without newline) is emitted as written after ``partial_expiry_s``.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import time
from collections import deque
from pathlib import Path

from kubestream.config.settings import Settings
from kubestream.enrich.containers import PodEnricher
from kubestream.enrich.enricher import Enricher
from kubestream.model import LogChunk, ParsedBlock, Record, RecordSink
from kubestream.obs.metrics import Metrics
from kubestream.sources.files.dirs import DirKind, DirWatcher
from kubestream.sources.logs import checkpoint
from kubestream.sources.logs.container_rules import MetadataCache
from kubestream.sources.logs.files import FileTable
from kubestream.sources.logs.json_fields import JsonRule, ParsedFields, parse_messages
from kubestream.sources.logs.selection import Selection
from kubestream.sources.logs.tailer import Tailer
from kubestream.state.store import StateStore

log = logging.getLogger(__name__)

SOURCE = "logs"
ENRICHER_WAIT_S = 30.0
"""How long the first scan waits for the pod cache (selection needs labels) before going on."""
ROTATED_LINGER_S = 0.5
"""A renamed file may still get the runtime's last write before it reopens the path: a rotated
file at its end is let go only after this long."""
THREAD_READ_BYTES = 128 * 1024
"""Reads with more unread bytes than this run in a worker thread, off the event loop."""
THREAD_PARSE_JSON_ROWS = 256
"""Chunks with more rows than this have their JSON messages parsed in a worker thread."""


def own_pod_from_env() -> tuple[str, str] | None:
    """(namespace, name) of the agent's own pod from the downward API variables, if set."""
    namespace, name = os.environ.get("POD_NAMESPACE"), os.environ.get("POD_NAME")
    return (namespace, name) if namespace and name else None


class LogsSource:
    """Reads this node's container logs into ``out`` until cancelled."""

    def __init__(self, settings: Settings, state: StateStore, out: RecordSink, enricher: PodEnricher | None, *,
                 node_name: str, metrics: Metrics | None = None) -> None:
        self._settings = settings.logs
        self._columnar = settings.encoding.format == "parquet"
        self._state = state
        self._out = out
        self._enricher = enricher
        self._metrics = metrics
        self.synced = asyncio.Event()
        """Set once the first walk of ``pods_dir`` is done (after a bounded wait for the pod cache)."""
        meta = MetadataCache(settings.logs, enricher, node_name=node_name, metrics=metrics)
        selection = Selection(settings.logs, own_pod=own_pod_from_env())
        self.files = FileTable(settings.logs, meta, selection, on_ready=self._mark_dirty, metrics=metrics)
        self._dirty: deque[Tailer] = deque()
        self._queued: set[str] = set()
        self._wakeup = asyncio.Event()
        self._sweep_now = asyncio.Event()
        self._next_line = 1
        self._watcher: DirWatcher | None = None
        self._partial: set[str] = set()
        """Fingerprints of files whose parser holds an unfinished partial line."""
        self._expire_due: set[str] = set()
        """Of those, the ones idle for ``partial_expiry_s``: the reader loop emits their partials."""

    # -- lifecycle ---------------------------------------------------------------------------

    async def run(self) -> None:
        """Tail until cancelled; every open file is closed on the way out."""
        saved = checkpoint.load(self._state)
        self._next_line = saved.line_seq + 1
        self.files.set_saved_offsets(saved.offsets, saved.timestamps)
        await self._wait_for_enricher()
        self._start_watching()
        try:
            self._sweep()
            self.synced.set()
            log.info("logs: tailing %d files under %s (resuming after line %d)",
                     len(self.files), self._settings.pods_dir, saved.line_seq)
            async with asyncio.TaskGroup() as group:
                group.create_task(self._reader_loop(), name="logs-reader")
                group.create_task(self._housekeeping_loop(), name="logs-housekeeping")
        finally:
            self._stop_watching()
            self.files.close_all()

    async def _wait_for_enricher(self) -> None:
        if self._enricher is None:
            return
        try:
            await asyncio.wait_for(self._enricher.synced.wait(), ENRICHER_WAIT_S)
        except TimeoutError:
            log.warning("logs: pod cache not synced after %.0fs; starting with path metadata", ENRICHER_WAIT_S)

    def _start_watching(self) -> None:
        try:
            self._watcher = DirWatcher()
        except OSError as exc:
            log.warning("logs: inotify unavailable (%s); relying on the %.1fs sweep",
                        exc, self._settings.sweep_interval_s)
            return
        self.files.watcher = self._watcher
        asyncio.get_running_loop().add_reader(self._watcher.fd, self._on_inotify)

    def _stop_watching(self) -> None:
        if self._watcher is not None:
            with contextlib.suppress(Exception):
                asyncio.get_running_loop().remove_reader(self._watcher.fd)
            self._watcher.close()
            self._watcher = None
            self.files.watcher = None

    # -- events ------------------------------------------------------------------------------

    def _on_inotify(self) -> None:
        assert self._watcher is not None
        for event in self._watcher.events():
            if event is None:
                log.info("logs: inotify queue overflowed; sweeping")
                self._sweep_now.set()
                continue
            try:
                self.files.on_dir_event(event)
            except OSError as exc:  # a file vanishing between the event and our look at it
                log.debug("logs: %s while handling %s", exc, event)

    def _mark_dirty(self, tailer: Tailer) -> None:
        if tailer.fingerprint in self._queued:
            return
        self._queued.add(tailer.fingerprint)
        self._dirty.append(tailer)
        self._wakeup.set()

    # -- reading -----------------------------------------------------------------------------

    async def _reader_loop(self) -> None:
        while True:
            if not self._dirty:
                self._wakeup.clear()
                await self._wakeup.wait()
                continue
            tailer = self._dirty.popleft()
            self._queued.discard(tailer.fingerprint)
            if self.files.get(tailer.fingerprint) is not tailer:
                continue  # let go meanwhile
            if await self._service(tailer):
                self._mark_dirty(tailer)

    async def _service(self, t: Tailer) -> bool:
        """One turn for a tailer; True if it wants another turn right away."""
        if t.fingerprint in self._expire_due:
            self._expire_due.discard(t.fingerprint)
            await self._emit(t, t.parser.expire_partials())
        again = await self._turn(t)
        if t.parser.has_partial:
            self._partial.add(t.fingerprint)
        else:
            self._partial.discard(t.fingerprint)
        return again

    async def _turn(self, t: Tailer) -> bool:
        if t.expired:
            await self._drop_rest(t)
            return False
        if t.flush_due:
            t.flush_due = False
            await self._emit(t, t.parser.flush_pending())
            if not t.parser.has_pending:
                t.pending_since = None
        if t.live and self.files.truncated(t):
            await self._on_truncated(t)
            return False
        chunk_bytes = self._settings.read_chunk_bytes
        if t.handle.gz is not None or t.unread_bytes() > THREAD_READ_BYTES:
            block, n = await asyncio.to_thread(t.read_block, chunk_bytes)
        else:
            block, n = t.read_block(chunk_bytes)
        now = time.monotonic()
        if n:
            t.last_data_at = now
            await self._emit(t, block)
            t.pending_since = (t.pending_since or now) if t.parser.has_pending else None
            return n >= chunk_bytes
        if not t.live:
            return await self._maybe_let_go(t, now)
        return False

    async def _maybe_let_go(self, t: Tailer, now: float) -> bool:
        assert t.rotated_at is not None
        wait = ROTATED_LINGER_S - (now - max(t.rotated_at, t.last_data_at))
        if wait > 0:
            asyncio.get_running_loop().call_later(wait, self._mark_dirty, t)
            return False
        await self._let_go(t, "drained")
        return False

    async def _let_go(self, t: Tailer, why: str) -> None:
        await self._emit(t, t.parser.finish())
        self.files.let_go(t)
        log.debug("logs: let go of %s at offset %d (%s)", t.path, t.offset, why)

    async def _drop_rest(self, t: Tailer) -> None:
        """``drain_timeout_s`` passed: count what stays unread, then let go."""
        lines, size = await asyncio.to_thread(t.count_unread_lines)
        if lines:
            log.warning("logs: %s was rotated or deleted %.0fs ago and is not read to its end; dropping "
                        "%d lines (%d bytes) after offset %d", t.path, self._settings.drain_timeout_s,
                        lines, size, t.offset)
            self._count_dropped("drain_timeout", lines)
        await self._let_go(t, "drain timeout")

    async def _on_truncated(self, t: Tailer) -> None:
        """copytruncate: continue in the copy if there is one, then restart the live file at 0."""
        live_path, live_key = t.path, t.handle.file_key
        self.files.forget_content(live_key)
        if self.files.hand_over_to_copy(t):
            log.info("logs: %s was copied and truncated; finishing it from %s at offset %d",
                     live_path, t.path, t.offset)
            self._mark_dirty(t)
        else:
            log.warning("logs: %s was truncated in place below offset %d; lines written after that "
                        "offset before the truncation (if any) are lost", live_path, t.offset)
            self._count_dropped("truncated_in_place", 1)
            await self._let_go(t, "truncated")
        self.files.consider_path(live_path)

    async def _emit(self, t: Tailer, block: ParsedBlock) -> None:
        if block.count == 0:
            return
        if isinstance(self._enricher, Enricher):  # a new pod's metadata may be a read or an event away
            await self._enricher.settle_pod(t.handle.path.uid, t.handle.path.path)
        info = self.files.refresh_info(t)
        handle = t.handle
        chunk = LogChunk(block=block, meta=info.meta, path=str(handle.path.path),
                         file_key=f"{handle.dev}:{handle.ino}")
        rule = info.extra.parse_json
        if rule is not None:  # before the line numbers move: a cancelled parse hands on nothing
            await self._parse_json(chunk, rule)
        first = self._next_line
        self._next_line += block.count
        update = checkpoint.FileCheckpoint(
            fingerprint=t.fingerprint, offset=block.resume_offset, path=str(handle.path.path), dev=handle.dev,
            ino=handle.ino, pod_uid=handle.path.uid, container=handle.path.container,
            last_line=first + block.count - 1, last_timestamp=block.resume_timestamp)
        if self._metrics is not None:
            self._metrics.records_in.labels(source=SOURCE).inc(block.count)
        await self._out.put(Record(data={}, chunk=chunk, sort_key=chunk.sort_key, position=first,
                                   checkpoint=update,
                                   size_hint=chunk.columnar_size_hint if self._columnar else chunk.size_hint))

    async def _parse_json(self, chunk: LogChunk, rule: JsonRule) -> None:
        """Fill ``chunk.parsed`` (``logs.parse_json`` is on for its container) and count the results."""
        messages = chunk.block.messages
        fields: ParsedFields = await asyncio.to_thread(parse_messages, messages, rule) \
            if len(messages) > THREAD_PARSE_JSON_ROWS else parse_messages(messages, rule)
        chunk.parsed, chunk.keep_message, chunk.parsed_bytes = fields.values, rule.keep_message, fields.size
        if self._metrics is not None:
            for result, n in fields.results.items():
                self._metrics.log_json_parse.labels(result=result).inc(n)

    def _count_dropped(self, reason: str, n: int) -> None:
        if self._metrics is not None and n:
            self._metrics.records_dropped.labels(source=SOURCE, reason=reason).inc(n)

    # -- housekeeping ------------------------------------------------------------------------

    async def _housekeeping_loop(self) -> None:
        interval = self._settings.sweep_interval_s
        flush_tick = max(0.05, self._settings.multiline_timeout_s / 4)
        partial_tick = max(0.05, self._settings.partial_expiry_s / 4)
        last_sweep = time.monotonic()
        while True:
            timeout = max(0.0, last_sweep + interval - time.monotonic())
            if self.files.has_pending_multiline():
                timeout = min(timeout, flush_tick)
            if self._partial:
                timeout = min(timeout, partial_tick)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._sweep_now.wait(), timeout)
            now = time.monotonic()
            self.files.mark_multiline_due(now)
            self._mark_partials_due(now)
            if self._sweep_now.is_set() or now - last_sweep >= interval:
                self._sweep_now.clear()
                self._sweep()
                last_sweep = time.monotonic()

    def _mark_partials_due(self, now: float) -> None:
        """Queue the files whose unfinished partial line got no new data for ``partial_expiry_s``."""
        expiry = self._settings.partial_expiry_s
        for fingerprint in list(self._partial):
            t = self.files.get(fingerprint)
            if t is None or not t.parser.has_partial:
                self._partial.discard(fingerprint)
                self._expire_due.discard(fingerprint)
            elif fingerprint not in self._expire_due and now - t.last_data_at >= expiry:
                self._expire_due.add(fingerprint)
                self._mark_dirty(t)

    def _sweep(self) -> None:
        """The safety net: walk the directories, re-check every open file, prune old state."""
        root = self._settings.pods_dir
        if self._watcher is not None:
            self._watcher.watch(DirKind.ROOT, root)
        seen = self.files.sweep(time.monotonic())
        stale = self.files.stale_fingerprints(checkpoint.known_fingerprints(self._state), seen)
        if stale:
            checkpoint.forget(self._state, stale)
            log.debug("logs: forgot the positions of %d files no longer on disk", len(stale))

    @property
    def next_line(self) -> int:
        """The line number the next record starts at."""
        return self._next_line

    def pods_dir(self) -> Path:
        return self._settings.pods_dir
