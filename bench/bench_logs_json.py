"""The cost of ``logs.parse_json``: the whole logs source with the option off and on, same file.

    BENCH_LOGS_BYTES=100000000 python -m bench.bench_logs_json        # alternated runs, lines/CPU-s
    python -m bench.bench_logs_json one ndjson off FILE               # one run (under callgrind)

The file is ``bench.gen_cri``'s (two lines in five are JSON objects, the others access and
worker lines, counted ``invalid``); the contender is ``bench.bench_logs``'s whole source (real
``LogsSource`` → ``Pipeline`` → ``Spool`` → ``Delivery`` → ``FileSink``), NDJSON + gzip and
Parquet, with ``logs.parse_json.enabled`` false or true. Runs alternate off/on ``BENCH_ROUNDS``
times (default 3) so the machine's drift hits both alike.
"""

from __future__ import annotations

import asyncio
import os
import sys
import tempfile
import time
from pathlib import Path

from bench.bench_logs import _check_archive, _drive, logical_records
from bench.gen_cri import generate, target_bytes
from kubestream.config.settings import (
    EncodingSettings,
    FileSinkSettings,
    LogJsonSettings,
    LogsSettings,
    Settings,
    SinkSettings,
    StateSettings,
)

POD_DIR = "shop_checkout-api-7d9f8c6b5-x2x9z_5f1c2d3e-1111-2222-3333-444455556666"
ENCODINGS = {"ndjson": EncodingSettings(format="ndjson", compression="gzip"),
             "parquet": EncodingSettings(format="parquet")}


def run_once(log: Path, root: Path, encoding: str, parse_json: bool, records: int) -> float:
    """CPU-seconds of the whole source over ``log`` (the archive is checked afterwards, untimed)."""
    container_dir = root / "pods" / POD_DIR / "app"
    container_dir.mkdir(parents=True)
    os.link(log, container_dir / "0.log")
    settings = Settings(
        logs=LogsSettings(enabled=True, pods_dir=root / "pods", containers_dir=None,
                          parse_json=LogJsonSettings(enabled=parse_json)),
        encoding=ENCODINGS[encoding],
        sink=SinkSettings(stream_uid="bench", file=FileSinkSettings(dir=root / "out")),
        state=StateSettings(dir=root / "state"),
    )
    start = time.process_time()
    asyncio.run(_drive(settings, records))
    cpu = time.process_time() - start
    _check_archive(settings, records, log.stat().st_size)
    return cpu


def main(argv: list[str]) -> int:
    if argv[:1] == ["one"]:
        encoding, switch, log = argv[1], argv[2], Path(argv[3])
        with tempfile.TemporaryDirectory(prefix="bench-json-") as tmp:
            cpu = run_once(log, Path(tmp), encoding, switch == "on", logical_records(log))
        print(f"{encoding} parse_json {switch}: {cpu:.2f} CPU-s")
        return 0
    rounds = int(os.environ.get("BENCH_ROUNDS", "3"))
    with tempfile.TemporaryDirectory(prefix="bench-json-") as tmp:
        log = Path(tmp) / "bench.log"
        generate(log, target_bytes())
        records = logical_records(log)
        print(f"file: {log.stat().st_size / 1e6:.0f} MB, {records:,} records")
        for encoding in ENCODINGS:
            rates: dict[str, list[float]] = {"off": [], "on": []}
            for i in range(rounds):
                for switch in ("off", "on"):
                    root = Path(tmp) / f"{encoding}-{switch}-{i}"
                    rates[switch].append(records / run_once(log, root, encoding, switch == "on", records))
            for switch, values in rates.items():
                shown = ", ".join(f"{v:,.0f}" for v in values)
                print(f"whole source {encoding:<8} parse_json {switch:<3}: {shown} lines/CPU-s "
                      f"(best {max(values):,.0f})")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
