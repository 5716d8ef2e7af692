"""``kubestream sim`` / ``python -m kubestream.sim``: run the simulated API server until SIGINT
or SIGTERM, optionally with the workload generator."""

from __future__ import annotations

import argparse
import importlib
import signal
import threading
from pathlib import Path
from typing import Any

from kubestream.sim.config import SimConfig
from kubestream.sim.nodes.logfiles import NodeLogConfig, NodeLogWriter
from kubestream.sim.server import SimServer
from kubestream.sim.versions import DEFAULT_KUBE_VERSION, VERSIONS


def _node_logs_spec(value: str) -> str:
    """argparse type of ``--node-logs``: ``NODE=DIR``, both non-empty."""
    node, sep, directory = value.partition("=")
    if not (node and sep and directory):
        raise argparse.ArgumentTypeError(f"expected NODE=DIR, got {value!r}")
    return value


def build_parser() -> argparse.ArgumentParser:
    """The command-line flags."""
    parser = argparse.ArgumentParser(prog="kubestream sim", description="Run a simulated Kubernetes API server.")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8001)
    parser.add_argument("--tls", action="store_true", help="serve HTTPS with a generated CA")
    parser.add_argument("--token", action="append", default=None, help="accepted bearer token (repeatable)")
    parser.add_argument("--event-ttl", type=float, default=3600.0, help="event TTL in seconds (default 3600)")
    parser.add_argument("--kubeconfig-out", type=Path, default=None, help="write a kubeconfig to this path")
    parser.add_argument("--workload", action="store_true", help="run the workload generator")
    parser.add_argument("--seed", type=int, default=None, help="workload random seed")
    parser.add_argument("--kube-version", choices=sorted(VERSIONS), default=DEFAULT_KUBE_VERSION,
                        help=f"kube-apiserver version whose response shapes to give (default {DEFAULT_KUBE_VERSION})")
    parser.add_argument("--compaction-interval", type=float, default=300.0,
                        help="etcd compaction interval in seconds, 0 to disable (default 300, as kube-apiserver)")
    parser.add_argument("--kubelets", action="store_true",
                        help="serve a kubelet API (HTTPS, one port per Node, published in the Node's status)")
    parser.add_argument("--node-logs", action="append", default=None, metavar="NODE=DIR", type=_node_logs_spec,
                        help="write container logs of NODE's pods under DIR (DIR/pods, DIR/containers) "
                             "and serve them as pods/log (repeatable)")
    parser.add_argument("--log-lines-per-s", type=float, default=50.0,
                        help="log lines per second per --node-logs node (default 50)")
    return parser


def _start_workload(server: SimServer, args: argparse.Namespace) -> Any:
    try:
        workload = importlib.import_module("kubestream.sim.workload.generator")
    except ImportError:
        print("workload generator not available; serving an idle cluster")
        return None
    runner = getattr(workload, "run_workload_from_cli", None)
    if runner is None:
        print("kubestream.sim.workload.generator has no run_workload_from_cli; serving an idle cluster")
        return None
    return runner(server.cluster, args)


def _start_node_logs(server: SimServer, specs: list[str], lines_per_s: float) -> list[NodeLogWriter]:
    writers = []
    for spec in specs:
        node, _, directory = spec.partition("=")
        root = Path(directory) / "pods"
        writer = NodeLogWriter(NodeLogConfig(root=root, node=node, containers_dir=Path(directory) / "containers",
                                             lines_per_s=lines_per_s), cluster=server.cluster)
        server.serve_node_logs(writer)
        writer.start()
        writers.append(writer)
        print(f"node logs of {node}: {root}", flush=True)
    return writers


def main(argv: list[str] | None = None) -> int:
    """Run until interrupted; returns the exit code."""
    args = build_parser().parse_args(argv)
    config = SimConfig(host=args.host, port=args.port, tls=args.tls, tokens=args.token,
                       event_ttl_s=args.event_ttl, kube_version=args.kube_version,
                       compaction_interval_s=args.compaction_interval or None, kubelets=args.kubelets)
    stop = threading.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: stop.set())
    with SimServer(config) as server:
        print(f"simulated kube-apiserver listening on {server.url}", flush=True)
        if args.kubeconfig_out:
            path = server.write_kubeconfig(args.kubeconfig_out)
            print(f"kubeconfig written: {path}\n  try: KUBECONFIG={path} kubectl get pods -A", flush=True)
        else:
            print(f"  try: kubectl --server {server.url} {'--insecure-skip-tls-verify ' if args.tls else ''}"
                  "get pods -A   (or pass --kubeconfig-out PATH)", flush=True)
        if server.kubelet_ca_path is not None:
            print(f"kubelets: one HTTPS port per Node (status.daemonEndpoints.kubeletEndpoint.Port), "
                  f"CA {server.kubelet_ca_path}", flush=True)
        workload = _start_workload(server, args) if args.workload else None
        writers = _start_node_logs(server, args.node_logs or [], args.log_lines_per_s)
        stop.wait()
        for writer in writers:
            writer.stop()
        stopper = getattr(workload, "stop", None)
        if callable(stopper):
            stopper()
    print("stopped", flush=True)
    return 0
