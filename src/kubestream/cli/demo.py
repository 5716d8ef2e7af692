"""``kubestream demo``: the simulated cluster with a workload, the real agent against it, a file
archive under ./kubestream-demo/, live progress, and a summary checked against the simulator's
ledger of every event occurrence it wrote.
"""

from __future__ import annotations

import argparse
import asyncio
import gzip
import shlex
import shutil
import sys
import time
from collections import Counter
from pathlib import Path
from typing import Any, TextIO

import orjson
import yaml

from kubestream.agent.runner import Agent
from kubestream.config.settings import (
    BatchSettings,
    EventsSettings,
    FileSinkSettings,
    KubeSettings,
    LogSettings,
    ServerSettings,
    Settings,
    SinkSettings,
    StateSettings,
)
from kubestream.obs.logging import setup_logging
from kubestream.sim.ledger import EventLedger
from kubestream.sim.server import SimConfig, SimServer
from kubestream.sim.workload import Workload, WorkloadConfig

_MARKER = ".kubestream-demo"


def _parse(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="kubestream demo", description=__doc__)
    p.add_argument("--duration", type=float, default=15.0, help="seconds of simulated activity (default 15)")
    p.add_argument("--rate", type=float, default=200.0, help="event occurrences per second (default 200)")
    p.add_argument("--seed", type=int, default=1, help="workload seed (default 1)")
    p.add_argument("--out", type=Path, default=Path("kubestream-demo"), help="output folder (default ./kubestream-demo)")
    p.add_argument("--catch-up", type=float, default=30.0, help="max seconds to wait for the archive to catch up")
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


async def _run(args: argparse.Namespace, out: Path, stream: TextIO) -> int:
    server = SimServer(SimConfig())
    server.start()
    try:
        kubeconfig = server.write_kubeconfig(out / "kubeconfig")
        settings = demo_settings(out, kubeconfig)
        (out / "kubestream.yaml").write_text(
            yaml.safe_dump(orjson.loads(settings.model_dump_json(exclude_defaults=True)), sort_keys=False))
        ledger = EventLedger()
        workload = Workload(server.cluster, WorkloadConfig(seed=args.seed, events_per_s=args.rate), ledger)
        agent = Agent(settings)
        agent_task = asyncio.create_task(agent.run(), name="agent")
        print(f"simulated cluster at {server.url}; agent archiving to {out / 'archive'}", file=stream)
        workload.start()
        started = time.monotonic()
        archive = out / "archive"
        while time.monotonic() - started < args.duration and not agent_task.done():
            await asyncio.sleep(1.0)
            got, records, files = await asyncio.to_thread(_archived_occurrences, archive)
            print(f"  {time.monotonic() - started:5.1f}s  written {ledger.total():6d} occurrences  "
                  f"archived {got:6d} in {records:6d} records, {files:3d} files", file=stream, flush=True)
        await asyncio.to_thread(workload.stop)  # flushes pending series counts into the API
        truth = ledger.total()
        deadline = time.monotonic() + args.catch_up
        got = 0
        while time.monotonic() < deadline and not agent_task.done():
            got, _, _ = await asyncio.to_thread(_archived_occurrences, archive)
            if got >= truth:
                break
            await asyncio.sleep(0.5)
        agent.request_stop()
        exit_code = await agent_task
        _summary(out, ledger, time.monotonic() - started, stream)
        return exit_code
    finally:
        server.stop()


def _summary(out: Path, ledger: EventLedger, elapsed: float, stream: TextIO) -> None:
    archive = out / "archive"
    records = read_archive(archive)
    files = sorted(archive.rglob("*.ndjson*"))
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
    example = files[0].relative_to(out.parent) if files else "(none)"
    print(f"""
kubestream demo finished in {elapsed:.1f} s
  written:   {ledger.total()} event occurrences ({len(truth)} events) by the simulated recorders
  archived:  {got} occurrences in {len(records)} records, {len(files)} files — {verdict}
  enriched:  {", ".join(f"{k} {v}" for k, v in enrichment.most_common())}
  top:       {top}
  files:     {example}
next:
{_next_steps(out, files)}
  config used: {out / 'kubestream.yaml'}""", file=stream)


def _kubestream_command() -> str:
    """How to run this kubestream again, as a full path (the venv need not be activated)."""
    script = Path(sys.executable).parent / "kubestream"
    return shlex.quote(str(script)) if script.exists() else f"{shlex.quote(sys.executable)} -m kubestream.cli.main"


def _next_steps(out: Path, files: list[Path]) -> str:
    """Commands to try on the demo's archive, runnable as printed (tests/query/test_query_docs.py runs them)."""
    ks, archive = _kubestream_command(), shlex.quote(str(out / "archive"))
    steps = [
        f'{ks} query --archive {archive} "select reason, sum(count_delta) occurrences from events '
        f'group by 1 order by 2 desc limit 10"',
        f"{ks} timeline sts/db -n payments --archive {archive} --since 1h",
        f"{ks} timeline sts/db -n payments --archive {archive} --since 1h "
        f"--html {shlex.quote(str(out / 'timeline.html'))}   # then open it in a browser",
    ]
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
