"""kill -9 of a real ``kubestream compact`` process at random moments, on the file sink and on S3
(moto): after every kill a reader sees every record of the ledger exactly once; restarted until it
finishes, nothing but compacted files and manifests is left."""

from __future__ import annotations

import asyncio
import os
import random
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import obstore
import pytest
import yaml
from archive_support import assert_reader_sees_the_ledger, build_archive
from bench.gen_archive import Ledger

from kubestream.archive import catalog
from kubestream.archive.store import ArchiveStore, open_archive
from kubestream.config.settings import Settings

TRIALS = 6
# Small files and row groups: many parts per partition, so kills land between parts too.
COMPACTION = {"grace_s": 0, "target_file_bytes": 64 * 1024, "row_group_bytes": 64 * 1024}


def _config(tmp: Path, sink: dict[str, Any]) -> Path:
    path = tmp / f"kubestream-{len(list(tmp.glob('kubestream-*.yaml')))}.yaml"
    path.write_text(yaml.safe_dump({"sink": sink, "state": {"dir": str(tmp / "state")}, "compaction": COMPACTION}))
    return path


def _spawn(config: Path) -> subprocess.Popen[bytes]:
    return subprocess.Popen([sys.executable, "-m", "kubestream.cli.main", "--log-level", "info", "compact",
                             "--config", str(config)],
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, env=dict(os.environ))


def _wait_for_work(proc: subprocess.Popen[bytes]) -> None:
    """Until the first partition is compacted: start-up (imports) is not where a kill is interesting."""
    assert proc.stderr is not None
    for line in proc.stderr:
        if b"kubestream.compact" in line:
            return


def _timed_run(config: Path) -> float:
    """How long the work lasts after the first compacted partition, in an uninterrupted run (a
    copy of the same archive)."""
    proc = _spawn(config)
    _wait_for_work(proc)
    started = last = time.monotonic()
    assert proc.stderr is not None
    for line in proc.stderr:
        if b"kubestream.compact" in line:
            last = time.monotonic()
    assert proc.wait(timeout=120) == 0
    # Up to the last partition's line: the interpreter's exit after it is no interesting moment.
    return last - started


async def _keys(store: ArchiveStore) -> list[str]:
    return await store.list_keys("")


def _stage(keys: list[str]) -> str:
    """What a kill interrupted, from the names: for the report of the test."""
    sources = catalog.source_keys(keys)
    committed = catalog.committed_compactions(keys)
    if not committed and not any(catalog.COMPACTED_DIR in k for k in keys):
        return "not started"
    if not sources:
        return "done"
    if catalog.covered_sources(keys) & set(sources):
        return "committed, sources not all deleted"
    return "part-way"


def _kill_until_done(config: Path, settings: Settings, ledger: Ledger, full_run_s: float) -> list[str]:
    rng = random.Random(1107)
    stages: list[str] = []
    for _ in range(TRIALS):
        proc = _spawn(config)
        _wait_for_work(proc)
        try:
            # Within the first half of what is left: several kills before a run gets to finish.
            proc.wait(timeout=rng.uniform(0.0, full_run_s / 2))
        except subprocess.TimeoutExpired:
            proc.send_signal(signal.SIGKILL)
        proc.communicate(timeout=60)
        store = open_archive(settings)
        asyncio.run(assert_reader_sees_the_ledger(store, ledger))
        stages.append(_stage(asyncio.run(_keys(store))))
        if proc.returncode == 0:
            break
    final = _spawn(config)
    _, err = final.communicate(timeout=120)
    assert final.returncode == 0, err.decode()[-2000:]
    store = open_archive(settings)
    asyncio.run(assert_reader_sees_the_ledger(store, ledger))
    keys = asyncio.run(_keys(store))
    assert catalog.source_keys(keys) == [] and not [k for k in keys if f"/{catalog.COVERS_DIR}/" in k]
    return stages


def test_kill9_compaction_on_the_file_sink(tmp_path: Path) -> None:
    ledger = build_archive(tmp_path / "archive", hours=3, objects_per_hour=12, records=20)
    shutil.copytree(tmp_path / "archive", tmp_path / "baseline")
    full_run_s = _timed_run(_config(tmp_path, {"type": "file", "file": {"dir": str(tmp_path / "baseline")}}))

    sink = {"type": "file", "file": {"dir": str(tmp_path / "archive")}}
    config = _config(tmp_path, sink)
    settings = Settings.model_validate(yaml.safe_load(config.read_text()))
    stages = _kill_until_done(config, settings, ledger, full_run_s)
    assert len(set(stages) - {"not started", "done"}) >= 1 and len(stages) >= 2, f"kills missed the work: {stages}"


@pytest.fixture
def s3_sink(moto_server: Any, bucket: str) -> dict[str, Any]:
    return {"type": "s3", "s3": {"bucket": bucket, "endpoint_url": moto_server.endpoint, "region": "us-east-1",
                                 "access_key_id": "testing", "secret_access_key": "testing"}}


def _upload(moto_server: Any, bucket: str, root: Path) -> None:
    store = moto_server.store(bucket)
    for path in sorted(p for p in root.rglob("*") if p.is_file()):
        obstore.put(store, path.relative_to(root).as_posix(), path.read_bytes())


def test_kill9_compaction_on_s3(tmp_path: Path, moto_server: Any, bucket: str, s3_sink: dict[str, Any]) -> None:
    ledger = build_archive(tmp_path / "archive", hours=2, objects_per_hour=10, records=20)
    baseline = moto_server.create_bucket()
    _upload(moto_server, baseline, tmp_path / "archive")
    full_run_s = _timed_run(_config(tmp_path, {**s3_sink, "s3": {**s3_sink["s3"], "bucket": baseline}}))

    _upload(moto_server, bucket, tmp_path / "archive")
    config = _config(tmp_path, s3_sink)
    settings = Settings.model_validate(yaml.safe_load(config.read_text()))
    stages = _kill_until_done(config, settings, ledger, full_run_s)
    assert len(set(stages) - {"not started", "done"}) >= 1 and len(stages) >= 2, f"kills missed the work: {stages}"
