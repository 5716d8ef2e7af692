"""The container-logs half of ``kubestream demo``: one simulated node's log files, the node agent's
settings, the check of the logs archive against the writer's ledger, and the API requests each
agent made (the simulator counts them per authenticated user)."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from kubestream.config.settings import (
    BatchSettings,
    EventsSettings,
    FileSinkSettings,
    KubeletSettings,
    KubeSettings,
    LogSettings,
    LogsSettings,
    ServerSettings,
    Settings,
    SinkSettings,
    StateSettings,
)
from kubestream.sim.accounting import KubeletRecord, RequestRecord
from kubestream.sim.nodes.log_ledger import LogLedger
from kubestream.sim.nodes.logfiles import NodeLogConfig, NodeLogWriter, PodLister, extract_seqs

EVENTS_USER = "system:serviceaccount:kubestream:events-collector"
NODE_USER = "system:serviceaccount:kubestream:node-agent"
"""The two agents authenticate as different users, so the simulator's request log tells them apart
(as an API server's audit log would tell apart the two service accounts of deploy/)."""

LogKey = tuple[str, str, str, int]


def node_writer(pods_dir: Path, node: str, cluster: PodLister, *, seed: int, lines_per_s: float) -> NodeLogWriter:
    """The writer of one node's container logs, following that node's pods in the cluster."""
    return NodeLogWriter(
        NodeLogConfig(root=pods_dir / "pods", containers_dir=pods_dir / "containers", node=node, seed=seed,
                      lines_per_s=lines_per_s, sync_every_s=0.5,
                      # Deleted pods keep their files through the demo, as kubelet keeps them
                      # until its garbage collection; the agent drains them either way.
                      remove_after_s=300.0),
        cluster=cluster)


def node_agent_settings(out: Path, kubeconfig: Path, writer: NodeLogWriter,
                        kubelet: KubeletSettings | None = None) -> Settings:
    """The node agent's configuration: logs only, for the writer's node, into the demo's archive;
    with ``kubelet``, its pods come from the node's kubelet (``logs.metadata_source: kubelet``)."""
    config = writer.config
    source = {"metadata_source": "kubelet", "kubelet": kubelet} if kubelet is not None else {}
    return Settings(
        kube=KubeSettings(kubeconfig=str(kubeconfig)),
        events=EventsSettings(enabled=False),
        logs=LogsSettings(enabled=True, node_name=config.node, pods_dir=config.root,
                          containers_dir=config.links_dir, sweep_interval_s=1.0, **source),
        batch=BatchSettings(max_records=2000, max_age_s=2.0),
        # Its own stream uid: two writers into one archive never share an object name.
        sink=SinkSettings(type="file", stream_uid="demo-node", file=FileSinkSettings(dir=out / "archive")),
        state=StateSettings(dir=out / "node-state"),
        server=ServerSettings(enabled=False),
        log=LogSettings(level="warning"),
    )


def log_keys(records: list[dict[str, Any]]) -> Counter[LogKey]:
    """(pod uid, container, stream, seq) of every log line archived (a record may merge several)."""
    keys: Counter[LogKey] = Counter()
    for r in records:
        k8s = r.get("kubernetes") or {}
        for seq in extract_seqs(str(r.get("message", ""))):
            keys[(str(k8s.get("pod_uid")), str(k8s.get("container_name")), str(r.get("stream")), seq)] += 1
    return keys


@dataclass(frozen=True, slots=True)
class LogsCheck:
    """The logs archive compared with the writer's ledger."""

    written: int
    archived: int
    missing: int
    duplicated: int
    extra: int
    wrong_metadata: int
    pods: int
    enrichment: Counter[str]

    @property
    def ok(self) -> bool:
        """Every written line archived exactly once, nothing else, each with its pod's metadata."""
        return self.written > 0 and not (self.missing or self.duplicated or self.extra or self.wrong_metadata)

    def verdict(self) -> str:
        """One line for the summary."""
        if self.ok:
            return "every line exactly once with its pod's metadata"
        return (f"DIFFERS from the writer's ledger: {self.missing} missing, {self.duplicated} duplicated, "
                f"{self.extra} unknown, {self.wrong_metadata} with wrong pod metadata")


def check_logs(records: list[dict[str, Any]], ledger: LogLedger) -> LogsCheck:
    """Compare archived log records with every line the writer wrote."""
    lines = {line.key: line for line in ledger.lines()}
    got = log_keys(records)
    wrong = 0
    for r in records:
        k8s = r.get("kubernetes") or {}
        for seq in extract_seqs(str(r.get("message", ""))):
            line = lines.get((str(k8s.get("pod_uid")), str(k8s.get("container_name")), str(r.get("stream")), seq))
            if line is not None and (k8s.get("namespace"), k8s.get("pod_name")) != (line.namespace, line.pod):
                wrong += 1
    return LogsCheck(
        written=len(lines), archived=sum(got.values()), missing=len(lines.keys() - got.keys()),
        duplicated=sum(1 for n in got.values() if n > 1), extra=len(got.keys() - lines.keys()),
        wrong_metadata=wrong, pods=len({key[0] for key in lines}),
        enrichment=Counter(str((r.get("kubernetes") or {}).get("enrichment", "none")) for r in records))


def busiest_pod(ledger: LogLedger) -> tuple[str, str] | None:
    """(namespace, name) of the pod with the most lines written, for the ``timeline`` hint."""
    lines = Counter((line.namespace, line.pod) for line in ledger.lines())
    return lines.most_common(1)[0][0] if lines else None


def requests_by_agent(records: list[RequestRecord]) -> dict[str, dict[str, Counter[str]]]:
    """User → verb → resource → requests (a watch counts once, when accepted). A resource asked for
    with a field selector shows it (the node agent's pods are only those of its node)."""
    out: dict[str, dict[str, Counter[str]]] = {}
    for r in records:
        resource = f"{r.resource}/{r.subresource}" if r.subresource else (r.resource or r.path.partition("?")[0])
        if r.field_selector:
            resource += f"[{r.field_selector}]"
        out.setdefault(r.user, {}).setdefault(r.verb, Counter())[resource] += 1
    return out


def kubelet_requests_by_user(records: list[KubeletRecord]) -> dict[str, Counter[str]]:
    """User → "GET /pods"-style request → count, for the kubelets the simulator serves."""
    out: dict[str, Counter[str]] = {}
    for r in records:
        out.setdefault(r.user, Counter())[f"{r.verb} {r.path.partition('?')[0]}"] += 1
    return out


def format_kubelet_requests(requests: Counter[str]) -> str:
    """``"GET /pods 6"``, or ``"none"``."""
    return ", ".join(f"{name} {n}" for name, n in sorted(requests.items())) or "none"


def format_requests(by_verb: dict[str, Counter[str]]) -> str:
    """``"list 7 (events, pods, …); watch 7 (…)"``: per verb, its total and the resources."""
    parts = []
    for verb, resources in sorted(by_verb.items(), key=lambda kv: (-sum(kv[1].values()), kv[0])):
        named = ", ".join(name if n == 1 else f"{name} {n}" for name, n in sorted(resources.items()))
        parts.append(f"{verb} {sum(resources.values())} ({named})")
    return "; ".join(parts) or "none"
