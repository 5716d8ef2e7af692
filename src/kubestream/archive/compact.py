"""Compaction: the small objects of closed partitions rewritten into a few Parquet files.

Per partition folder and stream uid (a partition shared by several agents is compacted per
agent, so a compacted file is still named after the stream it holds), in this order:

1. finish what a committed compaction left (a crash after its manifest): delete its sources
   still present, then its markers;
2. plan: the sources not covered by a committed compaction; their names give the id;
3. write the parts (rows streamed source by source, one Parquet row group per
   ``row_group_bytes`` of Arrow data, a new part once ``target_file_bytes`` is reached) and one
   empty marker per source; drop parts of an earlier attempt with another split;
4. commit: write the manifest (one atomic object);
5. delete the sources, then their markers.

A kill at any point leaves a state ``catalog.live_keys`` resolves to every record once, and
running again completes it (steps 1-3 are idempotent: same names, same rows). Memory is one
source, the row-group buffer and the writer's current row group: bounded by the settings, not
by the size of the partition.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import logging
import os
import time
from collections.abc import AsyncIterator, Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import orjson
import pyarrow as pa
import pyarrow.parquet as pq

from kubestream.archive import catalog, schema
from kubestream.archive.formats import ProtobufMessage, UnreadableObjectError, is_archive_object, read_tables
from kubestream.archive.store import ArchiveStore, ObjectMissingError, archive_sink_settings
from kubestream.config.settings import CompactionSettings, Settings
from kubestream.pipeline.encode.events_schema import EVENT_DICTIONARY_COLUMNS
from kubestream.pipeline.naming import day_of_level, hour_of_level

log = logging.getLogger("kubestream.compact")

MANIFEST_VERSION = 1
_MAX_DEPTH = 6
READ_AHEAD = 8
"""Sources fetched (and decoded: ``formats.read_tables``) together."""


@dataclass(frozen=True, slots=True)
class Partition:
    """One ``…/<stream>/[k=v/…]dt=YYYY-MM-DD/hour=HH/`` folder."""

    prefix: str
    stream: str
    hour: dt.datetime

    def closed(self, now: dt.datetime, grace_s: float) -> bool:
        """Whether the hour ended at least ``grace_s`` before ``now``."""
        return self.hour + dt.timedelta(hours=1, seconds=grace_s) <= now


@dataclass(slots=True)
class GroupResult:
    """What happened to one stream's objects in one partition."""

    partition: str
    stream_uid: str
    sources: int = 0
    parts: int = 0
    rows: int = 0
    input_bytes: int = 0
    output_bytes: int = 0
    finished: int = 0
    """Sources of an earlier, committed compaction deleted by this run."""
    unreadable: list[str] = field(default_factory=list)


@dataclass(slots=True)
class CompactionReport:
    """The totals of one ``compact_archive`` run."""

    groups: list[GroupResult] = field(default_factory=list)
    partitions_seen: int = 0
    partitions_open: int = 0
    seconds: float = 0.0

    @property
    def sources(self) -> int:
        return sum(g.sources for g in self.groups)

    @property
    def parts(self) -> int:
        return sum(g.parts for g in self.groups)

    @property
    def rows(self) -> int:
        return sum(g.rows for g in self.groups)

    @property
    def input_bytes(self) -> int:
        return sum(g.input_bytes for g in self.groups)

    @property
    def output_bytes(self) -> int:
        return sum(g.output_bytes for g in self.groups)

    @property
    def unreadable(self) -> list[str]:
        return [key for g in self.groups for key in g.unreadable]


# -- finding partitions -----------------------------------------------------------------------


async def find_partitions(store: ArchiveStore, prefix: str, streams: Sequence[str]) -> list[Partition]:
    """The hour partitions of ``streams`` under ``prefix`` (``k=v`` levels such as ``cluster=`` too)."""
    root = f"{prefix.strip('/')}/" if prefix.strip("/") else ""
    found: list[Partition] = []

    async def walk(folder: str, stream: str | None, day: str | None, depth: int) -> None:
        if depth > _MAX_DEPTH:
            return
        for sub in await store.list_folders(folder):
            name = sub.rstrip("/").rsplit("/", 1)[-1]
            if stream is None:
                if name in streams:
                    await walk(sub, name, None, depth + 1)
                elif "=" in name:
                    await walk(sub, None, None, depth + 1)
                continue
            if day is not None and (when := hour_of_level(day, name)) is not None:
                found.append(Partition(sub, stream, when))
            elif (folder_day := day_of_level(name)) is not None:
                await walk(sub, stream, folder_day, depth + 1)
            elif "=" in name and name != catalog.COMPACTED_DIR:
                await walk(sub, stream, day, depth + 1)

    await walk(root, None, None, 0)
    return sorted(found, key=lambda p: (p.hour, p.prefix))


