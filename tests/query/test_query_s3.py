"""``query``, ``timeline`` and ``compact`` on an S3 archive (moto in server mode), as users run them:
``--since/--until`` list only the window's partitions of the bucket, ``--explain`` counts what was
listed and read, and after ``kubestream compact`` the same questions answer the same rows from
fewer objects."""

from __future__ import annotations

import datetime as dt
import re
import subprocess
import sys
from pathlib import Path

import obstore
import pytest
import yaml
from bench.gen_archive import Ledger, write_events, write_logs
from tests.query.conftest import MotoServer, run_cli

START = dt.datetime(2024, 5, 1, 10, tzinfo=dt.UTC)
OBJECTS_PER_HOUR = 4
PREFIX = "prod/eu"
SINCE, UNTIL = "2024-05-01T11:00:00Z", "2024-05-01T12:00:00Z"
LATE_SINCE = "2024-05-01T11:10:00Z"
EVENTS_SQL = "select event_uid, time from events order by event_uid"
LOGS_SQL = "select file_path, file_offset, time from logs order by 1, 2"


def _env(home: Path) -> dict[str, str]:
    return {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing", "PATH": "/usr/bin:/bin",
            "HOME": str(home)}


@pytest.fixture
def s3_archive(moto: MotoServer, tmp_path: Path) -> tuple[str, Path]:
    """Three hours (10:00-13:00) of events and logs, 4 objects an hour each, under ``s3://B/prod/eu``;
    the same archive as a directory beside it."""
    local = tmp_path / "archive"
    ledger = Ledger()
    write_events(local, ledger, start=START, hours=3, objects_per_hour=OBJECTS_PER_HOUR, records_per_object=5)
    write_logs(local, ledger, start=START, hours=3, objects_per_hour=OBJECTS_PER_HOUR, lines_per_object=8)
    bucket = moto.create_bucket()
    store = moto.store(bucket)
    for path in sorted(p for p in local.rglob("*") if p.is_file()):
        obstore.put(store, f"{PREFIX}/{path.relative_to(local).as_posix()}", path.read_bytes())
    return bucket, local


def _explained(done: subprocess.CompletedProcess[str], view: str) -> tuple[int, int, int, int]:
    """(prefixes listed, objects listed, objects read, rows) of ``view`` in ``--explain``'s report."""
    assert done.returncode == 0, done.stderr
    found = re.search(rf"{view}: (\d+) prefixes listed, (\d+) objects listed, (\d+) read \(.*?\), (\d+) rows",
                      done.stderr)
    assert found, done.stderr
    prefixes, listed, read, rows = (int(g) for g in found.groups())
    return prefixes, listed, read, rows


def _window_query(url: str, sql: str, moto: MotoServer, env: dict[str, str],
                  since: str = SINCE) -> subprocess.CompletedProcess[str]:
    return run_cli("query", "-a", url, "--endpoint", moto.endpoint, "--region", "us-east-1", "--since", since,
                   "--until", UNTIL, "--explain", "-o", "csv", sql, env=env)


def test_s3_window_prunes_then_compaction_answers_the_same_from_fewer_objects(
        s3_archive: tuple[str, Path], moto: MotoServer, tmp_path: Path) -> None:
    bucket, local = s3_archive
    url, env = f"s3://{bucket}/{PREFIX}", _env(tmp_path)
    local_events = run_cli("query", "-a", str(local), "--since", SINCE, "--until", UNTIL, "-o", "csv", EVENTS_SQL)
    local_logs = run_cli("query", "-a", str(local), "--since", SINCE, "--until", UNTIL, "-o", "csv", LOGS_SQL)

    events = _window_query(url, EVENTS_SQL, moto, env)
    logs = _window_query(url, LOGS_SQL, moto, env)
    assert events.stdout == local_events.stdout and logs.stdout == local_logs.stdout
    # The window's hour and the one before it (a batch sits in the partition of its first record,
    # listing starts 5 minutes early), never hour 12: two prefixes, their objects listed and read.
    assert _explained(events, "events") == (2, 2 * OBJECTS_PER_HOUR, 2 * OBJECTS_PER_HOUR, OBJECTS_PER_HOUR * 5)
    assert _explained(logs, "logs") == (2, 2 * OBJECTS_PER_HOUR, 2 * OBJECTS_PER_HOUR, OBJECTS_PER_HOUR * 8)
    # A window starting later in the hour lists that hour only; rows outside the window are dropped.
    late = _window_query(url, EVENTS_SQL, moto, env, since=LATE_SINCE)
    assert _explained(late, "events") == (1, OBJECTS_PER_HOUR, OBJECTS_PER_HOUR, (OBJECTS_PER_HOUR - 1) * 5)

    config = tmp_path / "kubestream.yaml"
    config.write_text(yaml.safe_dump({"state": {"dir": str(tmp_path / "state")}, "sink": {
        "type": "s3", "prefix": PREFIX, "s3": {"bucket": bucket, "endpoint_url": moto.endpoint,
                                               "region": "us-east-1", "access_key_id": "testing",
                                               "secret_access_key": "testing"}}}))
    compacted = subprocess.run([sys.executable, "-m", "kubestream.cli.main", "compact", "--config", str(config),
                                "--grace", "0"], capture_output=True, text=True, timeout=120, env=env)
    assert compacted.returncode == 0, compacted.stderr
    assert compacted.stdout.startswith(f"compacted {2 * 3 * OBJECTS_PER_HOUR} objects (")
    assert "6 partitions seen, 0 still open" in compacted.stdout

    events = _window_query(url, EVENTS_SQL, moto, env)
    logs = _window_query(url, LOGS_SQL, moto, env)
    assert events.stdout == local_events.stdout and logs.stdout == local_logs.stdout
    # Per hour: one manifest and one part listed, the part read.
    assert _explained(events, "events") == (2, 4, 2, OBJECTS_PER_HOUR * 5)
    assert _explained(logs, "logs") == (2, 4, 2, OBJECTS_PER_HOUR * 8)
    late = _window_query(url, EVENTS_SQL, moto, env, since=LATE_SINCE)
    assert _explained(late, "events") == (1, 2, 1, (OBJECTS_PER_HOUR - 1) * 5)

    # The same archive through --config (the sink's own credentials and prefix), and a timeline.
    by_config = run_cli("query", "--config", str(config), "--since", SINCE, "--until", UNTIL, "-o", "csv",
                        EVENTS_SQL, env=env)
    assert by_config.returncode == 0 and by_config.stdout == local_events.stdout, by_config.stderr
    timeline = run_cli("timeline", "deploy/checkout", "-n", "shop", "--config", str(config), "--since", SINCE,
                       "--until", UNTIL, "--explain", "-o", "csv", env=env)
    local_timeline = run_cli("timeline", "deploy/checkout", "-n", "shop", "-a", str(local), "--since", SINCE,
                             "--until", UNTIL, "-o", "csv")
    assert timeline.returncode == 0, timeline.stderr
    assert timeline.stdout == local_timeline.stdout and len(timeline.stdout.splitlines()) == 1 + OBJECTS_PER_HOUR * 8
    assert _explained(timeline, "logs")[:3] == (2, 4, 2)
