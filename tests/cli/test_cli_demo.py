"""``kubestream demo``: simulated cluster + the real events collector and node agent; its archive
decodes, holds every generated occurrence and every written log line once, the records carry the
enrichment fields, and the summary names each agent's API requests (and, in kubelet mode, its kubelet
requests)."""

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
    assert "every line exactly once with its pod's metadata" in proc.stdout, proc.stdout
    summary = proc.stdout.split("API requests:", 1)[1]
    collector, node_agent = summary.splitlines()[1:3]
    assert "events collector:" in collector and "watch" in collector and " events" in collector
    assert "node agent:" in node_agent and "pods[spec.nodeName=" in node_agent and " events" not in node_agent
    assert " from logs " in proc.stdout and " timeline pod/" in proc.stdout  # run as printed, like the others
    logs = read_archive(out / "archive" / "logs")
    assert len(logs) > 50 and all(r["kind"] == "log" and r["kubernetes"]["pod_uid"] for r in logs)
    records = read_archive(out / "archive" / "events")
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


def test_demo_help_lists_its_options(tmp_path: Path) -> None:
    """README: `kubestream demo --help` lists duration, event and log rates, seed, output folder."""
    proc = subprocess.run([sys.executable, "-m", "kubestream.cli.main", "demo", "--help"],
                          capture_output=True, text=True, timeout=60, cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    for option in ("--duration", "--rate", "--log-rate", "--seed", "--out"):
        assert option in proc.stdout
    assert not (tmp_path / "kubestream-demo").exists()


def test_a_log_rate_of_zero_is_refused_in_one_line(tmp_path: Path) -> None:
    proc = subprocess.run([sys.executable, "-m", "kubestream.cli.main", "demo", "--log-rate", "0"],
                          capture_output=True, text=True, timeout=60, cwd=tmp_path)
    assert proc.returncode == 2 and "Traceback" not in proc.stderr
    assert proc.stderr.splitlines()[-1] == "kubestream demo: error: argument --log-rate: must be above 0, got 0"
    assert not (tmp_path / "kubestream-demo").exists()


def test_demo_in_kubelet_mode_reads_pods_from_the_kubelet_not_the_api(tmp_path: Path) -> None:
    """``--metadata-source kubelet``: the node agent asks its kubelet for pods (counted in the
    summary) and makes no pod request to the API server; the logs are still complete and enriched."""
    out = tmp_path / "demo"
    proc = subprocess.run(
        [sys.executable, "-m", "kubestream.cli.main", "demo", "--duration", "3", "--rate", "100",
         "--metadata-source", "kubelet", "--out", str(out)],
        capture_output=True, text=True, timeout=120, cwd=tmp_path)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "every line exactly once with its pod's metadata" in proc.stdout, proc.stdout
    summary = proc.stdout.split("API requests:", 1)[1].splitlines()
    node_agent = next(line for line in summary if "node agent:" in line)
    kubelet = next(line for line in summary if "node agent → its kubelet:" in line)
    assert "pods" not in node_agent.replace("nodes", ""), node_agent
    assert "get /pods" in kubelet, kubelet
    config = (out / "node-agent.yaml").read_text()
    assert "metadata_source: kubelet" in config and "node-agent.token" in config
    logs = read_archive(out / "archive" / "logs")
    assert logs and all(r["kubernetes"]["enrichment"] == "ok" and r["kubernetes"]["pod_name"] for r in logs)