# -- the run ----------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class _Options:
    compaction: CompactionSettings
    protobuf_message: ProtobufMessage


async def compact_archive(store: ArchiveStore, settings: Settings, *, now: dt.datetime | None = None,
                          streams: Sequence[str] | None = None,
                          on_step: Callable[[str], None] | None = None) -> CompactionReport:
    """Compact every closed partition of the archive ``store`` (the sink of ``settings``).

    ``on_step`` is called with the name of each step as it completes (crash tests, progress).
    """
    started = time.monotonic()
    options = _Options(settings.compaction, settings.encoding.protobuf_message)
    moment = now or dt.datetime.now(dt.UTC)
    report = CompactionReport()
    prefix = archive_sink_settings(settings).prefix
    for partition in await find_partitions(store, prefix, streams or settings.compaction.streams):
        report.partitions_seen += 1
        if not partition.closed(moment, settings.compaction.grace_s):
            report.partitions_open += 1
            continue
        report.groups += await compact_partition(store, partition, options, on_step=on_step)
    report.seconds = time.monotonic() - started
    return report


async def compact_partition(store: ArchiveStore, partition: Partition, options: _Options, *,
                            on_step: Callable[[str], None] | None = None) -> list[GroupResult]:
    """Compact one partition folder (see the module docstring for the steps)."""
    step = on_step or (lambda _: None)
    keys = await store.list_keys(partition.prefix)
    finished = await _finish_committed(store, keys, step)
    covered = catalog.covered_sources(keys)
    groups: dict[str, list[str]] = {}
    for key in catalog.source_keys(keys):
        if key not in covered and catalog.partition_of(key) == partition.prefix and is_archive_object(key):
            groups.setdefault(catalog.stream_uid_of(key), []).append(key)
    results = []
    for uid, sources in sorted(groups.items()):
        result = GroupResult(partition.prefix, uid, finished=finished.get(uid, 0))
        if len(sources) >= options.compaction.min_objects:
            await _compact_group(store, partition, uid, sources, options, result, step)
        results.append(result)
    return results


async def _finish_committed(store: ArchiveStore, keys: list[str], step: Callable[[str], None]) -> dict[str, int]:
    """Delete what committed compactions replaced and a crash left behind: sources, then markers."""
    covered = catalog.covered_sources(keys)
    present = set(catalog.source_keys(keys))
    leftovers = sorted(covered & present)
    if leftovers:
        await store.delete(leftovers)
        step("finish-sources")
    committed = {c.folder for c in catalog.committed_compactions(keys)}
    markers = [k for k in keys if any(k.startswith(f"{folder}{catalog.COVERS_DIR}/") for folder in committed)]
    if markers:
        await store.delete(markers)
        step("finish-markers")
    counts: dict[str, int] = {}
    for key in leftovers:
        counts[catalog.stream_uid_of(key)] = counts.get(catalog.stream_uid_of(key), 0) + 1
    return counts


async def _compact_group(store: ArchiveStore, partition: Partition, uid: str, sources: list[str],
                         options: _Options, result: GroupResult, step: Callable[[str], None]) -> None:
    """Compact ``sources``; an unreadable one is left out (and stays live) and the rest retried."""
    while len(sources) >= options.compaction.min_objects:
        keys = catalog.CompactionKeys(partition.prefix, catalog.compaction_id(sources))
        try:
            manifest = await _write_parts(store, keys, partition.stream, uid, sources, options, step)
        except _Unreadable as bad:
            log.warning("compaction: %s is not readable and stays as it is: %s", bad.key, bad.reason)
            result.unreadable.append(bad.key)
            sources = [s for s in sources if s != bad.key]
            continue
        except ObjectMissingError as exc:
            # Another compactor committed these sources meanwhile; the next run finishes it.
            log.warning("compaction of %s stopped: %s", partition.prefix, exc)
            return
        await _commit(store, keys, sources, manifest, step)
        result.sources = len(sources)
        result.parts = len(manifest["parts"])
        result.rows = int(manifest["rows"])
        result.input_bytes = sum(int(s["bytes"]) for s in manifest["sources"])
        result.output_bytes = sum(int(p["bytes"]) for p in manifest["parts"])
        log.info("compacted %s%s: %d objects (%d bytes) into %d files (%d bytes), %d rows",
                 partition.prefix, f" stream {uid}" if uid else "", result.sources, result.input_bytes,
                 result.parts, result.output_bytes, result.rows)
        return


