"""``kubestream query`` as a real process on the real agent's file archive: the views hold every
archived record once, in the documented flat shape; output formats; one-line errors (exit 2)."""

from __future__ import annotations

import csv
import io
import json
from collections import Counter
from pathlib import Path

import orjson
from tests.query.conftest import AgentArchive, run_cli

from kubestream.query.shape import EVENT_COLUMNS, LOG_COLUMNS


def _jsonl(text: str) -> list[dict[str, object]]:
    return [orjson.loads(line) for line in text.splitlines() if line]


def test_views_hold_every_archived_record_once(agent_archive: AgentArchive) -> None:
    sql = ("select (select count(*) from events) events, (select sum(count_delta) from events) occurrences, "
           "(select count(*) from logs) lines, (select count(distinct file_path || ':' || file_offset) from logs) keys")
    done = run_cli("query", "--archive", str(agent_archive.root), "--format", "jsonl", sql)
    assert done.returncode == 0, done.stderr
    [row] = _jsonl(done.stdout)
    events, logs = agent_archive.events, agent_archive.logs
    assert len(logs) > 300 and len(events) > 100
    assert row == {"events": len(events), "occurrences": sum(r["event"]["count_delta"] for r in events),
                   "lines": len(logs), "keys": len(logs)}


def test_flat_columns_carry_the_record_fields(agent_archive: AgentArchive) -> None:
    done = run_cli("query", "-a", str(agent_archive.root), "-o", "jsonl",
                   "select pod_uid, pod, namespace, container, node, stream, message, file_path, file_offset, "
                   "workload_kind, workload_name, labels['app'] app from logs order by file_path, file_offset")
    assert done.returncode == 0, done.stderr
    got = _jsonl(done.stdout)
    want = sorted(agent_archive.logs, key=lambda r: (r["file"]["path"], r["file"]["offset"]))
    assert len(got) == len(want)
    for row, record in zip(got, want, strict=True):
        k8s = record["kubernetes"]
        assert (row["pod_uid"], row["pod"], row["namespace"], row["container"], row["node"]) == (
            k8s["pod_uid"], k8s["pod_name"], k8s["namespace"], k8s["container_name"], k8s.get("node_name"))
        assert (row["stream"], row["message"], row["file_path"], row["file_offset"]) == (
            record["stream"], record["message"], record["file"]["path"], record["file"]["offset"])
        assert (row["workload_kind"], row["workload_name"]) == (k8s.get("owner_kind"), k8s.get("owner_name"))
        assert row["app"] == k8s.get("labels", {}).get("app")
    # Events: reason counts and the pod join column.
    done = run_cli("query", "-a", str(agent_archive.root), "-o", "csv",
                   "select reason, sum(count_delta) n from events group by 1 order by 1")
    rows = list(csv.DictReader(io.StringIO(done.stdout)))
    truth: Counter[str] = Counter()
    for r in agent_archive.events:
        truth[r["event"]["reason"]] += r["event"]["count_delta"]
    assert {r["reason"]: int(r["n"]) for r in rows} == dict(truth)


def test_describe_shows_the_documented_shape(agent_archive: AgentArchive) -> None:
    for view, columns in (("events", EVENT_COLUMNS), ("logs", LOG_COLUMNS)):
        done = run_cli("query", "-a", str(agent_archive.root), "-o", "csv", f"describe {view}")
        assert done.returncode == 0, done.stderr
        names = [r["column_name"] for r in csv.DictReader(io.StringIO(done.stdout))]
        assert names == [c.name for c in columns]


def test_table_output_is_aligned(agent_archive: AgentArchive) -> None:
    done = run_cli("query", "-a", str(agent_archive.root), "-o", "table",
                   "select stream, count(*) lines from logs group by 1 order by 1")
    assert done.returncode == 0, done.stderr
    header, rule, *rows, footer = done.stdout.splitlines()
    assert header.split() == ["stream", "lines"] and set(rule) <= {"-", " "}
    assert footer == f"({len(rows)} rows)" and len(rows) == 2
    # The numbers are right-aligned under their header: every line ends at the same column.
    assert len({len(line) for line in (header, *rows)}) == 1


def _one_line_error(done: object, *needles: str) -> str:
    assert getattr(done, "returncode") == 2, done  # noqa: B009 - CompletedProcess
    err = getattr(done, "stderr")  # noqa: B009
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    assert "Traceback" not in err and getattr(done, "stdout") == ""  # noqa: B009
    for needle in needles:
        assert needle in lines[0], lines[0]
    return str(lines[0])


def test_unknown_column_names_the_valid_ones(agent_archive: AgentArchive) -> None:
    done = run_cli("query", "-a", str(agent_archive.root), "select event.reason from events")
    line = _one_line_error(done, "unknown column", "events has", "reason", "count_delta", "pod_uid")
    assert "logs has" not in line  # only the views the SQL reads
    _one_line_error(run_cli("query", "-a", str(agent_archive.root), "select nope from logs"),
                    "unknown column 'nope'", "logs has", "message")


def test_unknown_view_names_the_views(agent_archive: AgentArchive) -> None:
    done = run_cli("query", "-a", str(agent_archive.root), "select * from events join pods using (pod_uid)")
    _one_line_error(done, "unknown view", "events, logs")
    _one_line_error(run_cli("query", "-a", str(agent_archive.root), "select * from pods"),
                    "unknown view 'pods'", "events, logs")


def test_empty_time_range_and_bad_times(agent_archive: AgentArchive) -> None:
    root = str(agent_archive.root)
    _one_line_error(run_cli("query", "-a", root, "--since", "1h", "--until", "2h", "select 1"),
                    "empty time range", "--since", "--until")
    _one_line_error(run_cli("query", "-a", root, "--since", "2026-01-01T10:00:00Z", "--until",
                            "2026-01-01T10:00:00Z", "select 1"), "empty time range")
    _one_line_error(run_cli("query", "-a", root, "--since", "yesterday", "select 1"), "--since", "RFC 3339")


def test_unreachable_archives(tmp_path: Path) -> None:
    _one_line_error(run_cli("query", "-a", str(tmp_path / "missing"), "select count(*) from events"),
                    "archive unreachable", "does not exist")
    # Nothing listens on the port: the S3 reader's own error, in one line.
    env = {"AWS_ACCESS_KEY_ID": "k", "AWS_SECRET_ACCESS_KEY": "s", "PATH": "/usr/bin:/bin",
           "NO_PROXY": "*", "no_proxy": "*"}
    done = run_cli("query", "-a", "s3://bucket/prefix", "--endpoint", "http://127.0.0.1:9", "--region", "us-east-1",
                   "select count(*) from events", env=env)
    _one_line_error(done, "archive unreachable", "bucket")
    _one_line_error(run_cli("query", "-a", "ftp://host/x", "select 1"), "--archive", "s3://")
    _one_line_error(run_cli("query", "select 1", env={"PATH": "/usr/bin:/bin"}), "--archive", "--config")


def test_config_names_the_archive(agent_archive: AgentArchive) -> None:
    done = run_cli("query", "--config", str(agent_archive.config), "-o", "jsonl", "select count(*) n from logs")
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout) == {"n": len(agent_archive.logs)}
