"""kill -9 while uploading to S3, over and over, then a clean run: every record is in the
bucket exactly once (replays overwrite their fixed key) and the spool is empty."""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
from pathlib import Path

from conftest import MotoServer
from kubestream.config.settings import EncodingSettings
from kubestream.pipeline.encode import make_encoder

DRIVER = Path(__file__).with_name("_s3_crash_driver.py")
TOTAL = 10000
TRIALS = 10


def _spawn(state: Path, moto: MotoServer, bucket: str) -> subprocess.Popen[str]:
    return subprocess.Popen([sys.executable, str(DRIVER), str(state), moto.endpoint, bucket, str(TOTAL)],
                            env=dict(os.environ), stdout=subprocess.PIPE, text=True)


def test_kill9_during_uploads_then_restart_delivers_each_record_once(tmp_path: Path, moto_server: MotoServer,
                                                                     bucket: str) -> None:
    rng = random.Random(4242)
    killed = 0
    uploads_seen_between_kills: list[int] = []
    for _ in range(TRIALS):
        before = len(moto_server.keys(bucket))
        proc = _spawn(tmp_path, moto_server, bucket)
        assert proc.stdout is not None
        proc.stdout.readline()  # "started N": recovery done, records and uploads flow from here
        try:
            proc.wait(timeout=rng.uniform(0.05, 0.25))
        except subprocess.TimeoutExpired:
            proc.send_signal(signal.SIGKILL)
            killed += 1
        proc.communicate(timeout=60)
        uploads_seen_between_kills.append(len(moto_server.keys(bucket)) - before)
    assert killed >= TRIALS - 2, "the driver finished before it could be killed"
    assert sum(uploads_seen_between_kills) > 0, "no upload happened before the kills"

    final = _spawn(tmp_path, moto_server, bucket)
    final.communicate(timeout=120)
    assert final.returncode == 0

    codec = make_encoder(EncodingSettings(format="ndjson", compression="gzip"))
    numbers = [r["n"] for key in moto_server.keys(bucket) for r in codec.decode(moto_server.read(bucket, key))]
    assert sorted(numbers) == list(range(1, TOTAL + 1)), "gaps or duplicates in the bucket"
    assert list((tmp_path / "spool").iterdir()) == [], "spool not empty after the clean run"
