"""kill -9 at random points of the write-ahead delivery, then a clean run: every record is in
the sink exactly once and every object is named by its content range."""

from __future__ import annotations

import os
import random
import re
import signal
import subprocess
import sys
from datetime import datetime
from pathlib import Path

from kubestream.config.settings import EncodingSettings
from kubestream.pipeline.encode import make_encoder

DRIVER = Path(__file__).with_name("_crash_driver.py")
TOTAL = 600
TRIALS = 15
_NAME = re.compile(r"^toy-(\d+)-(\d+)\.ndjson\.gz$")
_PARTITION = re.compile(r"^archive/toy/dt=(\d{4}-\d{2}-\d{2})/hour=(\d{2})/")


def _spawn(state: Path, out: Path, env_extra: dict[str, str]) -> subprocess.Popen[str]:
    env = {**os.environ, **env_extra}
    return subprocess.Popen(
        [sys.executable, str(DRIVER), str(state), str(out), str(TOTAL)],
        env=env, stdout=subprocess.PIPE, text=True,
    )


def _run_trial(state: Path, out: Path, rng: random.Random, point: str | None, seed: int) -> int:
    """One start of the driver; killed at a hook point, or by us after a random delay."""
    env = {"KS_SEED": str(seed)}
    if point is not None:
        env |= {"KS_CRASH_POINT": point, "KS_CRASH_AFTER": str(rng.randint(1, 5))}
    proc = _spawn(state, out, env)
    assert proc.stdout is not None
    proc.stdout.readline()  # "started ...": recovery is over, records flow from here
    if point is None:
        try:
            proc.wait(timeout=rng.uniform(0.02, 0.25))
        except subprocess.TimeoutExpired:
            proc.send_signal(signal.SIGKILL)
    proc.communicate(timeout=60)
    return proc.returncode


def _read_sink(out: Path) -> tuple[list[int], list[str]]:
    codec = make_encoder(EncodingSettings(format="ndjson", compression="gzip"))
    numbers: list[int] = []
    keys: list[str] = []
    for path in sorted(p for p in out.rglob("*") if p.is_file()):
        key = path.relative_to(out).as_posix()
        keys.append(key)
        records = codec.decode(path.read_bytes())
        match = _NAME.match(path.name)
        assert match, f"unexpected object {key}"
        ns = [r["n"] for r in records]
        # Named by its content range:
        assert (min(ns), max(ns)) == (int(match[1]), int(match[2])), key
        # Ordered by event time inside the batch, partitioned by the first record's time:
        times = [r["timestamp"] for r in records]
        assert times == sorted(times), key
        first = datetime.fromisoformat(times[0])
        partition = _PARTITION.match(key)
        assert partition and partition[1] == f"{first:%Y-%m-%d}" and partition[2] == f"{first:%H}", key
        numbers.extend(ns)
    return numbers, keys


def test_kill9_at_random_points_then_clean_run_delivers_each_record_once(tmp_path: Path) -> None:
    state, out = tmp_path / "state", tmp_path / "out"
    rng = random.Random(1337)
    # None: killed by us after a random delay, wherever the driver happens to be.
    points: list[str | None] = [None, "register", None, "before_put", None, "after_put"]
    outcomes = [_run_trial(state, out, rng, points[i % len(points)], seed=i) for i in range(TRIALS)]
    assert outcomes.count(-signal.SIGKILL) >= TRIALS - 2, outcomes  # each start really died

    final = _spawn(state, out, {"KS_SEED": "99"})
    final.communicate(timeout=120)
    assert final.returncode == 0

    numbers, keys = _read_sink(out)
    assert sorted(numbers) == list(range(1, TOTAL + 1)), "gaps or duplicates in the sink"
    assert len(numbers) == TOTAL
    assert not [k for k in keys if k.rsplit("/", 1)[-1].startswith(".")], "temporary files left"
    assert list((state / "spool").iterdir()) == [], "spool not empty after a clean run"
