"""``kubestream query``: SQL (DuckDB) on the ``events`` and ``logs`` views of the archive.

Shared with ``kubestream timeline``: where the archive is (``--config`` or ``--archive``), the
window (``--since``/``--until``), the output format and ``--explain``. Every problem the user can
fix (bad SQL, unknown view or column, an empty window, an archive that cannot be reached) is one
line on stderr and exit code 2.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Final, TextIO

from kubestream.config.loader import load_config
from kubestream.errors import ConfigError
from kubestream.query.engine import QueryError, rows_of, run_query
from kubestream.query.location import (
    ArchiveLocation,
    ArchiveUnreachable,
    location_from_sink,
    location_from_url,
)
from kubestream.query.output import FORMATS, write_rows
from kubestream.query.window import TimeWindow

EXIT_OK: Final = 0
EXIT_USAGE: Final = 2
CONFIG_ENV: Final = "KUBESTREAM_CONFIG"
ARCHIVE_ENV: Final = "KUBESTREAM_ARCHIVE"


def add_archive_options(parser: argparse.ArgumentParser, *, since_default: str | None) -> None:
    """Where the archive is, the window, the output: the options query and timeline share."""
    where = parser.add_argument_group("archive (one of)")
    where.add_argument("--config", "-c", type=Path, default=None,
                       help=f"the agent's configuration: read the archive its sink writes (default: ${CONFIG_ENV})")
    where.add_argument("--archive", "-a", default=None, metavar="URL",
                       help="a directory, s3://bucket/prefix, gs://bucket/prefix or az://container/prefix "
                            f"(default: ${ARCHIVE_ENV})")
    where.add_argument("--endpoint", default=None, metavar="URL",
                       help="with --archive: the endpoint of an S3-compatible server or an emulator")
    where.add_argument("--region", default=None, help="with --archive s3://: the bucket's region")
    where.add_argument("--cluster", default=None, metavar="NAME",
                       help="only this cluster's records (an archive several clusters share: only its "
                            "cluster=NAME partitions are listed; with --config of an agent that writes "
                            "cluster.partition, its cluster.name by default)")
    where.add_argument("--all-clusters", action="store_true",
                       help="every cluster's records, even with --config of a partitioned agent")
    window = parser.add_argument_group("time window (partitions outside it are neither listed nor read)")
    window.add_argument("--since", default=since_default, metavar="WHEN",
                        help="start: a duration back from now (2h, 30m, 1d) or an RFC 3339 time"
                             + (f" (default {since_default})" if since_default else " (default: the beginning)"))
    window.add_argument("--until", default=None, metavar="WHEN", help="end (exclusive), same forms (default: now)")
    parser.add_argument("--format", "-o", choices=FORMATS, default=None,
                        help="output: an aligned table (default on a terminal), csv (default otherwise), jsonl")
    parser.add_argument("--explain", action="store_true",
                        help="report on stderr how many prefixes were listed and objects listed and read")


def add_query_parser(commands: argparse._SubParsersAction[argparse.ArgumentParser],
                     parents: list[argparse.ArgumentParser]) -> None:
    """Register ``kubestream query``."""
    query = commands.add_parser("query", parents=parents, help="SQL on the archive (views: events, logs)",
                                description="Run SQL (DuckDB) on the archive's views events and logs; "
                                            "see docs/querying.md for their columns.")
    add_archive_options(query, since_default=None)
    query.add_argument("sql", metavar="SQL", help='e.g. "select reason, sum(count_delta) from events group by 1"')


def resolve_archive(args: argparse.Namespace) -> tuple[ArchiveLocation, str | None]:
    """The archive ``--archive``/``--config`` name, and the cluster to read (None: every one).

    ``--cluster`` wins. Otherwise an agent's configuration that partitions by cluster names its own
    cluster: ``query --config prod.yaml`` is about prod, even in a bucket several clusters share.
    Without ``cluster.partition`` there is no default: rows from before the ``cluster`` field (NULL)
    would be filtered out of an archive only one cluster writes.
    """
    if args.archive and args.config:
        raise ConfigError("pass --config or --archive, not both")
    if args.cluster and getattr(args, "all_clusters", False):
        raise ConfigError("pass --cluster or --all-clusters, not both")
    url = args.archive or (None if args.config else os.environ.get(ARCHIVE_ENV))
    if url:
        return location_from_url(url, endpoint=args.endpoint, region=args.region), args.cluster
    path = args.config or (Path(os.environ[CONFIG_ENV]) if os.environ.get(CONFIG_ENV) else None)
    if path is None:
        raise ConfigError(f"no archive: pass --archive URL or --config FILE (or set ${ARCHIVE_ENV} / ${CONFIG_ENV})")
    settings = load_config(path).settings
    cluster = args.cluster
    if cluster is None and not getattr(args, "all_clusters", False) and settings.cluster.partition:
        cluster = settings.cluster.name
    # The archive is the first file/object-store destination (Settings.archive_destination).
    return location_from_sink(settings.archive_destination() or settings.sink), cluster


def output_format(args: argparse.Namespace, out: TextIO) -> str:
    if args.format:
        return str(args.format)
    return "table" if out.isatty() else "csv"


def guarded(name: str, body: Callable[[], int]) -> int:
    """Run a command body; every error the user can fix becomes one line and exit 2."""
    try:
        return body()
    except (ConfigError, QueryError) as exc:
        print(f"kubestream {name}: {exc}", file=sys.stderr)
    except ArchiveUnreachable as exc:
        print(f"kubestream {name}: archive unreachable: {exc}", file=sys.stderr)
    except BrokenPipeError:
        # `kubestream query ... | head`: the reader has all it wanted. Python's own advice:
        # point stdout at /dev/null so the interpreter's final flush does not fail again.
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        return EXIT_OK
    return EXIT_USAGE


def query_command(args: argparse.Namespace, out: TextIO | None = None) -> int:
    """``kubestream query``."""
    stream = out or sys.stdout

    def body() -> int:
        location, cluster = resolve_archive(args)
        window = TimeWindow.parse(args.since, args.until)
        archive, cursor = run_query(location, window, args.sql, cluster)
        columns = [d[0] for d in cursor.description or []]
        rows = write_rows(output_format(args, stream), columns, rows_of(cursor), stream)
        if args.explain:
            explain(location, window, archive.loaded.describe(), rows, cluster)
        return EXIT_OK

    return guarded("query", body)


def explain(location: ArchiveLocation, window: TimeWindow, lines: list[str], rows: int,
            cluster: str | None = None) -> None:
    """The ``--explain`` report (stderr, so the result stays clean for pipes)."""
    print(f"archive: {location.description}; window: {window.describe()}"
          + (f"; cluster: {cluster}" if cluster else ""), file=sys.stderr)
    for line in lines or ["no view read"]:
        print(f"  {line}", file=sys.stderr)
    print(f"  result: {rows} rows", file=sys.stderr)
