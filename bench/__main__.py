"""Run the benchmarks: ``python -m bench [name ...]`` (``make bench`` runs them all).

Each ``bench/bench_<name>.py`` has a ``main()`` that prints its figures and the ratios against
a baseline measured in the same run. Each runs in its own interpreter so memory figures and
warm caches of one do not leak into the next. Results and the machine are recorded by hand in
bench/RESULTS.md.
"""

from __future__ import annotations

import os
import platform
import subprocess
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent


def _machine() -> str:
    cpu = "unknown CPU"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return f"{platform.system()} {platform.machine()}, {os.cpu_count()} cores, {cpu}, Python {platform.python_version()}"


def main(argv: list[str]) -> int:
    names = argv or sorted(p.stem.removeprefix("bench_") for p in HERE.glob("bench_*.py"))
    print(f"machine: {_machine()}", flush=True)
    failed = []
    for name in names:
        print(f"\n=== bench_{name} ===", flush=True)
        rc = subprocess.call([sys.executable, "-m", f"bench.bench_{name}"], cwd=HERE.parent)
        if rc != 0:
            failed.append(name)
    if failed:
        print(f"\nfailed: {', '.join(failed)}")
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
