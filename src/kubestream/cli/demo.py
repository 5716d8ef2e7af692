"""``kubestream demo``: the simulated cluster with a workload, the real events collector and a
node agent (one simulated node's container log files) against it, a file archive under
./kubestream-demo/, live progress, and a summary checked against the simulator's ledgers of every
event occurrence and every log line it wrote, with the API requests each agent made.
``--metadata-source kubelet`` has the node agent read its pods from the simulated node's kubelet.
"""

from __future__ import annotations

import argparse
import asyncio
import gzip
import secrets
import shlex
import shutil
import sys
import tempfile
import time
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TextIO

import orjson
import yaml

from kubestream.agent.runner import Agent
from kubestream.cli.demo_logs import (
    EVENTS_USER,
    NODE_USER,
    busiest_pod,
    check_logs,
    format_kubelet_requests,
    format_requests,
    kubelet_requests_by_user,
    log_keys,
    node_agent_settings,
    node_writer,
    requests_by_agent,
)
from kubestream.config.settings import (
    BatchSettings,
    EventsSettings,
    FileSinkSettings,
    KubeletSettings,
    KubeSettings,
    LogSettings,
    ServerSettings,
    Settings,
    SinkSettings,
    StateSettings,
)
from kubestream.obs.logging import setup_logging
from kubestream.sim.accounting import KubeletRecord, RequestRecord
from kubestream.sim.nodes.log_ledger import LogLedger
from kubestream.sim.nodes.logfiles import NodeLogWriter
from kubestream.sim.server import SimConfig, SimServer
from kubestream.sim.workload.event_ledger import EventLedger
from kubestream.sim.workload.generator import Workload
from kubestream.sim.workload.scenario import WorkloadConfig

_MARKER = ".kubestream-demo"


def _positive(text: str) -> float:
    """A rate above zero (with none written, the logs check would have nothing to check)."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number, got {text!r}") from None
    if not value > 0:
        raise argparse.ArgumentTypeError(f"must be above 0, got {text}")
    return value


def _parse(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="kubestream demo", description=__doc__)
    p.add_argument("--duration", type=float, default=15.0, help="seconds of simulated activity (default 15)")
    p.add_argument("--rate", type=float, default=200.0, help="event occurrences per second (default 200)")
    p.add_argument("--log-rate", type=_positive, default=100.0,
                   help="container log lines per second on the simulated node (default 100)")
    p.add_argument("--seed", type=int, default=1, help="workload seed (default 1)")
    p.add_argument("--out", type=Path, default=Path("kubestream-demo"), help="output folder (default ./kubestream-demo)")
    p.add_argument("--catch-up", type=float, default=30.0, help="max seconds to wait for the archive to catch up")
    p.add_argument("--metadata-source", choices=("apiserver", "kubelet"), default="apiserver",
                   help="where the node agent reads its pods: a pod watch on the API server (default) or "
                        "the node's kubelet (GET /pods)")
    return p.parse_args(argv)


def _prepare_out(out: Path) -> None:
    """Start from a clean folder, but only wipe one that an earlier demo made."""
    if out.exists():
        if not (out / _MARKER).exists() and any(out.iterdir()):
            raise SystemExit(f"kubestream demo: {out} exists and was not made by the demo; choose --out")
        shutil.rmtree(out)
    out.mkdir(parents=True)
    (out / _MARKER).write_text("made by kubestream demo\n")


def demo_settings(out: Path, kubeconfig: Path) -> Settings:
    """The agent's configuration for the demo (also written to <out>/kubestream.yaml)."""
    return Settings(
        kube=KubeSettings(kubeconfig=str(kubeconfig)),
        events=EventsSettings(since="retained"),
        batch=BatchSettings(max_records=2000, max_age_s=2.0),
        sink=SinkSettings(type="file", stream_uid="demo", file=FileSinkSettings(dir=out / "archive")),
        state=StateSettings(dir=out / "state"),
        server=ServerSettings(host="127.0.0.1", port=0),
        log=LogSettings(level="warning"),
    )


def read_archive(root: Path) -> list[dict[str, Any]]:
    """Every record of the NDJSON(.gz) files under ``root``."""
    records: list[dict[str, Any]] = []
    for path in sorted(root.rglob("*.ndjson*")):
        data = path.read_bytes()
        if path.name.endswith(".gz"):
            data = gzip.decompress(data)
        records.extend(orjson.loads(line) for line in data.splitlines() if line)
    return records


def _archived_occurrences(root: Path) -> tuple[int, int, int]:
    records = read_archive(root)
    files = sum(1 for _ in root.rglob("*.ndjson*"))
    return sum(int(r["event"]["count_delta"]) for r in records), len(records), files


@dataclass
class _Agents:
    """What runs during the demo besides the simulator."""

    events_task: asyncio.Task[int]
    node_task: asyncio.Task[int]
    workload: Workload
    writer: NodeLogWriter

    def failed(self) -> bool:
        """True once an agent stopped by itself (it only should when asked)."""
        return self.events_task.done() or self.node_task.done()


