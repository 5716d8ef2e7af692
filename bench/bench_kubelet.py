"""The node agent's metadata source, API server against kubelet, on a node of 110 pods with churn.

Both modes run the real node agent (``kubestream run``, logs only) as a child process against the
simulator with HTTPS kubelets, on the same workload: ``PODS`` pods on the agent's node, one
replaced every ``CHURN_S`` seconds (``--churn-s``) (deleted, and a new one created that writes its first log line
at once), every pod writing a line every ``LINE_EVERY_S`` seconds. Measured over ``WINDOW_S``
seconds after a warm-up, per mode:

* API server requests of the agent (by verb and resource) and what its watches streamed (events
  and bytes: the simulator counts each watch's traffic), scaled to one hour. A watch lives 300-600 s
  (``kube.watch_timeout_s``), so a window of a few minutes sees few renewals: the steady state is
  also given as the watches open at the end times 3600 / 450 (the mean lifetime) plus the other
  requests of the window, scaled;
* kubelet ``GET /pods`` requests per hour;
* the agent's CPU (utime + stime of the child) as a share of one core;
* metadata freshness: of the pods created in the window, how many had their FIRST log line
  archived with ``enrichment: ok`` (target >= 99 % in kubelet mode with the default refresh);

and, in this process, the cost of one kubelet refresh of ``PODS`` pods (read + decode, the agent's
own client and decoder) against the default interval: the polling cost in share of a core
(target <= 1 %).

    python -m bench.bench_kubelet [--window 300]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import tempfile
import threading
import time
from collections import Counter
from pathlib import Path
from typing import Any

from tests.agent.harness import AgentProcess, read_archive, write_config

from kubestream.config.settings import EnrichSettings, KubeletSettings, KubeSettings
from kubestream.kube.kubelet_client import KubeletClient
from kubestream.kube.objects import Decoders
from kubestream.sim.server import SimServer
from kubestream.sim.testing import running_sim

PODS = 110
CHURN_S = 6.0
LINE_EVERY_S = 2.0
WARMUP_S = 10.0
NODE = "node-1"
TOKEN = "bench-node-agent"
USER = "system:serviceaccount:kubestream:node-agent"
DEFAULT_REFRESH_S = KubeletSettings().refresh_s
MEAN_WATCH_S = sum(KubeSettings().watch_timeout_s) / 2


class NodeWorkload:
    """Pods on one node with churn; each pod's container writes CRI lines into its log file."""

    def __init__(self, server: SimServer, pods_dir: Path, churn_s: float = CHURN_S) -> None:
        self._server = server
        self._churn_s = churn_s
        self._pods_dir = pods_dir
        self._pods: list[dict[str, Any]] = []
        self._serial = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="node-workload", daemon=True)
        self.created_at: dict[str, float] = {}
        """Pod uid → when it was created (and wrote its first line)."""

    def create_pods(self) -> None:
        """The node's ``PODS`` pods, each with its first line written."""
        for _ in range(PODS):
            self._create()

    def start(self) -> None:
        """Create the pods, then churn and write in the background."""
        self.create_pods()
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._thread.join()

    def _create(self) -> None:
        self._serial += 1
        name = f"web-{self._serial:05d}"
        self._server.cluster.create("pods", {
            "metadata": {"name": name, "namespace": "shop", "labels": {"app": "web"}},
            "spec": {"nodeName": NODE, "containers": [{"name": "app", "image": "shop/web:2.1"}]}})
        pod = self._server.cluster.patch("pods", "shop", name, {"status": {"phase": "Running", "podIP": "10.1.0.1"}})
        self._pods.append(pod)
        self.created_at[pod["metadata"]["uid"]] = time.time()
        self._write(pod)  # logs at once on start: the freshness case

    def _path(self, pod: dict[str, Any]) -> Path:
        meta = pod["metadata"]
        return self._pods_dir / f"shop_{meta['name']}_{meta['uid']}" / "app" / "0.log"

    def _write(self, pod: dict[str, Any]) -> None:
        path = self._path(pod)
        path.parent.mkdir(parents=True, exist_ok=True)
        stamp = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime()) + f".{time.time_ns() % 10**9:09d}Z"
        with path.open("a") as f:
            f.write(f"{stamp} stdout F {pod['metadata']['name']} says hello\n")

    def _run(self) -> None:
        next_churn = time.monotonic() + self._churn_s
        while not self._stop.wait(LINE_EVERY_S):
            for pod in list(self._pods):
                self._write(pod)
            while time.monotonic() >= next_churn:
                next_churn += self._churn_s
                gone = self._pods.pop(0)
                self._server.cluster.delete("pods", "shop", gone["metadata"]["name"])
                self._create()


