"""Helpers of the logs-source tests: a rig running the real LogsSource → Pipeline → Spool →
Delivery → FileSink over a simulated node's log directory, and readers of the archive."""

from __future__ import annotations

import asyncio
import base64
import contextlib
import gzip
import time
import uuid
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any

import orjson

from kubestream.config.settings import (
    BatchSettings,
    EncodingSettings,
    FileSinkSettings,
    LogsSettings,
    Settings,
    SinkSettings,
    StateSettings,
)
from kubestream.enrich.containers import PodEnricher
from kubestream.obs.metrics import Metrics
from kubestream.pipeline.batcher import Pipeline
from kubestream.pipeline.delivery import Delivery
from kubestream.pipeline.encode import make_log_encoder
from kubestream.pipeline.spool import Spool
from kubestream.sim.nodes.logfiles import NodeLogConfig, NodeLogWriter, extract_seqs
from kubestream.sinks.file import FileSink
from kubestream.sources.logs.source import LogsSource
from kubestream.state.store import StateStore

NODE = "node-a"
Key = tuple[str, str, str, int]


def make_settings(tmp: Path, *, batch: int = 40, **logs: Any) -> Settings:
    """Test settings: small batches, fast sweeps, NDJSON+gzip file sink under ``tmp``."""
    options: dict[str, Any] = {"enabled": True, "pods_dir": tmp / "pods", "containers_dir": tmp / "containers",
                               "sweep_interval_s": 0.3, "drain_timeout_s": 20.0}
    options.update(logs)
    return Settings(
        logs=LogsSettings(**options),
        batch=BatchSettings(max_records=batch, max_age_s=0.05),
        encoding=EncodingSettings(format="ndjson", compression="gzip"),
        sink=SinkSettings(stream_uid="node-a", file=FileSinkSettings(dir=tmp / "out"),
                          retry_initial_s=0.01, retry_max_s=0.05),
        state=StateSettings(dir=tmp / "state"),
    )


def make_writer(tmp: Path, **config: Any) -> NodeLogWriter:
    """A node log writer with no cluster: pods are handed to it with ``follow``/``track_pod``."""
    return NodeLogWriter(NodeLogConfig(root=tmp / "pods", containers_dir=tmp / "containers", node=NODE,
                                       seed=config.pop("seed", 7), **config))


def pod(name: str, *, namespace: str = "default", containers: tuple[str, ...] = ("app",),
        uid: str | None = None, restarts: int = 0, labels: dict[str, str] | None = None,
        annotations: dict[str, str] | None = None) -> dict[str, Any]:
    """A Running pod object on NODE, as the writer (or the simulated API) wants it."""
    uid = uid or str(uuid.uuid4())
    statuses = [{"name": c, "restartCount": restarts, "ready": True, "image": "nginx:1.27", "imageID": "",
                 "containerID": "containerd://" + uuid.uuid5(uuid.NAMESPACE_OID, uid + c).hex * 2,
                 "state": {"running": {"startedAt": "2026-11-21T05:00:00Z"}}} for c in containers]
    return {
        "metadata": {"name": name, "namespace": namespace, "uid": uid, "labels": labels or {},
                     "annotations": annotations or {}},
        "spec": {"nodeName": NODE, "containers": [{"name": c, "image": "nginx:1.27"} for c in containers]},
        "status": {"phase": "Running", "containerStatuses": statuses, "podIP": "10.1.2.3"},
    }


class Rig:
    """The real source and pipeline; ``start``/``stop`` may be repeated on the same state."""

    def __init__(self, tmp: Path, settings: Settings, *, enricher: PodEnricher | None = None,
                 spool_max_bytes: int = 64 * 1024 * 1024, deliver: bool = True) -> None:
        self.tmp = tmp
        self.settings = settings
        self.enricher = enricher
        self.spool_max_bytes = spool_max_bytes
        self.deliver = deliver
        self.metrics = Metrics()
        self.source: LogsSource | None = None
        self.pipeline: Pipeline | None = None
        self.spool: Spool | None = None
        self._tasks: list[asyncio.Task[Any]] = []
        self._state: StateStore | None = None
        self._delivery: Delivery | None = None

    async def start(self) -> LogsSource:
        s = self.settings
        self._state = StateStore(s.state.dir / "state.db")
        spool = Spool(s.spool_dir, self._state, max_bytes=self.spool_max_bytes, metrics=self.metrics)
        spool.recover()
        self.spool = spool
        sink = FileSink(s.sink.file)
        await sink.check()
        self.pipeline = Pipeline("logs", s, self._state, spool, metrics=self.metrics, encoder=make_log_encoder(s))
        self._delivery = Delivery(spool, sink, settings=s.sink, metrics=self.metrics)
        self.source = LogsSource(s, self._state, self.pipeline, self.enricher, node_name=NODE, metrics=self.metrics)
        self._tasks = [asyncio.create_task(self.pipeline.run()), asyncio.create_task(self.source.run())]
        if self.deliver:
            self.start_delivery()
        await asyncio.wait_for(self.source.synced.wait(), 10)
        return self.source

    def start_delivery(self) -> None:
        assert self._delivery is not None
        self._tasks.append(asyncio.create_task(self._delivery.run()))

    async def stop(self) -> None:
        """Stop the source, commit the open batch, deliver, close the state."""
        assert self.pipeline is not None and self._delivery is not None and self._state is not None
        source_task = self._tasks[1]
        source_task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await source_task
        await self.pipeline.flush()
        await self._delivery.drain(10.0)
        for task in self._tasks:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        self._state.close()

    def keys(self) -> Counter[Key]:
        return archive_keys(read_archive(self.settings.sink.file.dir))

    async def wait_for(self, expected: set[Key], within: float = 20.0) -> Counter[Key]:
        """Poll the sink until every expected line is there (or ``within`` seconds pass)."""
        deadline = time.monotonic() + within
        while True:
            got = self.keys()
            if expected <= set(got) or time.monotonic() > deadline:
                return got
            await asyncio.sleep(0.1)

    def dropped(self, reason: str) -> float:
        return self.metrics.registry.get_sample_value(
            "kubestream_records_dropped_total", {"source": "logs", "reason": reason}) or 0.0


