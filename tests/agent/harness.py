"""Helpers for end-to-end tests: a simulated cluster in this process, the real agent as a
separate process (so it can be killed with SIGKILL), and a reader for the archive it writes."""

from __future__ import annotations

import gzip
import os
import signal
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path
from typing import Any

import orjson
import yaml

from kubestream.sim.server import SimServer
from kubestream.sim.workload.event_ledger import EventLedger
from kubestream.sim.workload.generator import Workload
from kubestream.sim.workload.scenario import WorkloadConfig

REMOVE_AFTER_S = 30.0
"""How long the node log writer keeps a deleted pod's files in the kill -9 tests: longer than the
test. Kubelet's garbage collection deletes them whether an agent has read them or not, and lines
deleted unread are lost to any agent; with a 2 s delay, an agent killed and restarting under load
missed the end of a pod deleted meanwhile, and the ledger check (every line exactly once) failed
for a reason that is not the agent's."""


def write_config(tmp_path: Path, sim: SimServer, /, **sections: dict[str, Any]) -> Path:
    """An agent config for ``server`` with archive, state and a fast batch age; override by section."""
    kubeconfig = sim.write_kubeconfig(tmp_path / "kubeconfig")
    config: dict[str, Any] = {
        "kube": {"kubeconfig": str(kubeconfig), "backoff_initial_s": 0.2, "backoff_max_s": 2.0},
        "events": {"since": "retained"},
        "batch": {"max_records": 500, "max_age_s": 1.0},
        "sink": {"type": "file", "stream_uid": "e2e", "file": {"dir": str(tmp_path / "archive")}},
        "state": {"dir": str(tmp_path / "state")},
        "server": {"host": "127.0.0.1", "port": 0},
        "log": {"level": "info"},
        "shutdown": {"timeout_s": 10},
    }
    for name, values in sections.items():
        config.setdefault(name, {}).update(values)
    path = tmp_path / "kubestream.yaml"
    path.write_text(yaml.safe_dump(config))
    return path


class AgentProcess:
    """``kubestream run`` in a child process."""

    def __init__(self, config: Path, workdir: Path) -> None:
        self.config = config
        self.workdir = workdir
        self.ready_file = workdir / "ready"
        self.log_path = workdir / "agent.log"
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> AgentProcess:
        self.ready_file.unlink(missing_ok=True)
        log = self.log_path.open("ab")
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "kubestream.cli.main", "run", "--config", str(self.config),
             "--ready-file", str(self.ready_file)],
            stdout=log, stderr=subprocess.STDOUT, cwd=self.workdir,
            env={**os.environ, "PYTHONUNBUFFERED": "1"},
        )
        log.close()
        return self

    def wait_ready(self, timeout: float = 30.0) -> None:
        deadline = time.monotonic() + timeout
        while not self.ready_file.exists():
            assert self.proc is not None
            if self.proc.poll() is not None:
                raise AssertionError(f"agent exited {self.proc.returncode}:\n{self.log()}")
            if time.monotonic() > deadline:
                raise AssertionError(f"agent not ready after {timeout}s:\n{self.log()}")
            time.sleep(0.05)

    def kill(self) -> None:
        assert self.proc is not None
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait(timeout=10)

    def terminate(self, timeout: float = 20.0) -> int:
        assert self.proc is not None
        self.proc.send_signal(signal.SIGTERM)
        return self.proc.wait(timeout=timeout)

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")[-6000:] if self.log_path.exists() else ""


def read_archive(root: Path) -> list[dict[str, Any]]:
    """Every record of the NDJSON(.gz) files under ``root`` (no temp files)."""
    records: list[dict[str, Any]] = []
    for path in sorted(root.rglob("*.ndjson*")):
        if path.name.startswith("."):
            continue
        data = path.read_bytes()
        if path.name.endswith(".gz"):
            data = gzip.decompress(data)
        records.extend(orjson.loads(line) for line in data.splitlines() if line)
    return records


def occurrences_by_uid(records: list[dict[str, Any]]) -> dict[str, int]:
    counts: Counter[str] = Counter()
    for r in records:
        counts[r["event"]["uid"]] += int(r["event"]["count_delta"])
    return dict(counts)


