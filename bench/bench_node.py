"""A realistic node: the whole node agent on ``PODS`` pods' log files against the same bytes in one file.

    BENCH_NODE_BYTES=200000000 python -m bench.bench_node     (default: 1.1 GiB in all)

One CRI stream from ``bench.gen_cri`` (~190 B/line, 2 % partial lines) is cut at line boundaries
into ``PODS`` files, one per pod, each in its kubelet directory ``<ns>_<pod>_<uid>/app/0.log``,
with the pods on the agent's node in the simulated API server (so enrichment is the real one:
a node-scoped pod watch and the owner, namespace and node caches). The real agent process
(``kubestream run``, logs only) reads them all into a file archive; CPU (utime + stime) and
peak RSS (``VmHWM``) are the child's own, from ``/proc``. The baseline, measured in the same run
by the same harness, is the same bytes as ONE pod's file. Both formats: NDJSON + gzip and Parquet.

Every line is checked afterwards: the archive holds exactly the file's records (P parts merged)
and every file's committed checkpoint is at its end. Targets: the node run reaches >= 90 % of the
single-file lines per CPU-second, and peak RSS <= 150 MB in both formats.
"""

from __future__ import annotations

import os
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import pyarrow.parquet as pq
from tests.agent.harness import AgentProcess, free_port, scrape, write_config

from bench.bench_logs import logical_records
from bench.gen_cri import generate
from kubestream.config.settings import EncodingSettings
from kubestream.pipeline.encode.compress import make_compressor
from kubestream.sim.server import SimServer
from kubestream.sim.testing import running_sim
from kubestream.sources.logs import checkpoint
from kubestream.state.store import StateStore

PODS = 200
DEFAULT_BYTES = int(1.1 * 2**30)
ENV_BYTES = "BENCH_NODE_BYTES"
NODE = "bench-node"
TIMEOUT_S = 3600.0


@dataclass(frozen=True)
class Run:
    name: str
    records: int
    cpu_s: float
    peak_rss_mb: float
    wall_s: float

    @property
    def rate(self) -> float:
        return self.records / self.cpu_s

    def show(self) -> str:
        return (f"{self.name:<34} {self.records:>10,} records  {self.cpu_s:7.1f} s CPU  {self.rate / 1000:7.0f} k/CPU-s  "
                f"peak RSS {self.peak_rss_mb:6.0f} MB  ({self.wall_s:.0f} s wall)")


def _is_part(line: bytes) -> bool:
    return line.split(b" ", 3)[2] == b"P"


def _split(source: Path, out: list[Path]) -> None:
    """Cut ``source`` into len(out) files of about equal size, at record boundaries (a ``P`` part
    stays in the file of the ``F`` line that ends it)."""
    share = source.stat().st_size // len(out) + 1
    with source.open("rb") as f:
        for n, path in enumerate(out):
            path.parent.mkdir(parents=True, exist_ok=True)
            with path.open("wb") as dst:
                written, last = 0, b""
                while written < share or n == len(out) - 1:
                    block = f.readlines(min(1 << 20, max(share - written, 1)) if n < len(out) - 1 else 1 << 20)
                    if not block:
                        break
                    dst.write(b"".join(block))
                    written += sum(map(len, block))
                    last = block[-1]
                while last and _is_part(last):
                    last = f.readline()
                    dst.write(last)


def _pods(server: SimServer, pods_dir: Path, count: int) -> list[Path]:
    """``count`` pods on the node (one container ``app``); the path of each one's log file."""
    server.cluster.create("namespaces", {"metadata": {"name": "shop", "labels": {"team": "payments"}}})
    server.cluster.create("nodes", {"metadata": {"name": NODE, "labels": {"topology.kubernetes.io/zone": "eu-1a"}}})
    paths = []
    for n in range(count):
        name = f"checkout-{n:03d}"
        pod = server.cluster.create("pods", {
            "metadata": {"name": name, "namespace": "shop", "labels": {"app": "checkout", "shard": str(n % 8)}},
            "spec": {"nodeName": NODE, "containers": [{"name": "app", "image": "registry.example/checkout:1.4"}]}})
        paths.append(pods_dir / f"shop_{name}_{pod['metadata']['uid']}" / "app" / "0.log")
    return paths


