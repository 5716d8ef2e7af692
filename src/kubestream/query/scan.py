"""Listing the partitions of a window and turning their objects into flat Arrow tables.

Only the ``dt=/hour=`` prefixes of the window are listed (``TimeWindow.hours``), in every layout
the archive has: without ``--cluster`` the stream's ``cluster=<name>`` folders are found by one
delimiter listing of the stream's folder, and each one's hours are listed too; an open window
lists the stream's folder once and drops partitions outside it before reading anything. The key
layout is ``pipeline.naming``'s. Each
partition's listing goes through ``archive.catalog.live_keys``, which knows compaction: compacted
files replace the sources they cover, manifests and markers are not data.

Objects are fetched concurrently and decoded in worker threads (Parquet and decompression release
the GIL); rows outside the window are dropped per object, so memory holds only what the query can
see. An object that cannot be decoded is skipped with one warning line, never the whole query.
"""

from __future__ import annotations

import asyncio
import logging
import posixpath
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
from google.protobuf.message import DecodeError

from kubestream.archive.catalog import live_keys
from kubestream.archive.store import list_folders_of
from kubestream.errors import SinkError
from kubestream.pipeline.encode.compress import Compressor, GzipCompression, NoCompression, ZstdCompression
from kubestream.pipeline.encode.ndjson import NdjsonFormat
from kubestream.pipeline.encode.protobuf import K8streamProtobufFormat, KubestreamProtobufFormat, unframe
from kubestream.pipeline.naming import HOUR_LEVEL, cluster_of_level, hour_folder, parse_key, stream_folder
from kubestream.pipeline.proto import kubestream_pb2
from kubestream.query.location import ArchiveReader, ArchiveUnreachable
from kubestream.query.shape import events_table, flatten_parquet, l9event_record, logs_table
from kubestream.query.window import TimeWindow, partition_hour

log = logging.getLogger("kubestream.query")

LIST_CONCURRENCY = 8
READ_CONCURRENCY = 16
PARTITION_CONCURRENCY = 3
_COMPRESSIONS: dict[str, Compressor] = {"gz": GzipCompression(), "zst": ZstdCompression()}


@dataclass
class ScanStats:
    """What one view's scan touched (``--explain``)."""

    view: str
    prefixes_listed: int = 0
    objects_listed: int = 0
    objects_read: int = 0
    bytes_read: int = 0
    rows: int = 0
    skipped: Counter[str] = field(default_factory=Counter)
    clusters: list[str] | None = None
    """The ``cluster=`` folders found by a one-level listing of the stream's folder (None: not listed)."""

    def describe(self) -> str:
        skipped = ", ".join(f"{n} {why}" for why, n in sorted(self.skipped.items()))
        found = "" if self.clusters is None else \
            f"; cluster= folders (1 folder listing): {', '.join(self.clusters) or 'none'}"
        return (f"{self.view}: {self.prefixes_listed} prefixes listed, {self.objects_listed} objects listed, "
                f"{self.objects_read} read ({self.bytes_read / 1e6:.2f} MB), {self.rows} rows in the window"
                + (f"; skipped {skipped}" if skipped else "") + found)


def stream_prefix(prefix: str, view: str) -> str:
    """``<prefix>/<view>/``: the folder of one stream."""
    return stream_folder(prefix, view)


def _of_cluster(key: str, cluster: str | None) -> bool:
    """Whether ``key`` may hold records of ``cluster``: its ``cluster=`` level, if any, names it."""
    if cluster is None:
        return True
    level = parse_key(key.rsplit("/", 1)[0]).cluster
    return level is None or level == cluster


async def _list(reader: ArchiveReader, prefix: str) -> list[str]:
    try:
        return await reader.list_keys(prefix)
    except (SinkError, OSError) as exc:
        raise ArchiveUnreachable(_one_line(str(exc))) from exc


async def _clusters(reader: ArchiveReader, prefix: str, view: str, stats: ScanStats) -> list[str]:
    """The names of the ``cluster=<name>`` folders directly under the stream's folder."""
    try:
        folders = await list_folders_of(reader, stream_prefix(prefix, view))
    except (SinkError, OSError) as exc:
        raise ArchiveUnreachable(_one_line(str(exc))) from exc
    stats.clusters = sorted(name for folder in folders if (name := cluster_of_level(folder)) is not None)
    return stats.clusters


