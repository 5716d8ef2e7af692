"""DuckDB over the archive: the ``events`` and ``logs`` tables of a window, and SQL on them.

DuckDB runs embedded and never downloads anything: extension auto-install is switched off (these
machines and many air-gapped clusters have no network), and the archive is read by kubestream
(``query.scan``, through the sinks' readers) and handed to DuckDB as Arrow batches. Only the
views the SQL names are read; batches are appended as they arrive, so Python holds one batch of
rows at a time and DuckDB keeps the rest in its own compressed storage.
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

import duckdb
import pyarrow as pa

from kubestream.errors import ConfigError
from kubestream.query.location import ArchiveLocation, ArchiveUnreachable, open_reader
from kubestream.query.scan import PartitionReader, ScanStats, list_window
from kubestream.query.shape import VIEWS, empty_table
from kubestream.query.window import TimeWindow

_FLUSH_ROWS = 65536
_MISSING_COLUMN = re.compile(r'Referenced column "?([^"\s]+)"? not found')
_MISSING_QUALIFIER = re.compile(r'Referenced table "?([^"\s]+)"? not found')
_MISSING_TABLE = re.compile(r"Table with name (\S+) does not exist")


class QueryError(Exception):
    """The SQL cannot run: the message is one line for the user (exit 2)."""


@dataclass
class LoadResult:
    """What loading the views touched, per view (``--explain``)."""

    stats: dict[str, ScanStats] = field(default_factory=dict)

    def describe(self) -> list[str]:
        return [s.describe() for s in self.stats.values()]


def referenced_views(sql: str) -> list[str]:
    """The views ``sql`` reads, in ``VIEWS`` order; ``QueryError`` for a table that is none."""
    try:
        names = {n.lower() for n in duckdb.get_table_names(sql)}
    except duckdb.ParserException as exc:
        raise QueryError(f"SQL syntax error: {_first_line(exc)}") from exc
    except duckdb.Error:
        # get_table_names binds some statements (USING joins); load every view and let the
        # real execution report what is wrong.
        return list(VIEWS)
    unknown = sorted(names - set(VIEWS))
    if unknown:
        raise QueryError(f"unknown view {unknown[0]!r}: the views are {', '.join(VIEWS)}")
    return [v for v in VIEWS if v in names]


def _first_line(exc: BaseException) -> str:
    return " ".join(str(exc).split("\n")[0].split())


def connect() -> duckdb.DuckDBPyConnection:
    """An in-memory DuckDB that never touches the network and shows times in UTC."""
    con = duckdb.connect(":memory:", config={"autoinstall_known_extensions": False})
    con.execute("SET TimeZone = 'UTC'")
    return con


class Archive:
    """The ``events``/``logs`` tables of one archive and window in a DuckDB connection."""

    def __init__(self, location: ArchiveLocation, window: TimeWindow, cluster: str | None = None) -> None:
        self.location = location
        self.window = window
        self.cluster = cluster
        """Only this cluster's records (``--cluster``): its partitions listed, its rows kept."""
        self.con = connect()
        self.loaded = LoadResult()

    def load(self, views: Sequence[str]) -> LoadResult:
        """Create every view (empty ones too, so SQL on an absent stream still runs), read ``views``."""
        for view in VIEWS:
            self.con.register("_kubestream_empty", empty_table(view))
            self.con.execute(f"CREATE TABLE {view} AS SELECT * FROM _kubestream_empty")
            self.con.unregister("_kubestream_empty")
        if views:
            asyncio.run(self._load(views))
        return self.loaded

    async def _load(self, views: Sequence[str]) -> None:
        reader = open_reader(self.location)
        try:
            for view in views:
                stats = self.loaded.stats[view] = ScanStats(view)
                partitions = await list_window(reader, self.location.prefix, view, self.window, stats, self.cluster)
                appender = _Appender(self.con, view)
                await PartitionReader(reader, view, self.window, stats, appender.add,
                                      self.cluster).read_all(partitions)
                appender.flush()
        finally:
            await reader.close()

    def execute(self, sql: str, views: Sequence[str] = ()) -> duckdb.DuckDBPyConnection:
        """Run ``sql``; ``QueryError`` with the valid names (of ``views``, default all) for an
        unknown column or view."""
        try:
            return self.con.execute(sql)
        except duckdb.BinderException as exc:
            columns = "; ".join(f"{v} has {', '.join(c.name for c in VIEWS[v])}" for v in views or VIEWS)
            match = _MISSING_COLUMN.search(str(exc))
            if match:
                raise QueryError(f"unknown column {match.group(1)!r} ({columns})") from exc
            match = _MISSING_QUALIFIER.search(str(exc))
            if match:
                # The nested names of docs/schema.md (event.reason) are flat columns here (reason).
                raise QueryError(f"unknown column {match.group(1) + '.…'!r}: the views' columns are flat "
                                 f"({columns})") from exc
            raise QueryError(_first_line(exc)) from exc
        except duckdb.CatalogException as exc:
            match = _MISSING_TABLE.search(str(exc))
            if match:
                raise QueryError(f"unknown view {match.group(1)!r}: the views are {', '.join(VIEWS)}") from exc
            raise QueryError(_first_line(exc)) from exc
        except duckdb.Error as exc:
            raise QueryError(_first_line(exc)) from exc


class _Appender:
    """Collects flat tables and appends them to a DuckDB table in large batches."""

    def __init__(self, con: duckdb.DuckDBPyConnection, view: str) -> None:
        self._con, self._view = con, view
        self._pending: list[pa.Table] = []
        self._rows = 0

    def add(self, table: pa.Table) -> None:
        self._pending.append(table)
        self._rows += table.num_rows
        if self._rows >= _FLUSH_ROWS:
            self.flush()

    def flush(self) -> None:
        if not self._pending:
            return
        batch = pa.concat_tables(self._pending)
        self._pending, self._rows = [], 0
        self._con.register("_kubestream_batch", batch)
        try:
            self._con.execute(f"INSERT INTO {self._view} SELECT * FROM _kubestream_batch")
        finally:
            self._con.unregister("_kubestream_batch")


def run_query(location: ArchiveLocation, window: TimeWindow, sql: str,
              cluster: str | None = None) -> tuple[Archive, duckdb.DuckDBPyConnection]:
    """Load what ``sql`` needs of the archive (of ``cluster`` only, if given) and run it (the
    cursor holds the result)."""
    views = referenced_views(sql)
    archive = Archive(location, window, cluster)
    archive.load(views)
    return archive, archive.execute(sql, views)


def rows_of(cursor: duckdb.DuckDBPyConnection, size: int = 4096) -> Iterator[tuple[Any, ...]]:
    """The result rows, fetched in pieces."""
    while True:
        chunk = cursor.fetchmany(size)
        if not chunk:
            return
        yield from chunk


__all__ = ["Archive", "ArchiveUnreachable", "ConfigError", "QueryError", "referenced_views", "rows_of", "run_query"]