def _proc(pid: int) -> tuple[float, float]:
    """(CPU seconds, peak RSS MB) of a live process."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    cpu = (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    peak = next(int(line.split()[1]) / 1024 for line in Path(f"/proc/{pid}/status").read_text().splitlines()
                if line.startswith("VmHWM:"))
    return cpu, peak


def _progress(port: int) -> tuple[float, float, float]:
    """(lines read, chunks committed, batches pending) from the agent's /metrics."""
    metrics = scrape(port)
    return (metrics.get(("kubestream_records_in_total", (("source", "logs"),)), 0.0),
            metrics.get(("kubestream_records_out_total", (("source", "logs"),)), 0.0),
            metrics.get(("kubestream_spool_batches", ()), 0.0))


def _run(name: str, source: Path, pods: int, encoding: EncodingSettings, root: Path) -> Run:
    records = logical_records(source)
    with running_sim() as server:
        files = _pods(server, root / "pods", pods)
        _split(source, files)
        port = free_port()
        config = write_config(
            root, server, events={"enabled": False},
            logs={"enabled": True, "node_name": NODE, "pods_dir": str(root / "pods"), "containers_dir": None},
            encoding=encoding.model_dump(mode="json"), batch={}, log={"level": "warning"},
            server={"host": "127.0.0.1", "port": port})
        agent = AgentProcess(config, root).start()
        started = time.monotonic()
        try:
            agent.wait_ready(120)
            assert agent.proc is not None
            # Done: every line read, nothing pending, and no commit for longer than a batch's age.
            last, still = None, 0
            while True:
                read, committed, pending = _progress(port)
                still = still + 1 if (read >= records and pending == 0 and committed == last) else 0
                last = committed
                if still >= 4:
                    break
                if time.monotonic() - started > TIMEOUT_S or agent.proc.poll() is not None:
                    raise AssertionError(f"{name}: {read:.0f} of {records} lines read:\n{agent.log()}")
                time.sleep(0.5)
            cpu, peak = _proc(agent.proc.pid)
            wall = time.monotonic() - started
        finally:
            agent.terminate(120)
    _check(root, encoding, records, files)
    return Run(name, records, cpu, peak, wall)


def _check(root: Path, encoding: EncodingSettings, records: int, files: list[Path]) -> None:
    """Every record archived once, every file's checkpoint at its end."""
    got = 0
    for path in (p for p in (root / "archive").rglob("*") if p.is_file() and not p.name.startswith(".")):
        if path.suffix == ".parquet":
            got += pq.read_metadata(path).num_rows
        else:
            got += make_compressor(encoding).decompress(path.read_bytes()).count(b"\n")
    state = StateStore(root / "state" / "state.db")
    try:
        offsets = sorted(checkpoint.load(state).offsets.values())
    finally:
        state.close()
    sizes = sorted(p.stat().st_size for p in files)
    if got != records or offsets != sizes:
        raise AssertionError(f"archive holds {got} of {records} records; {len(offsets)} checkpoints for "
                             f"{len(files)} files, {sum(offsets)} of {sum(sizes)} bytes")


def main() -> int:
    size = int(os.environ.get(ENV_BYTES, DEFAULT_BYTES))
    results: dict[str, Run] = {}
    with tempfile.TemporaryDirectory(prefix="bench-node-") as tmp:
        source = Path(tmp) / "stream.log"
        written, lines = generate(source, size)
        print(f"{written / 2**20:.0f} MiB, {lines:,} physical lines, as {PODS} pods' files and as one", flush=True)
        for label, encoding in (("ndjson", EncodingSettings()), ("parquet", EncodingSettings(format="parquet"))):
            for pods in (1, PODS):
                key = f"{label}-{pods}"
                root = Path(tmp) / key
                root.mkdir()
                results[key] = _run(f"{label}, {pods} pod{'s' if pods > 1 else ''}", source, pods, encoding, root)
                print(results[key].show(), flush=True)
    for label in ("ndjson", "parquet"):
        node, single = results[f"{label}-{PODS}"], results[f"{label}-1"]
        print(f"{label}: {PODS} pods / one file = {node.rate / single.rate:.2f} (target >= 0.90); "
              f"peak RSS {node.peak_rss_mb:.0f} MB (target <= 150)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

