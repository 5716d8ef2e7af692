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
from kubestream.sim.server import SimServer
from kubestream.sim.versions import DEFAULT_KUBE_VERSION, VERSIONS


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
    return parser


def _start_workload(server: SimServer, args: argparse.Namespace) -> Any:
    try:
        workload = importlib.import_module("kubestream.sim.workload")
    except ImportError:
        print("workload generator not available; serving an idle cluster")
        return None
    runner = getattr(workload, "run_workload_from_cli", None)
    if runner is None:
        print("kubestream.sim.workload has no run_workload_from_cli; serving an idle cluster")
        return None
    return runner(server.cluster, args)


def main(argv: list[str] | None = None) -> int:
    """Run until interrupted; returns the exit code."""
    args = build_parser().parse_args(argv)
    config = SimConfig(host=args.host, port=args.port, tls=args.tls, tokens=args.token,
                       event_ttl_s=args.event_ttl, kube_version=args.kube_version,
                       compaction_interval_s=args.compaction_interval or None)
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
        workload = _start_workload(server, args) if args.workload else None
        stop.wait()
        stopper = getattr(workload, "stop", None)
        if callable(stopper):
            stopper()
    print("stopped", flush=True)
    return 0
