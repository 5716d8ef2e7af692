"""``kubestream compact`` as users run it: one summary line, clear errors, no traceback."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import yaml
from archive_support import build_archive

from kubestream.archive import catalog


def _compact(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "kubestream.cli.main", "compact", *args],
                          capture_output=True, text=True, timeout=120, check=False)


def _config(tmp: Path, **sections: object) -> Path:
    path = tmp / "kubestream.yaml"
    path.write_text(yaml.safe_dump({"state": {"dir": str(tmp / "state")}, **sections}))
    return path


def test_compact_prints_a_summary_and_leaves_only_compacted_files(tmp_path: Path) -> None:
    root = tmp_path / "archive"
    ledger = build_archive(root, hours=1, objects_per_hour=4, records=5)
    config = _config(tmp_path, sink={"file": {"dir": str(root)}})
    done = _compact("--config", str(config), "--grace", "0", "--stream", "events")
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith("compacted 6 objects (") and "Parquet files" in done.stdout
    keys = [p.relative_to(root).as_posix() for p in root.rglob("*") if p.is_file()]
    assert [k for k in catalog.source_keys(keys) if k.startswith("events/")] == []
    assert len([k for k in catalog.source_keys(keys) if k.startswith("logs/")]) == len(
        [k for k in ledger.keys if k.startswith("logs/")])


def test_open_partitions_are_left_alone(tmp_path: Path) -> None:
    root = tmp_path / "archive"
    build_archive(root, hours=1, objects_per_hour=4, records=5)
    config = _config(tmp_path, sink={"file": {"dir": str(root)}}, compaction={"grace_s": 10 ** 8})
    done = _compact("--config", str(config))
    assert done.returncode == 0 and done.stdout.startswith("compacted 0 objects")
    assert "2 partitions seen, 2 still open" in done.stdout


def test_an_unknown_option_and_an_unreachable_archive_are_one_line_each(tmp_path: Path) -> None:
    bad = _config(tmp_path, compaction={"target_size": 5})
    done = _compact("--config", str(bad))
    assert done.returncode == 2 and "compaction.target_size" in done.stderr and "Traceback" not in done.stderr

    unreachable = _config(tmp_path, sink={"type": "s3", "s3": {
        "bucket": "b", "endpoint_url": "http://127.0.0.1:9", "region": "us-east-1", "access_key_id": "k",
        "secret_access_key": "s", "attempt_timeout_s": 2}})
    done = _compact("--config", str(unreachable))
    assert done.returncode == 3, done.stderr
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("kubestream: archive unusable:") and "127.0.0.1:9" in lines[0]