class _Unreadable(Exception):
    def __init__(self, key: str, reason: str) -> None:
        super().__init__(key)
        self.key = key
        self.reason = reason


async def _write_parts(store: ArchiveStore, keys: catalog.CompactionKeys, stream: str, uid: str,
                       sources: list[str], options: _Options, step: Callable[[str], None]) -> dict[str, Any]:
    """Write the parts and markers of ``sources``; the manifest document to commit."""
    writer = _PartWriter(store, keys, stream, uid, options.compaction)
    manifest_sources = []
    try:
        async for key, size, table in _read_ahead(store, sources, stream, options):
            manifest_sources.append({"key": catalog.basename(key), "bytes": size, "rows": table.num_rows})
            await writer.add(table)
            step("source-read")
        parts = await writer.finish()
    finally:
        writer.discard()
    step("parts-written")
    await store.put_empty([keys.cover(k) for k in sources])
    step("markers-written")
    await _drop_stale(store, keys, {p["key"] for p in parts}, {catalog.basename(s) for s in sources})
    return {
        "version": MANIFEST_VERSION,
        "compaction_id": keys.compaction_id,
        "stream": stream,
        "stream_uid": uid,
        "partition": keys.partition,
        "created": dt.datetime.now(dt.UTC).isoformat(),
        "rows": sum(int(s["rows"]) for s in manifest_sources),
        "sources": manifest_sources,
        "parts": parts,
    }


async def _fetch(store: ArchiveStore, key: str) -> tuple[str, bytes]:
    return key, await store.get(key)


def _decode(objects: list[tuple[str, bytes]], stream: str, options: _Options) -> list[pa.Table]:
    try:
        return read_tables(objects, stream, protobuf_message=options.protobuf_message)
    except UnreadableObjectError as exc:
        bad = next((key for key in (k for k, _ in objects) if key in str(exc)), objects[0][0])
        raise _Unreadable(bad, str(exc)) from exc


async def _read_ahead(store: ArchiveStore, sources: list[str], stream: str,
                      options: _Options) -> AsyncIterator[tuple[str, int, pa.Table]]:
    """``(key, stored bytes, table)`` of each source, in order: ``READ_AHEAD`` fetched at once
    (small objects cost a round trip each, which in sequence dominates) and decoded together
    (``formats.read_tables``), the next group fetched while this one is decoded and written.
    Memory stays bounded by two groups of ``READ_AHEAD`` sources."""
    groups = [sources[i:i + READ_AHEAD] for i in range(0, len(sources), READ_AHEAD)]

    def fetch(group: list[str]) -> asyncio.Future[list[tuple[str, bytes]]]:
        return asyncio.ensure_future(asyncio.gather(*(_fetch(store, key) for key in group)))

    upcoming = fetch(groups[0]) if groups else None
    try:
        for index in range(len(groups)):
            assert upcoming is not None
            objects = await upcoming
            upcoming = fetch(groups[index + 1]) if index + 1 < len(groups) else None
            tables = await asyncio.to_thread(_decode, objects, stream, options)
            for (key, data), table in zip(objects, tables, strict=True):
                yield key, len(data), table
    finally:
        if upcoming is not None:
            upcoming.cancel()
            await asyncio.gather(upcoming, return_exceptions=True)


async def _drop_stale(store: ArchiveStore, keys: catalog.CompactionKeys, parts: set[str], covers: set[str]) -> None:
    """Delete what an earlier attempt of the same id wrote that this one did not (another split)."""
    stale = []
    for key in await store.list_keys(keys.folder):
        rest = key[len(keys.folder):]
        role, _, name = rest.partition("/")
        if (role == catalog.PARTS_DIR and key not in parts) or (role == catalog.COVERS_DIR and name not in covers):
            stale.append(key)
    if stale:
        await store.delete(stale)