def _write_config(path: Path, settings: Settings) -> None:
    path.write_text(yaml.safe_dump(orjson.loads(settings.model_dump_json(exclude_defaults=True)), sort_keys=False))


async def _run(args: argparse.Namespace, out: Path, stream: TextIO) -> int:
    tokens = (secrets.token_hex(16), secrets.token_hex(16))
    server = SimServer(SimConfig(tokens={tokens[0]: EVENTS_USER, tokens[1]: NODE_USER},
                                 kubelets=args.metadata_source == "kubelet"))
    server.start()
    try:
        with tempfile.TemporaryDirectory(prefix="kubestream-demo-node-") as node_dir:
            return await _run_agents(args, out, server, tokens, Path(node_dir), stream)
    finally:
        server.stop()


async def _run_agents(args: argparse.Namespace, out: Path, server: SimServer, tokens: tuple[str, str],
                      node_dir: Path, stream: TextIO) -> int:
    """The events collector and the node agent, each with its own token (so the simulator's request
    log tells them apart), beside the workload and the node's log writer."""
    events_token, node_token = tokens
    settings = demo_settings(out, server.write_kubeconfig(out / "kubeconfig", events_token))
    _write_config(out / "kubestream.yaml", settings)
    # Both agents write into it; each checks its sink at start, and the node agent may start
    # before the events collector has created the folder.
    (out / "archive").mkdir(exist_ok=True)
    workload = Workload(server.cluster, WorkloadConfig(seed=args.seed, events_per_s=args.rate), EventLedger())
    events = Agent(settings)
    events_task = asyncio.create_task(events.run(), name="events-collector")
    workload.step()  # the first tick creates the nodes; the writer follows the first one
    workload.start()
    node = workload.node_names[0]
    if server.config.kubelets:
        # Serve the node's kubelet (its address goes into the Node's status) before the node
        # agent looks it up, as a real node's kubelet runs before any DaemonSet pod on it.
        await asyncio.to_thread(server.kubelet, node)
    writer = node_writer(node_dir, node, server.cluster, seed=args.seed, lines_per_s=args.log_rate)
    node_settings = node_agent_settings(out, server.write_kubeconfig(out / "node-agent.kubeconfig", node_token),
                                        writer, _kubelet_settings(out, server, node_token))
    _write_config(out / "node-agent.yaml", node_settings)
    node_agent = Agent(node_settings)
    agents = _Agents(events_task, asyncio.create_task(node_agent.run(), name="node-agent"), workload, writer)
    writer.start()
    print(f"simulated cluster at {server.url}; events collector and node agent ({node}, log files under "
          f"{node_dir}) archiving to {out / 'archive'}", file=stream)
    started = time.monotonic()
    try:
        await _progress(args, out, agents, started, stream)
        await _catch_up(args, out, agents)
    finally:
        await asyncio.to_thread(workload.stop)
        await asyncio.to_thread(writer.stop)
        events.request_stop()
        node_agent.request_stop()
        codes = [await events_task, await agents.node_task]
    ok = _summary(out, workload.ledger, writer.ledger, server.requests.records(), time.monotonic() - started, stream,
                  server.kubelet_requests.records() if server.config.kubelets else None)
    return next((code for code in codes if code), 0 if ok else 1)


def _kubelet_settings(out: Path, server: SimServer, token: str) -> KubeletSettings | None:
    """How the node agent reaches its kubelet (None: it watches the API server): the simulator's
    kubelet CA and the node agent's own token, in files as a pod's service account has them."""
    ca = server.kubelet_ca_path
    if ca is None:
        return None
    token_file = out / "node-agent.token"
    token_file.write_text(token)
    token_file.chmod(0o600)
    return KubeletSettings(ca_file=ca, token_file=token_file, refresh_s=5.0)


def _archived_lines(root: Path) -> set[tuple[str, str, str, int]]:
    return set(log_keys(read_archive(root)))


async def _progress(args: argparse.Namespace, out: Path, agents: _Agents, started: float, stream: TextIO) -> None:
    archive = out / "archive"
    while time.monotonic() - started < args.duration and not agents.failed():
        await asyncio.sleep(1.0)
        got, records, files = await asyncio.to_thread(_archived_occurrences, archive / "events")
        lines = await asyncio.to_thread(_archived_lines, archive / "logs")
        print(f"  {time.monotonic() - started:5.1f}s  events: written {agents.workload.ledger.total():6d}, "
              f"archived {got:6d} in {records:5d} records, {files:3d} files   logs: written "
              f"{len(agents.writer.ledger):6d}, archived {len(lines):6d}", file=stream, flush=True)


async def _catch_up(args: argparse.Namespace, out: Path, agents: _Agents) -> None:
    """Stop writing, then wait (at most ``--catch-up`` seconds) until both archives hold it all."""
    await asyncio.to_thread(agents.workload.stop)  # flushes pending series counts into the API
    await asyncio.to_thread(agents.writer.stop)
    truth, lines = agents.workload.ledger.total(), agents.writer.ledger.keys()
    archive = out / "archive"
    deadline = time.monotonic() + args.catch_up
    while time.monotonic() < deadline and not agents.failed():
        got, _, _ = await asyncio.to_thread(_archived_occurrences, archive / "events")
        if got >= truth and lines <= await asyncio.to_thread(_archived_lines, archive / "logs"):
            return
        await asyncio.sleep(0.5)


