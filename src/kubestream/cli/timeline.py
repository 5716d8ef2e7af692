"""``kubestream timeline``: one pod's, workload's or namespace's events and log lines, in order."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import TextIO

from kubestream.cli.query import (
    EXIT_OK,
    add_archive_options,
    explain,
    guarded,
    output_format,
    resolve_archive,
)
from kubestream.errors import ConfigError
from kubestream.query.engine import Archive, rows_of
from kubestream.query.html import render_page
from kubestream.query.output import write_rows
from kubestream.query.timeline import COLUMNS, parse_target, timeline_sql
from kubestream.query.window import TimeWindow

DEFAULT_SINCE = "1h"


def add_timeline_parser(commands: argparse._SubParsersAction[argparse.ArgumentParser],
                        parents: list[argparse.ArgumentParser]) -> None:
    """Register ``kubestream timeline``."""
    timeline = commands.add_parser(
        "timeline", parents=parents, help="events and log lines of a pod, workload or namespace, in order",
        description="The events and log lines of one pod, workload or namespace in one chronological view, "
                    "joined on pod UID.")
    timeline.add_argument("target", nargs="?", metavar="TARGET",
                          help="pod/NAME (or NAME), deploy/NAME, sts/NAME, ds/NAME, job/NAME, cronjob/NAME, ns/NAME")
    timeline.add_argument("--namespace", "-n", default=None, help="the target's namespace (default: any)")
    timeline.add_argument("--html", type=Path, default=None, metavar="FILE",
                          help="also write a self-contained HTML page with charts per minute")
    timeline.add_argument("--limit", type=int, default=None, help="at most this many rows")
    add_archive_options(timeline, since_default=DEFAULT_SINCE)


def timeline_command(args: argparse.Namespace, out: TextIO | None = None) -> int:
    """``kubestream timeline``."""
    stream = out or sys.stdout

    def body() -> int:
        target = parse_target(args.target, args.namespace)
        location, cluster = resolve_archive(args)
        window = TimeWindow.parse(args.since, args.until)
        archive = Archive(location, window, cluster)
        archive.load(["events", "logs"])
        rows = list(rows_of(archive.execute(timeline_sql(target, limit=args.limit))))
        if args.html is not None:
            title = f"Timeline of {target.describe()}"
            subtitle = f"{window.describe()} · {location.description} · {len(rows)} rows"
            try:
                args.html.write_text(render_page(title, subtitle, rows), encoding="utf-8")
            except OSError as exc:
                raise ConfigError(f"cannot write {args.html}: {exc.strerror or exc}", key="--html") from exc
        count = write_rows(output_format(args, stream), list(COLUMNS), rows, stream)
        if args.explain:
            explain(location, window, archive.loaded.describe(), count, cluster)
        return EXIT_OK

    return guarded("timeline", body)