async def _commit(store: ArchiveStore, keys: catalog.CompactionKeys, sources: list[str],
                  manifest: dict[str, Any], step: Callable[[str], None]) -> None:
    if sum(int(p["rows"]) for p in manifest["parts"]) != manifest["rows"]:
        raise AssertionError(f"{keys.folder}: parts hold {manifest['parts']} rows, sources {manifest['rows']}")
    path = store.scratch_path(keys.manifest)
    await asyncio.to_thread(_write_fsynced, path, orjson.dumps(manifest, option=orjson.OPT_INDENT_2))
    try:
        await store.put_file(keys.manifest, path)
    finally:
        path.unlink(missing_ok=True)
    step("manifest-written")
    await store.delete(sources)
    step("sources-deleted")
    await store.delete([keys.cover(s) for s in sources])
    step("markers-deleted")


def _write_fsynced(path: Path, data: bytes) -> None:
    with open(path, "wb") as handle:
        handle.write(data)
        handle.flush()
        os.fsync(handle.fileno())


class _PartWriter:
    """Rows in, Parquet parts of about ``target_file_bytes`` out (uploaded as each one closes)."""

    def __init__(self, store: ArchiveStore, keys: catalog.CompactionKeys, stream: str, uid: str,
                 settings: CompactionSettings) -> None:
        self._store = store
        self._keys = keys
        self._stream = stream
        self._uid = uid
        self._settings = settings
        self._buffer: list[pa.Table] = []
        self._buffered = 0
        self._writer: pq.ParquetWriter | None = None
        self._path: Path | None = None
        self._rows = 0
        self.parts: list[dict[str, Any]] = []

    async def add(self, table: pa.Table) -> None:
        if not table.num_rows:
            return
        self._buffer.append(table)
        self._buffered += table.nbytes
        if self._buffered >= self._settings.row_group_bytes:
            await self._flush()

    async def finish(self) -> list[dict[str, Any]]:
        await self._flush()
        await self._close_part()
        return self.parts

    def discard(self) -> None:
        """Drop a part being written (an attempt that failed)."""
        if self._writer is not None:
            self._writer.close()
            self._writer = None
        if self._path is not None:
            self._path.unlink(missing_ok=True)
            self._path = None

    def _schema(self) -> pa.Schema:
        if self._stream == "events":
            return schema.EVENTS_SCHEMA
        known = [self._writer.schema] if self._writer is not None else []
        return schema.logs_schema_for([*known, *(t.schema for t in self._buffer)])

    async def _flush(self) -> None:
        if not self._buffer:
            return
        wanted = self._schema()
        if self._writer is not None and not self._writer.schema.equals(wanted, check_metadata=False):
            # A field this part's schema lacks (a container with new metadata): a new part.
            await self._close_part()
        tables, self._buffer, self._buffered = self._buffer, [], 0
        await asyncio.to_thread(self._write, tables, wanted)
        if self._path is not None and self._path.stat().st_size >= self._settings.target_file_bytes:
            await self._close_part()

    def _write(self, tables: list[pa.Table], wanted: pa.Schema) -> None:
        group = pa.concat_tables([schema.conform(t, wanted) for t in tables])
        if self._writer is None:
            key = self._keys.part(len(self.parts), self._uid)
            self._path = self._store.scratch_path(key)
            self._writer = pq.ParquetWriter(
                self._path, wanted, compression="zstd", compression_level=self._settings.zstd_level,
                use_dictionary=self._dictionary_columns(wanted), write_statistics=True,
            )
        self._writer.write_table(group, row_group_size=max(group.num_rows, 1))
        self._rows += group.num_rows

    def _dictionary_columns(self, wanted: pa.Schema) -> list[str]:
        if self._stream == "events":
            return EVENT_DICTIONARY_COLUMNS
        paths = [f.name for f in wanted if pa.types.is_dictionary(f.type)]
        for f in wanted:
            if pa.types.is_struct(f.type):
                paths += [f"{f.name}.{c.name}" for c in f.type if pa.types.is_dictionary(c.type)]
        return paths

    async def _close_part(self) -> None:
        if self._writer is None or self._path is None:
            return
        writer, path = self._writer, self._path
        self._writer = None
        await asyncio.to_thread(_close_fsynced, writer, path)
        key = self._keys.part(len(self.parts), self._uid)
        await self._store.put_file(key, path)
        self.parts.append({"key": key, "bytes": path.stat().st_size, "rows": self._rows})
        path.unlink(missing_ok=True)
        self._path = None
        self._rows = 0


def _close_fsynced(writer: pq.ParquetWriter, path: Path) -> None:
    writer.close()
    with open(path, "rb+") as handle:
        os.fsync(handle.fileno())
