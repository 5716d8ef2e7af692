"""The agent's /metrics, /healthz and /readyz scraped while it runs against the simulator: the
figures agree with what the archive and the simulator saw."""

from __future__ import annotations

import socket
import time
import urllib.request
from pathlib import Path

from prometheus_client.parser import text_string_to_metric_families
from tests.agent.harness import AgentProcess, make_workload, wait_caught_up, write_config

from kubestream.sim.server import SimServer


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _scrape(port: int) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    body = urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5).read().decode()
    samples = {}
    for family in text_string_to_metric_families(body):
        for s in family.samples:
            samples[(s.name, tuple(sorted(s.labels.items())))] = s.value
    return samples


def _value(samples: dict[tuple[str, tuple[tuple[str, str], ...]], float], name: str, **labels: str) -> float:
    return samples.get((name, tuple(sorted(labels.items()))), 0.0)


def _status(port: int, path: str) -> int:
    try:
        return int(urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=5).status)
    except urllib.error.HTTPError as exc:
        return exc.code


def test_metrics_hold_the_expected_values(sim: SimServer, tmp_path: Path) -> None:
    port = _free_port()
    workload = make_workload(sim, seed=41, rate=300)
    workload.step()
    agent = AgentProcess(write_config(tmp_path, sim, server={"port": port}), tmp_path).start()
    agent.wait_ready()
    assert _status(port, "/healthz") == 200
    assert _status(port, "/readyz") == 200
    workload.run_for(1.5)
    sim.faults.drop_watches("events")
    workload.run_for(1.0)
    workload.stop()
    records = wait_caught_up(tmp_path / "archive", workload.ledger)
    time.sleep(1.5)  # the last batch is delivered; counters settle
    samples = _scrape(port)
    files = [p for p in (tmp_path / "archive").rglob("*.ndjson.gz")]
    try:
        assert _value(samples, "kubestream_records_out_total", source="events") == len(records)
        assert _value(samples, "kubestream_batches_total", sink="file", stream="events") == len(files)
        assert _value(samples, "kubestream_batch_bytes_total", sink="file", stream="events") == sum(
            p.stat().st_size for p in files)
        assert _value(samples, "kubestream_records_in_total", source="events") >= len(records)
        assert _value(samples, "kubestream_spool_batches") == 0
        assert _value(samples, "kubestream_sink_errors_total", sink="file", kind="retryable") == 0
        restarts = {dict(labels)["reason"]: v for (name, labels), v in samples.items()
                    if name == "kubestream_watch_restarts_total" and dict(labels)["resource"] == "events"}
        assert sum(restarts.values()) >= 1, f"the dropped events watch must be counted: {restarts}"
        assert _value(samples, "kubestream_cached_objects", kind="Pod") == len(sim.cluster.list("pods"))
        assert _value(samples, "kubestream_api_requests_total", verb="list", code="200") >= 1
        assert _value(samples, "kubestream_api_requests_total", verb="watch", code="200") >= 2
        assert _value(samples, "kubestream_build_info", version=__import__("kubestream").__version__) == 1
        lag = _value(samples, "kubestream_end_to_end_lag_seconds_count", source="events")
        assert lag == len(records)
    finally:
        assert agent.terminate() == 0, agent.log()
