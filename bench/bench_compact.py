"""Compaction (``kubestream compact``): throughput per core, peak memory against the target size and
the partition size, object-count reduction.

Peak RSS is the child's ``VmHWM`` (with the interpreter and pyarrow loaded: ``rss_before``).
Archives are generated as the agent writes them (``bench.gen_archive``: real encoders and names,
one small object per batch). Each compaction runs in its own interpreter, so its CPU time
(user + sys) and peak RSS are its own; throughput is input bytes per CPU-second, both the bytes as
stored (compressed) and decompressed.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import json
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from bench.gen_archive import Ledger, write_events, write_logs

START = dt.datetime(2024, 5, 1, 0, tzinfo=dt.UTC)
MIB = 1024 * 1024


def _peak_rss_mib() -> float:
    """This process's peak RSS (``VmHWM``): unlike ``ru_maxrss`` it starts afresh at exec, so the
    parent's memory (which generated the archive) is not counted."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def _child(root: str, target: int, row_group: int) -> None:
    """Compact ``root`` and print the report and this process's CPU time and peak RSS."""
    from kubestream.archive.compact import compact_archive
    from kubestream.archive.store import open_archive
    from kubestream.config.settings import Settings

    settings = Settings.model_validate({
        "sink": {"file": {"dir": root}}, "state": {"dir": f"{root}.state"},
        "compaction": {"grace_s": 0, "target_file_bytes": target, "row_group_bytes": row_group},
    })
    before = resource.getrusage(resource.RUSAGE_SELF)
    rss_before = _peak_rss_mib()
    started = time.monotonic()
    report = asyncio.run(compact_archive(open_archive(settings), settings))
    wall = time.monotonic() - started
    after = resource.getrusage(resource.RUSAGE_SELF)
    print(json.dumps({
        "sources": report.sources, "parts": report.parts, "rows": report.rows,
        "input_bytes": report.input_bytes, "output_bytes": report.output_bytes, "wall_s": wall,
        "cpu_s": (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime),
        "peak_rss_mib": _peak_rss_mib(), "rss_before_mib": rss_before,
    }))


def _compact(root: Path, *, target: int = 128 * MIB, row_group: int = 32 * MIB) -> dict[str, Any]:
    done = subprocess.run([sys.executable, "-m", "bench.bench_compact", "--child", str(root), str(target),
                           str(row_group)], capture_output=True, text=True, check=True,
                          cwd=Path(__file__).resolve().parents[1])
    result: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    return result


def _raw_bytes(root: Path) -> int:
    """The decompressed size of the sources (Parquet: its in-memory Arrow size)."""
    import io

    import pyarrow.parquet as pq

    from kubestream.archive.formats import object_format

    total = 0
    for path in root.rglob("*"):
        if not path.is_file():
            continue
        fmt = object_format(path.name)
        data = path.read_bytes()
        total += pq.read_table(io.BytesIO(data)).nbytes if fmt.record_format == "parquet" else len(fmt.decompress(data))
    return total


def _objects(root: Path) -> int:
    return sum(1 for p in root.rglob("*") if p.is_file())


def _case(name: str, build: Any, tmp: Path, **compaction: int) -> dict[str, Any]:
    root = tmp / name
    ledger = Ledger()
    build(root, ledger)
    raw = _raw_bytes(root)
    before = _objects(root)
    result = _compact(root, **compaction)
    result.update(name=name, raw_bytes=raw, objects_before=before, objects_after=_objects(root))
    shutil.rmtree(root)
    shutil.rmtree(f"{root}.state", ignore_errors=True)
    return result


def _row(r: dict[str, Any]) -> str:
    mb = r["input_bytes"] / 1e6
    return (f"| {r['name']} | {r['objects_before']:,} → {r['objects_after']:,} "
            f"({r['objects_before'] / max(r['objects_after'], 1):.0f}x) | {r['rows']:,} | {mb:.1f} MB "
            f"({r['raw_bytes'] / 1e6:.0f} MB raw) | {r['output_bytes'] / 1e6:.1f} MB | {r['cpu_s']:.2f} s | "
            f"**{mb / r['cpu_s']:.1f} MB/s** ({r['raw_bytes'] / 1e6 / r['cpu_s']:.0f} MB/s raw) | "
            f"{r['peak_rss_mib']:.0f} MiB |")


def main() -> None:
    tmp = Path(tempfile.mkdtemp(prefix="bench-compact-"))
    try:
        # Records as a named agent writes them (the `cluster` field costs bytes and a column).
        hour: dict[str, Any] = {"start": START, "hours": 1, "cluster": "bench"}
        cases = [
            # 6 objects a minute for an hour, as one node writes them with default batching.
            _case("events NDJSON gzip, 1 h x 360 objects x 100 events",
                  lambda r, led: write_events(r, led, objects_per_hour=360, records_per_object=100, **hour), tmp),
            _case("logs NDJSON gzip, 1 h x 360 objects x 1,000 lines",
                  lambda r, led: write_logs(r, led, objects_per_hour=360, lines_per_object=1000, pods_per_object=4,
                                            **hour), tmp),
            _case("logs Parquet, 1 h x 360 objects x 1,000 lines",
                  lambda r, led: write_logs(r, led, objects_per_hour=360, lines_per_object=1000, pods_per_object=4,
                                            parquet=True, **hour), tmp),
        ]
        print("| archive | objects | rows | input | output | CPU | throughput per core | peak RSS |")
        print("|---|---|---:|---:|---:|---:|---:|---:|")
        for case in cases:
            print(_row(case), flush=True)

        print("\nPeak RSS of logs NDJSON compaction against target file size and partition size:")
        print("| partition (objects x 1,000 lines) | target 8 MiB / row group 4 MiB | target 32 MiB / row group 16 MiB |")
        print("|---|---:|---:|")
        for objects in (180, 720, 1440):
            cells = []
            for target, group in ((8 * MIB, 4 * MIB), (32 * MIB, 16 * MIB)):
                r = _case(f"logs-{objects}-{target}", lambda root, led, n=objects: write_logs(
                    root, led, objects_per_hour=n, lines_per_object=1000, pods_per_object=4, **hour), tmp,
                    target=target, row_group=group)
                cells.append(f"{r['peak_rss_mib']:.0f} MiB ({r['rss_before_mib']:.0f} before; "
                             f"{r['input_bytes'] / 1e6:.0f} MB in, {r['raw_bytes'] / 1e6:.0f} MB raw, {r['parts']} files)")
            print(f"| {objects} | " + " | ".join(cells) + " |", flush=True)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    if len(sys.argv) == 5 and sys.argv[1] == "--child":
        _child(sys.argv[2], int(sys.argv[3]), int(sys.argv[4]))
    else:
        main()