def _cpu_s(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _run_mode(mode: str, window_s: float, churn_s: float) -> dict[str, Any]:
    with tempfile.TemporaryDirectory(prefix=f"bench-kubelet-{mode}-") as tmp, \
            running_sim(kubelets=True, tokens={TOKEN: USER}) as server:
        root = Path(tmp)
        server.cluster.create("namespaces", {"metadata": {"name": "shop", "labels": {"team": "payments"}}})
        server.cluster.create("nodes", {"metadata": {"name": NODE, "labels": {"zone": "eu-1a"}}})
        server.kubelet(NODE)
        token_file = root / "token"
        token_file.write_text(TOKEN)
        logs: dict[str, Any] = {"enabled": True, "node_name": NODE, "pods_dir": str(root / "pods"),
                                "containers_dir": None, "metadata_source": mode}
        if mode == "kubelet":
            logs["kubelet"] = {"ca_file": str(server.kubelet_ca_path), "token_file": str(token_file)}
        config = write_config(root, server, events={"enabled": False}, logs=logs,
                              batch={"max_records": 2000, "max_age_s": 1.0}, log={"level": "warning"})
        # The agent authenticates with the node agent's token (not the kubeconfig's default).
        config.write_text(config.read_text().replace(str(root / "kubeconfig"),
                                                     str(server.write_kubeconfig(root / "agent.kubeconfig", TOKEN))))
        workload = NodeWorkload(server, root / "pods", churn_s)
        workload.start()
        agent = AgentProcess(config, root).start()
        try:
            agent.wait_ready()
            time.sleep(WARMUP_S)
            server.requests.reset()
            server.kubelet_requests.reset()
            assert agent.proc is not None
            cpu0, t0 = _cpu_s(agent.proc.pid), time.time()
            time.sleep(window_s)
            cpu1, t1 = _cpu_s(agent.proc.pid), time.time()
            requests = [r for r in server.requests.records() if r.user == USER]
            traffic = server.requests.watch_totals(user=USER)
            open_watches = Counter(t.resource for t in server.requests.watch_traffic()
                                   if t.user == USER and t.closed is None)
            kubelet = server.kubelet_requests.count(path="/pods")
        finally:
            workload.stop()
            time.sleep(3.0)  # the last lines reach the archive
            agent.terminate()
        records = read_archive(root / "archive")
    per_hour = 3600.0 / (t1 - t0)
    first: dict[str, dict[str, Any]] = {}
    for r in sorted(records, key=lambda r: r["timestamp"]):
        first.setdefault(r["kubernetes"].get("pod_uid", ""), r)
    new = [uid for uid, at in workload.created_at.items() if t0 <= at < t1]
    fresh = sum(1 for uid in new if first.get(uid, {}).get("kubernetes", {}).get("enrichment") == "ok")
    by_request = Counter(f"{r.verb} {r.resource}" + (f" [{r.field_selector}]" if r.field_selector else "")
                         for r in requests)
    others = sum(1 for r in requests if r.verb != "watch")
    steady = sum(open_watches.values()) * 3600.0 / MEAN_WATCH_S + others * per_hour
    return {
        "mode": mode, "window_s": t1 - t0, "requests_per_hour": len(requests) * per_hour,
        "steady_requests_per_hour": steady, "open_watches": dict(sorted(open_watches.items())),
        "by_request": {k: v * per_hour for k, v in sorted(by_request.items())},
        "watch_events_per_hour": traffic.events * per_hour, "watch_bytes_per_hour": traffic.bytes * per_hour,
        "kubelet_reads_per_hour": kubelet * per_hour, "cpu_share": (cpu1 - cpu0) / (t1 - t0),
        "new_pods": len(new), "fresh": fresh, "missing": sum(1 for uid in new if uid not in first),
    }


async def _refresh_cost(rounds: int) -> float:
    """CPU seconds of one kubelet refresh of ``PODS`` pods: GET /pods and decode, in this process."""
    with tempfile.TemporaryDirectory(prefix="bench-kubelet-poll-") as tmp, \
            running_sim(kubelets=True, tokens={TOKEN: USER}) as server:
        server.cluster.create("namespaces", {"metadata": {"name": "shop"}})
        server.cluster.create("nodes", {"metadata": {"name": NODE}})
        endpoint = server.kubelet(NODE)
        NodeWorkload(server, Path(tmp)).create_pods()
        token_file = Path(tmp) / "token"
        token_file.write_text(TOKEN)
        settings = KubeletSettings(ca_file=server.kubelet_ca_path or Path(), token_file=token_file)
        client = KubeletClient(settings, endpoint.url)
        decoders = Decoders(EnrichSettings())
        try:
            assert len(await client.pods()) == PODS  # connection and token set up outside the measure
            started = time.process_time()
            for _ in range(rounds):
                pods = [decoders.pod(item) for item in await client.pods()]
            assert len(pods) == PODS
            return (time.process_time() - started) / rounds
        finally:
            await client.close()


def _print_mode(r: dict[str, Any]) -> None:
    print(f"\n{r['mode']} mode ({r['window_s']:.0f} s window):")
    print(f"  API requests per hour: {r['requests_per_hour']:.0f} measured, {r['steady_requests_per_hour']:.0f} "
          f"steady state (open watches: {r['open_watches'] or 'none'})")
    for name, n in r["by_request"].items():
        print(f"    {name}: {n:.0f}/h")
    print(f"  watch traffic per hour: {r['watch_events_per_hour']:.0f} events, "
          f"{r['watch_bytes_per_hour'] / 1e6:.2f} MB")
    print(f"  kubelet GET /pods per hour: {r['kubelet_reads_per_hour']:.0f}")
    print(f"  agent CPU: {100 * r['cpu_share']:.2f} % of a core")
    share = r["fresh"] / r["new_pods"] if r["new_pods"] else 0.0
    print(f"  freshness: {r['fresh']}/{r['new_pods']} new pods' first line enriched ({100 * share:.1f} %), "
          f"{r['missing']} without any archived line")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--window", type=float, default=300.0, help="seconds measured per mode (default 300)")
    parser.add_argument("--churn-s", type=float, default=CHURN_S,
                        help=f"a pod replaced every this many seconds (default {CHURN_S:.0f}); lower for a "
                             "larger freshness sample")
    args = parser.parse_args()
    print(f"{PODS} pods on the node, one replaced every {args.churn_s:g} s, a line per pod every {LINE_EVERY_S:.0f} s")
    results = [_run_mode(mode, args.window, args.churn_s) for mode in ("apiserver", "kubelet")]
    for r in results:
        _print_mode(r)
    api, kubelet = results
    cost = asyncio.run(_refresh_cost(50))
    print(f"\nkubelet refresh of {PODS} pods: {1000 * cost:.1f} ms CPU; at the default {DEFAULT_REFRESH_S:.0f} s "
          f"interval {100 * cost / DEFAULT_REFRESH_S:.2f} % of a core (target <= 1 %)")
    print(f"kubelet mode / apiserver mode: steady API requests "
          f"{kubelet['steady_requests_per_hour'] / max(api['steady_requests_per_hour'], 1e-9):.2f}, "
          f"watch bytes {kubelet['watch_bytes_per_hour'] / max(api['watch_bytes_per_hour'], 1):.3f}, "
          f"agent CPU {kubelet['cpu_share'] / max(api['cpu_share'], 1e-9):.2f}")
    pod_requests = [k for k in kubelet["by_request"] if k.split(" ")[1] == "pods"]
    print(f"kubelet mode pod lists/watches on the API server: {len(pod_requests)} (target 0)")


if __name__ == "__main__":
    main()
