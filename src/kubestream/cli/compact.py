"""``kubestream compact``: rewrite the closed partitions of the archive into a few Parquet files.

One-shot: it compacts every partition whose hour ended ``compaction.grace_s`` ago and exits. A
kill at any moment is safe; running it again completes the work (``kubestream.archive.compact``).
Exit codes: 0 done (unreadable objects are left as they are and reported), 2 configuration
error, 3 the archive is unusable or unreachable.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
from typing import TYPE_CHECKING

from kubestream.config.settings import Settings
from kubestream.errors import SinkError

if TYPE_CHECKING:
    from kubestream.archive.compact import CompactionReport

EXIT_OK = 0
EXIT_SINK = 3
_MAX_GRACE_S = 10 * 365 * 86400.0


def add_parser(commands: argparse._SubParsersAction[argparse.ArgumentParser],
               parents: list[argparse.ArgumentParser]) -> None:
    """Register ``compact`` among the sub-commands."""
    compact = commands.add_parser("compact", parents=parents,
                                  help="compact closed partitions of the archive into Parquet files")
    compact.add_argument("--stream", action="append", choices=["events", "logs"], default=None,
                         help="compact only this stream (repeatable; default: compaction.streams)")
    compact.add_argument("--grace", type=float, default=None, metavar="SECONDS",
                         help="compact hours that ended at least this long ago (default: compaction.grace_s)")


def compact_command(settings: Settings, args: argparse.Namespace) -> int:
    """Run one compaction of the configured archive; print a summary line."""
    if args.grace is not None:
        settings = settings.model_copy(update={
            "compaction": settings.compaction.model_copy(update={"grace_s": min(max(0.0, args.grace), _MAX_GRACE_S)})})
    try:
        report = asyncio.run(_run(settings, args.stream))
    except SinkError as exc:
        print(f"kubestream: archive unusable: {' '.join(str(exc).split())}", file=sys.stderr)
        return EXIT_SINK
    print(f"compacted {report.sources} objects ({report.input_bytes} bytes) into {report.parts} Parquet files "
          f"({report.output_bytes} bytes), {report.rows} rows, in {report.seconds:.1f} s; "
          f"{report.partitions_seen} partitions seen, {report.partitions_open} still open")
    for key in report.unreadable:
        print(f"kubestream: warning: {key} is not readable and was left as it is", file=sys.stderr)
    return EXIT_OK


async def _run(settings: Settings, streams: list[str] | None) -> CompactionReport:
    # Imported here: the archive loads pyarrow (and obstore), which other commands never need.
    from kubestream.archive.compact import compact_archive
    from kubestream.archive.store import open_archive

    store = open_archive(settings)
    try:
        return await compact_archive(store, settings, streams=streams)
    finally:
        await store.close()
