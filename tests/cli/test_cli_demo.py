"""``kubestream demo``: simulated cluster + the real agent; its archive decodes, holds every
generated occurrence once, and the records carry the enrichment fields."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from kubestream.cli.demo import read_archive


def test_demo_archives_the_generated_events_enriched(tmp_path: Path) -> None:
    out = tmp_path / "demo"
    proc = subprocess.run(
        [sys.executable, "-m", "kubestream.cli.main", "demo", "--duration", "3", "--rate", "150", "--out", str(out)],
        capture_output=True, text=True, timeout=120, cwd=tmp_path)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "matches the simulator's ledger exactly" in proc.stdout, proc.stdout
    assert "next:" in proc.stdout and " query --archive " in proc.stdout  # run by tests/query/test_query_docs.py
    records = read_archive(out / "archive")
    assert len(records) > 100
    assert all(r["kind"] == "event" and r["event"]["count_delta"] >= 1 for r in records)
    pod_records = [r for r in records if r["involved"]["kind"] == "Pod"]
    assert pod_records
    enriched = [r["kubernetes"] for r in pod_records if r["kubernetes"]["enrichment"] == "ok"]
    assert len(enriched) > 0.9 * len(pod_records)
    for k8s in enriched:
        assert k8s["pod_name"] and k8s["pod_uid"] and k8s["namespace"] and k8s.get("labels")
    # Pending pods (FailedScheduling) have no node yet and bare pods no owner; most have both.
    scheduled = [k for k in enriched if "node_name" in k]
    assert len(scheduled) > 0.8 * len(enriched) and all(k.get("node_ip") for k in scheduled)
    assert sum(1 for k in enriched if k.get("owner_kind")) > 0.8 * len(enriched)
    assert (out / "kubestream.yaml").exists()
    assert list((out / "archive" / "events").glob("dt=*/hour=*/demo-*-*.ndjson.gz"))
