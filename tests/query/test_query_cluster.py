"""``--cluster``: an archive several clusters share keeps each one's batches under its own
``cluster=<name>`` partition level; query and timeline list only that cluster's partitions (and
those of an archive without the level), and keep only its records."""

from __future__ import annotations

import csv
import datetime as dt
import io
from pathlib import Path
from typing import Any

from tests.query.conftest import run_cli

from kubestream.config.settings import EncodingSettings
from kubestream.pipeline.encode import make_encoder
from kubestream.pipeline.naming import batch_key

START = dt.datetime(2026, 1, 1, 10, tzinfo=dt.UTC)
WINDOW = ("--since", "2026-01-01T10:10:00Z", "--until", "2026-01-01T11:00:00Z")


def _record(cluster: str, i: int, when: dt.datetime) -> dict[str, Any]:
    pod = {"pod_name": f"web-{i}", "pod_uid": f"{cluster}-pod-{i}", "namespace": "shop", "owner_kind": "Deployment",
           "owner_name": "web", "owners": [{"kind": "ReplicaSet", "name": "web-5d"}, {"kind": "Deployment", "name": "web"}]}
    return {"kind": "event", "cluster": cluster, "timestamp": when.strftime("%Y-%m-%dT%H:%M:%S.%fZ"),
            "event": {"uid": f"{cluster}-{i}", "reason": "Started", "type": "Normal", "count": 1, "count_delta": 1,
                      "namespace": "shop", "message": f"started in {cluster}"},
            "involved": {"kind": "Pod", "name": f"web-{i}", "namespace": "shop", "uid": f"{cluster}-pod-{i}"},
            "kubernetes": pod}


def _shared_archive(root: Path) -> None:
    """Clusters ``a`` and ``b`` under their own level, and ``a``'s older batches without one."""
    codec = make_encoder(EncodingSettings())
    for layout, cluster in (("cluster=a/", "a"), ("cluster=b/", "b"), ("", "a")):
        for i in range(3):
            when = START + dt.timedelta(minutes=20 * i)
            key = batch_key(prefix="", stream="events", stream_uid=f"{cluster}{len(layout)}", timestamp=when,
                            first_position=i, last_position=i, extension=codec.extension)
            key = key.replace("events/", f"events/{layout}", 1)
            (root / key).parent.mkdir(parents=True, exist_ok=True)
            (root / key).write_bytes(codec.encode_dicts([_record(cluster, i + (10 if not layout else 0), when)]))


def test_cluster_lists_its_partitions_and_keeps_its_records(tmp_path: Path) -> None:
    _shared_archive(tmp_path)
    done = run_cli("query", "-a", str(tmp_path), "--cluster", "a", *WINDOW, "--explain", "-o", "csv",
                   "select cluster, event_uid from events order by 2")
    assert done.returncode == 0, done.stderr
    # a's 10:20 and 10:40 rows of both layouts (10:00 is before the window), none of b's.
    assert done.stdout.split() == ["cluster,event_uid", "a,a-1", "a,a-11", "a,a-12", "a,a-2"]
    # Hour 10 in both layouts (the plain one and cluster=a): b's folder is never listed.
    assert "events: 2 prefixes listed, 6 objects listed, 6 read" in done.stderr, done.stderr
    assert "cluster: a" in done.stderr

    # The whole archive (no window): the stream's folder is listed once; a's cluster=a objects
    # are not read, the unlevelled ones are (they may hold any cluster) and their rows dropped.
    whole = run_cli("query", "-a", str(tmp_path), "--cluster", "b", "--explain", "-o", "csv",
                    "select event_uid from events order by 1")
    assert whole.stdout.split() == ["event_uid", "b-0", "b-1", "b-2"], whole.stderr
    assert "events: 1 prefixes listed, 9 objects listed, 6 read" in whole.stderr, whole.stderr

    # Without --cluster every cluster's rows, each with its cluster column.
    both = run_cli("query", "-a", str(tmp_path), "-o", "csv", "select cluster, count(*) n from events group by 1 order by 1")
    assert both.stdout.split() == ["cluster,n", "a,6", "b,3"], both.stderr


def test_timeline_has_the_cluster_column_and_takes_cluster(tmp_path: Path) -> None:
    _shared_archive(tmp_path)
    done = run_cli("timeline", "deploy/web", "-n", "shop", "-a", str(tmp_path), "--cluster", "b", *WINDOW,
                   "-o", "csv")
    assert done.returncode == 0, done.stderr
    rows = list(csv.DictReader(io.StringIO(done.stdout)))
    assert [(r["cluster"], r["message"]) for r in rows] == [("b", "started in b"), ("b", "started in b")]
    assert {r["pod_uid"] for r in rows} == {"b-pod-1", "b-pod-2"}