def _one_line(text: str) -> str:
    return " ".join(text.split())[:500]


async def list_window(reader: ArchiveReader, prefix: str, view: str, window: TimeWindow,
                      stats: ScanStats, cluster: str | None = None) -> dict[str, list[str]]:
    """Every key listed for ``view`` in ``window``, by partition folder; partitions pruned first.

    With ``cluster``, only its ``cluster=<name>`` partitions and those of archives without that
    level are listed (an archive shared by clusters keeps each one's batches apart); without,
    the partitions of every cluster found under the stream's folder too."""
    if window.since is None:
        prefixes = [stream_prefix(prefix, view)]
    else:
        layouts: list[str | None] = [None, cluster] if cluster is not None else \
            [None, *await _clusters(reader, prefix, view, stats)]
        prefixes = [hour_folder(prefix, view, hour, level) for hour in window.hours() for level in layouts]
    gate = asyncio.Semaphore(LIST_CONCURRENCY)

    async def one(folder: str) -> list[str]:
        async with gate:
            return await _list(reader, folder)

    listings = await asyncio.gather(*(one(p) for p in prefixes))
    stats.prefixes_listed += len(prefixes)
    partitions: dict[str, list[str]] = {}
    for key in (key for listing in listings for key in listing):
        stats.objects_listed += 1
        if _of_cluster(key, cluster):
            partitions.setdefault(partition_folder(key), []).append(key)
    return {folder: sorted(keys) for folder, keys in sorted(partitions.items())
            if _partition_in_window(folder, window)}


def partition_folder(key: str) -> str:
    """The ``…/dt=…/hour=HH`` folder of ``key`` (compactions live in folders inside it)."""
    parts = key.split("/")
    for i, part in enumerate(parts[:-1]):
        if part.startswith(HOUR_LEVEL):
            return "/".join(parts[: i + 1])
    return posixpath.dirname(key)


def _partition_in_window(folder: str, window: TimeWindow) -> bool:
    hour = partition_hour(folder + "/")
    return hour is None or window.holds_partition(hour)


# -- decoding ---------------------------------------------------------------------------------------


class Undecodable(Exception):
    """An object whose bytes do not decode as its name says."""


def _compression(name: str) -> tuple[str, Compressor]:
    stem, _, suffix = name.rpartition(".")
    if suffix in _COMPRESSIONS:
        return stem, _COMPRESSIONS[suffix]
    return name, NoCompression()


def is_data(key: str) -> bool:
    """Whether ``key`` names a batch or compacted file (not a manifest, marker or temp file)."""
    name = posixpath.basename(key)
    if name.startswith("."):
        return False
    stem, _ = _compression(name)
    return stem.endswith((".ndjson", ".pb", ".parquet"))


def _protobuf_records(data: bytes) -> list[dict[str, object]]:
    """kubestream ``Record`` or k8stream ``L9Event`` messages (sniffed from the first one)."""
    messages = unframe(data)
    if not messages:
        return []
    # Both write ``.pb``. An L9Event's field 2 is a varint (a Record's a string: parsing fails),
    # and its field 1 the event uid where a Record has its kind.
    try:
        first = kubestream_pb2.Record.FromString(messages[0])
    except DecodeError:
        first = None
    if first is not None and first.HasField("kind") and first.kind in ("event", "log"):
        return KubestreamProtobufFormat().parse(data)
    return [l9event_record(m) for m in K8streamProtobufFormat().parse(data)]


def decode_object(key: str, data: bytes, view: str) -> pa.Table:
    """The rows of one archive object in ``view``'s flat shape; ``Undecodable`` if it is damaged."""
    name = posixpath.basename(key)
    try:
        if name.endswith(".parquet"):
            return flatten_parquet(pq.read_table(pa.BufferReader(data)), view)
        stem, compressor = _compression(name)
        raw = compressor.decompress(data)
        records = _protobuf_records(raw) if stem.endswith(".pb") else NdjsonFormat().parse(raw)
    except (OSError, ValueError, EOFError, DecodeError, pa.ArrowException) as exc:
        # zstd, gzip, orjson, protobuf and Arrow all raise one of these on damaged bytes.
        raise Undecodable(_one_line(f"{type(exc).__name__}: {exc}")) from exc
    return events_table(records) if view == "events" else logs_table(records)  # type: ignore[arg-type]


