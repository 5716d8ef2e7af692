"""kill -9 at random points of a running node agent's logs path (source → pipeline → spool →
delivery → file sink, in a subprocess) while two simulated runtimes write, rotate (rename + gzip;
copytruncate) and a pod's directory goes; after a clean run every line is in the sink exactly once."""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import orjson
from logs_source_support import archive_keys, assert_exactly_once, make_writer, pod, read_archive

DRIVER = Path(__file__).with_name("logs_source_crash_driver.py")
TRIALS = int(os.environ.get("KS_LOGS_TRIALS", "12"))


def _spawn(tmp: Path) -> subprocess.Popen[str]:
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(DRIVER.parent), os.environ.get("PYTHONPATH", "")])}
    proc = subprocess.Popen([sys.executable, str(DRIVER), str(tmp)], env=env, stdout=subprocess.PIPE, text=True)
    assert proc.stdout is not None
    assert proc.stdout.readline().startswith("started")
    return proc


def test_kill9_at_random_points_then_every_line_exactly_once(tmp_path: Path) -> None:
    rng = random.Random(int(os.environ.get("KS_LOGS_SEED", "4242")))
    renamer = make_writer(tmp_path, seed=1, rotate_bytes=24 * 1024, max_files=1000,
                          kind_weights={"plain": 0.8, "json": 0.15, "long": 0.01, "invalid_utf8": 0.04})
    truncater = make_writer(tmp_path, seed=2, rotation="copytruncate", compress=False, rotate_bytes=1 << 30, max_files=1000,
                            kind_weights={"plain": 1.0})
    short_lived = pod("job-1")
    renamer.follow([pod("web-0", containers=("app", "sidecar")), pod("web-1"), short_lived])
    t_pod = pod("legacy-0")
    truncater.follow([t_pod])
    outcomes = []
    for trial in range(TRIALS):
        proc = _spawn(tmp_path)
        deadline = time.monotonic() + rng.uniform(0.05, 0.6)
        while time.monotonic() < deadline:
            renamer.write_burst(rng.randint(1, 25))
            truncater.write_burst(rng.randint(1, 10))
            if rng.random() < 0.2:
                truncater.rotate(t_pod["metadata"]["uid"], "app")
            time.sleep(rng.uniform(0.0, 0.03))
        if trial == TRIALS // 2:
            renamer.follow([p for p in _pods(renamer) if p["metadata"]["uid"] != short_lived["metadata"]["uid"]])
        proc.send_signal(signal.SIGKILL)
        outcomes.append(proc.wait(timeout=30))
    assert outcomes == [-signal.SIGKILL] * TRIALS

    expected = renamer.ledger.keys() | truncater.ledger.keys()
    (tmp_path / "expected.json").write_bytes(orjson.dumps(sorted(expected)))  # for a post-mortem
    proc = _spawn(tmp_path)  # the clean run
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            got = archive_keys(read_archive(tmp_path / "out"))
            if expected <= set(got):
                break
            time.sleep(0.2)
        time.sleep(0.5)  # a duplicate would arrive now
        got = archive_keys(read_archive(tmp_path / "out"))
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=30)
        renamer.stop()
        truncater.stop()
    assert len(expected) > 1000
    assert any(p.suffix == ".gz" for p in (tmp_path / "pods").rglob("*"))
    assert_exactly_once(got, expected)


def _pods(writer: object) -> list[dict[str, object]]:
    """The pods a writer follows, as objects ``follow`` accepts (to drop one of them)."""
    out = []
    for uid, (namespace, name) in writer._pods.items():  # type: ignore[attr-defined]
        containers = sorted({c for (u, c) in writer._live if u == uid})  # type: ignore[attr-defined]
        if containers:
            out.append(pod(name, namespace=namespace, uid=uid, containers=tuple(containers)))
    return out