def assert_exactly_once(records: list[dict[str, Any]], ledger: EventLedger) -> None:
    """Every occurrence the simulator wrote is archived once: per uid, summed count_delta equals
    the ledger, and no (uid, resourceVersion) appears twice."""
    seen = Counter((r["event"]["uid"], r["event"]["resource_version"]) for r in records)
    dupes = [k for k, n in seen.items() if n > 1]
    assert not dupes, f"duplicated records: {dupes[:5]}"
    got = occurrences_by_uid(records)
    truth = {uid: n for uid, n in ledger.per_uid().items() if n}
    missing = {u: n - got.get(u, 0) for u, n in truth.items() if got.get(u, 0) < n}
    extra = {u: got[u] - truth.get(u, 0) for u in got if got[u] > truth.get(u, 0)}
    assert not missing and not extra, (
        f"archive differs from the ledger: {len(missing)} uids short (e.g. {list(missing.items())[:3]}), "
        f"{len(extra)} uids over (e.g. {list(extra.items())[:3]}); total {sum(got.values())} vs {ledger.total()}")


def wait_caught_up(archive: Path, ledger: EventLedger, timeout: float = 40.0) -> list[dict[str, Any]]:
    """Poll the archive until it holds as many occurrences as the ledger (or time runs out)."""
    deadline = time.monotonic() + timeout
    while True:
        records = read_archive(archive)
        if sum(occurrences_by_uid(records).values()) >= ledger.total() or time.monotonic() > deadline:
            return records
        time.sleep(0.25)


def make_workload(server: SimServer, *, seed: int = 7, rate: float = 300.0, api: str = "mixed",
                  **extra: Any) -> Workload:
    config = WorkloadConfig(seed=seed, events_per_s=rate, events_api=api, **extra)  # type: ignore[arg-type]
    return Workload(server.cluster, config, EventLedger())


def finish_and_assert_exactly_once(agent: AgentProcess, workload: Workload, archive: Path) -> list[dict[str, Any]]:
    """Wait until the archive caught up with the ledger, stop the agent cleanly (exit 0), and
    check every occurrence is archived exactly once. Returns the records."""
    records = wait_caught_up(archive, workload.ledger)
    assert agent.terminate() == 0, agent.log()
    assert_exactly_once(records, workload.ledger)
    return records


_PR_CAPBSET_DROP = 24
_CAP_DAC_OVERRIDE, _CAP_DAC_READ_SEARCH = 1, 2


def _drop_file_permission_override() -> None:
    """In the child before exec: root without CAP_DAC_OVERRIDE/CAP_DAC_READ_SEARCH obeys file modes."""
    import ctypes

    libc = ctypes.CDLL(None, use_errno=True)
    for cap in (_CAP_DAC_OVERRIDE, _CAP_DAC_READ_SEARCH):
        if libc.prctl(_PR_CAPBSET_DROP, cap, 0, 0, 0) != 0:
            raise OSError(ctypes.get_errno(), "prctl(PR_CAPBSET_DROP)")


class ModeBoundAgentProcess(AgentProcess):
    """The agent as root but without the capabilities that bypass file modes, so a mode 000 file
    really answers EACCES (the tests run as root, where it otherwise would not; a setuid to
    nobody cannot run this venv's interpreter, which lives under /root)."""

    def start(self) -> AgentProcess:
        self.ready_file.unlink(missing_ok=True)
        log = self.log_path.open("ab")
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "kubestream.cli.main", "run", "--config", str(self.config),
             "--ready-file", str(self.ready_file)],
            stdout=log, stderr=subprocess.STDOUT, cwd=self.workdir,
            env={**os.environ, "PYTHONUNBUFFERED": "1"}, preexec_fn=_drop_file_permission_override,
        )
        log.close()
        return self


def free_port() -> int:
    """A TCP port free on 127.0.0.1 right now (for the agent's /metrics and /healthz)."""
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def scrape(port: int) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    """The agent's /metrics as {(sample name, sorted labels): value}."""
    import urllib.request

    from prometheus_client.parser import text_string_to_metric_families

    body = urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5).read().decode()
    return {(s.name, tuple(sorted(s.labels.items()))): s.value
            for family in text_string_to_metric_families(body) for s in family.samples}


def healthz(port: int) -> int:
    """The HTTP status of /healthz."""
    import urllib.request

    return int(urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=5).status)