def in_window(table: pa.Table, window: TimeWindow, cluster: str | None = None) -> pa.Table:
    """The rows of ``table`` whose ``time`` is in ``window`` (rows without a time only in an open
    one) and, with ``cluster``, whose ``cluster`` is that one."""
    mask = None
    if cluster is not None:
        mask = pc.equal(table.column("cluster"), pa.scalar(cluster, table.schema.field("cluster").type))
    if window.since is None and window.until is None:
        return table if mask is None else table.filter(pc.fill_null(mask, False))
    times = table.column("time")
    if window.since is not None:
        after = pc.greater_equal(times, pa.scalar(window.since, times.type))
        mask = after if mask is None else pc.and_(mask, after)
    if window.until is not None:
        before = pc.less(times, pa.scalar(window.until, times.type))
        mask = before if mask is None else pc.and_(mask, before)
    return table.filter(pc.fill_null(mask, False))


class _Vanished(Exception):
    """A listed object was gone when read: compaction replaced it since the listing."""


def _is_not_found(exc: BaseException) -> bool:
    return isinstance(exc, FileNotFoundError) or isinstance(exc.__cause__, FileNotFoundError)


class PartitionReader:
    """Reads partitions for one view: fetch, decode, window filter, hand the rows to ``emit``."""

    def __init__(self, reader: ArchiveReader, view: str, window: TimeWindow, stats: ScanStats,
                 emit: Callable[[pa.Table], None], cluster: str | None = None) -> None:
        self._reader, self._view, self._window, self._stats, self._emit = reader, view, window, stats, emit
        self._cluster = cluster
        self._gate = asyncio.Semaphore(READ_CONCURRENCY)
        # A partition's tables are held until it is complete: bound how many are in flight.
        self._partitions = asyncio.Semaphore(PARTITION_CONCURRENCY)

    async def read_all(self, partitions: dict[str, list[str]]) -> None:
        """Read every partition of ``partitions`` (folder → listed keys)."""
        async def one(folder: str, keys: list[str]) -> None:
            async with self._partitions:
                await self.read_partition(folder, keys)

        await asyncio.gather(*(one(folder, keys) for folder, keys in partitions.items()))

    async def read_partition(self, folder: str, listed: list[str]) -> None:
        """All live objects of one partition; re-listed if compaction moved them meanwhile.

        A partition's rows are emitted only once all its objects were read, so a retry after a
        vanished source can never count a record twice (the compacted file holds it again).
        """
        for attempt in range(_RELIST_ATTEMPTS):
            keys = [key for key in live_keys(listed) if self._keep(key)]
            try:
                tables = await asyncio.gather(*(self._read(key) for key in keys))
            except _Vanished:
                if attempt + 1 == _RELIST_ATTEMPTS:
                    raise ArchiveUnreachable(f"{folder}/ keeps changing while it is read (compaction?); "
                                             "try again") from None
                listed = sorted(await _list(self._reader, folder + "/"))
                continue
            for table in tables:
                if table is None:
                    continue
                rows = in_window(table, self._window, self._cluster)
                self._stats.rows += rows.num_rows
                if rows.num_rows:
                    self._emit(rows)
            return

    def _keep(self, key: str) -> bool:
        if is_data(key):
            return True
        self._stats.skipped["not data"] += 1
        return False

    async def _read(self, key: str) -> pa.Table | None:
        async with self._gate:
            try:
                data = await self._reader.get(key)
            except (SinkError, OSError) as exc:
                if _is_not_found(exc):
                    raise _Vanished(key) from exc
                raise ArchiveUnreachable(_one_line(f"reading {key}: {exc}")) from exc
            try:
                table = await asyncio.to_thread(decode_object, key, data, self._view)
            except Undecodable as exc:
                log.warning("kubestream query: skipping %s: it does not decode (%s)", key, exc)
                self._stats.skipped["undecodable"] += 1
                return None
        self._stats.objects_read += 1
        self._stats.bytes_read += len(data)
        return table


_RELIST_ATTEMPTS = 3