def read_archive(out_dir: Path) -> list[dict[str, Any]]:
    """Every record in the sink (NDJSON + gzip objects)."""
    records: list[dict[str, Any]] = []
    for path in sorted(p for p in out_dir.rglob("*.ndjson.gz") if p.is_file() and not p.name.startswith(".")):
        for line in gzip.decompress(path.read_bytes()).splitlines():
            records.append(orjson.loads(line))
    return records


def message_bytes(record: dict[str, Any]) -> bytes:
    """The original message bytes (``message_base64`` when the source kept them losslessly)."""
    if "message_base64" in record:
        return base64.b64decode(record["message_base64"])
    return str(record["message"]).encode("utf-8", "surrogateescape")


def record_key(record: dict[str, Any]) -> Key:
    """(pod uid, container, stream, seq) of an archived record (one seq per record)."""
    seqs = extract_seqs(message_bytes(record))
    assert len(seqs) == 1, record["message"][:200]
    k8s = record["kubernetes"]
    return (k8s["pod_uid"], k8s["container_name"], record["stream"], seqs[0])


def archive_keys(records: list[dict[str, Any]]) -> Counter[Key]:
    return Counter(record_key(r) for r in records)


def assert_exactly_once(got: Counter[Key], expected: set[Key]) -> None:
    """Each expected line exactly once, nothing else."""
    missing = expected - set(got)
    extra = set(got) - expected
    dupes = {k: n for k, n in got.items() if n > 1}
    assert not missing and not extra and not dupes, (
        f"missing {len(missing)} (e.g. {sorted(missing)[:3]}; by stream: {_seq_ranges(missing, got)}), "
        f"extra {len(extra)}, duplicated {len(dupes)} (e.g. {list(dupes.items())[:3]})")


def _seq_ranges(missing: set[Key], got: Counter[Key]) -> str:
    """Per (pod, container, stream): how many lines are missing, their seq range, and the last
    seq archived, so a failure tells a lost tail from a hole in the middle."""
    groups: dict[tuple[str, str, str], list[int]] = {}
    for uid, container, stream, seq in missing:
        groups.setdefault((uid, container, stream), []).append(seq)
    last: dict[tuple[str, str, str], int] = {}
    for uid, container, stream, seq in got:
        key = (uid, container, stream)
        last[key] = max(seq, last.get(key, -1))
    return "; ".join(f"{uid[:8]}/{container}/{stream}: {len(seqs)} in {min(seqs)}..{max(seqs)}, "
                     f"last archived {last.get((uid, container, stream))}"
                     for (uid, container, stream), seqs in sorted(groups.items()))


async def eventually(check: Callable[[], bool], within: float = 10.0) -> None:
    deadline = time.monotonic() + within
    while not check():
        if time.monotonic() > deadline:
            raise AssertionError("condition not reached in time")
        await asyncio.sleep(0.05)


def spool_has_entries(rig: Rig) -> bool:
    """True once a batch is registered (with no delivery running: the source is now paused)."""
    return rig.spool is not None and bool(rig.spool.pending())


async def finish_and_assert_exactly_once(rig: Rig, writer: NodeLogWriter) -> Counter[Key]:
    """Wait until every line the writer wrote is archived, stop both, and check each line is
    there exactly once. Returns what was archived."""
    try:
        got = await rig.wait_for(writer.ledger.keys())
    finally:
        await rig.stop()
        writer.stop()
    assert_exactly_once(got, writer.ledger.keys())
    return got


# -- hand-written container logs (hostile-file tests) ------------------------------------------

CRI_TS = b"2026-01-01T00:00:00.000000001Z"


def container_log_path(tmp: Path, pod_name: str, *, container: str = "app", name: str = "0.log",
                       uid: str | None = None) -> Path:
    """``<tmp>/pods/default_<pod>_<uid>/<container>/<name>`` (directories created, file not)."""
    path = tmp / "pods" / f"default_{pod_name}_{uid or uuid.uuid4()}" / container / name
    path.parent.mkdir(parents=True, exist_ok=True)
    return path


def write_cri(path: Path, *messages: str, first_line: bytes | None = None) -> None:
    """Append full CRI lines (one write each, as a runtime does); ``first_line`` goes first, raw."""
    with path.open("ab") as f:
        if first_line is not None:
            f.write(first_line)
        for message in messages:
            f.write(CRI_TS + b" stdout F " + message.encode() + b"\n")
            f.flush()


def archived_messages(out_dir: Path) -> Counter[tuple[str, str]]:
    """(pod name, message) of every archived record, counted."""
    return Counter((str(r["kubernetes"]["pod_name"]), str(r["message"])) for r in read_archive(out_dir))