def _summary(out: Path, ledger: EventLedger, log_ledger: LogLedger, requests: list[RequestRecord], elapsed: float,
             stream: TextIO, kubelet: list[KubeletRecord] | None = None) -> bool:
    """Print the summary; True if both archives match their ledgers."""
    archive = out / "archive"
    records = read_archive(archive / "events")
    files = sorted((archive / "events").rglob("*.ndjson*"))
    got = sum(int(r["event"]["count_delta"]) for r in records)
    per_uid: Counter[str] = Counter()
    for r in records:
        per_uid[r["event"]["uid"]] += int(r["event"]["count_delta"])
    truth = ledger.per_uid()
    matches = dict(per_uid) == {u: n for u, n in truth.items() if n}
    enrichment = Counter(r.get("kubernetes", {}).get("enrichment", "none") for r in records)
    reasons = Counter[str]()
    for r in records:
        reasons[r["event"]["reason"]] += int(r["event"]["count_delta"])
    top = ", ".join(f"{k} {v}" for k, v in reasons.most_common(5))
    verdict = "matches the simulator's ledger exactly" if matches else "DIFFERS from the simulator's ledger"
    logs = check_logs(read_archive(archive / "logs"), log_ledger)
    log_files = sorted((archive / "logs").rglob("*.ndjson*"))
    by_agent = requests_by_agent(requests)
    example = files[0].relative_to(out.parent) if files else "(none)"
    print(f"""
kubestream demo finished in {elapsed:.1f} s
  events:    {ledger.total()} occurrences ({len(truth)} events) written by the simulated recorders
  archived:  {got} occurrences in {len(records)} records, {len(files)} files — {verdict}
  enriched:  {", ".join(f"{k} {v}" for k, v in enrichment.most_common())}
  top:       {top}
  logs:      {logs.written} lines written for {logs.pods} pods of one node
  archived:  {logs.archived} lines in {len(log_files)} files — {logs.verdict()}
  enriched:  {", ".join(f"{k} {v}" for k, v in logs.enrichment.most_common())}
  API requests:
    events collector: {format_requests(by_agent.get(EVENTS_USER, {}))}
    node agent:       {format_requests(by_agent.get(NODE_USER, {}))}{_kubelet_line(kubelet)}
  files:     {example}
next:
{_next_steps(out, files, busiest_pod(log_ledger))}
  config used: {out / 'kubestream.yaml'} and {out / 'node-agent.yaml'}""", file=stream)
    return matches and logs.ok


def _kubelet_line(records: list[KubeletRecord] | None) -> str:
    """The node agent's kubelet requests, in kubelet mode (an empty string otherwise)."""
    if records is None:
        return ""
    requests = kubelet_requests_by_user(records).get(NODE_USER, Counter())
    return f"\n    node agent → its kubelet: {format_kubelet_requests(requests)}"


def _kubestream_command() -> str:
    """How to run this kubestream again, as a full path (the venv need not be activated)."""
    script = Path(sys.executable).parent / "kubestream"
    return shlex.quote(str(script)) if script.exists() else f"{shlex.quote(sys.executable)} -m kubestream.cli.main"


def _next_steps(out: Path, files: list[Path], pod: tuple[str, str] | None) -> str:
    """Commands to try on the demo's archive, runnable as printed (tests/query/test_query_docs.py runs them)."""
    ks, archive = _kubestream_command(), shlex.quote(str(out / "archive"))
    steps = [
        f'{ks} query --archive {archive} "select reason, sum(count_delta) occurrences from events '
        f'group by 1 order by 2 desc limit 10"',
        f'{ks} query --archive {archive} "select namespace, pod, container, stream, count(*) lines from logs '
        f'group by all order by lines desc limit 10"',
        f"{ks} timeline sts/db -n payments --archive {archive} --since 1h",
        f"{ks} timeline sts/db -n payments --archive {archive} --since 1h "
        f"--html {shlex.quote(str(out / 'timeline.html'))}   # then open it in a browser",
    ]
    if pod is not None:
        namespace, name = pod
        steps.append(f"{ks} timeline {shlex.quote('pod/' + name)} -n {shlex.quote(namespace)} --archive {archive} "
                     "--since 1h   # one pod's events and log lines in order")
    if files:
        steps.append(f"zcat {shlex.quote(str(files[0]))} | head -1 | python3 -m json.tool")
    steps.append(f"{ks} sim --kubeconfig-out sim.kubeconfig   # then point kubectl (KUBECONFIG=sim.kubeconfig) "
                 "or the agent at it")
    return "\n".join(f"  {step}" for step in steps)


def main(argv: list[str] | None = None) -> int:
    """Entry point of ``kubestream demo``."""
    args = _parse(argv)
    setup_logging(LogSettings(level="warning"))
    out = args.out.resolve()
    _prepare_out(out)
    try:
        return asyncio.run(_run(args, out, sys.stdout))
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
