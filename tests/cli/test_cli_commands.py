"""The kubestream command as users run it: exit codes and the single error line."""

from __future__ import annotations

import os
import subprocess
import sys
from importlib.metadata import version
from pathlib import Path

import pytest

import kubestream
from kubestream.cli.main import main

K8STREAM_README_CONFIG = (
    '{"batch_size": 5, "batch_interval": 5, "uid": "719395d7-4e91-4817-a6ec-9a8ded29bebc", '
    '"file_sink_dir": "/tmp/l9k8stream/", "prefix": "local/test-upload", "aws_region": "ap-south-1", '
    '"aws_bucket": "last9-trials", "aws_profile": "last9data", "aws_access_key": "1", '
    '"aws_secret_access_key": "2", "sink": "file", "kubeconfig": "./kubeconfig"}'
)


def kubestream_cli(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    """Run ``python -m kubestream.cli.main`` in a child process, as an operator would."""
    child_env = {k: v for k, v in os.environ.items() if k != "KUBESTREAM_CONFIG"} | (env or {})
    return subprocess.run([sys.executable, "-m", "kubestream.cli.main", *args], capture_output=True, text=True,
                          timeout=60, env=child_env, check=False)


def _write(tmp_path: Path, name: str, text: str) -> Path:
    path = tmp_path / name
    path.write_text(text)
    return path


def test_cli_validate_ok(tmp_path: Path) -> None:
    path = _write(tmp_path, "kubestream.yaml", "sink:\n  type: s3\n  s3:\n    bucket: ${BUCKET:-archive}\n")
    result = kubestream_cli("validate", "--config", str(path))
    assert result.returncode == 0, result.stderr
    assert result.stderr == ""
    lines = result.stdout.splitlines()
    assert lines[0] == f"config OK: {path}"
    assert "  format:   kubestream" in lines
    assert any(line.startswith("  sink:     s3://archive ") for line in lines)


def test_cli_validate_config_error_is_exit_2_and_one_line(tmp_path: Path) -> None:
    path = _write(tmp_path, "kubestream.yaml", "batch:\n  max_records: 0\n")
    result = kubestream_cli("validate", "--config", str(path))
    assert result.returncode == 2
    assert result.stdout == ""
    assert result.stderr == (
        "kubestream: config error: batch.max_records: Input should be greater than or equal to 1 (got 0)\n")


def test_cli_validate_missing_variable_and_missing_file(tmp_path: Path) -> None:
    path = _write(tmp_path, "kubestream.yaml", "events:\n  since: ${SINCE:?set SINCE}\n")
    result = kubestream_cli("validate", "--config", str(path))
    assert (result.returncode, result.stderr) == (
        2, "kubestream: config error: events.since: ${SINCE:?set SINCE} — SINCE is not set: set SINCE\n")
    assert kubestream_cli("validate", "--config", str(path), env={"SINCE": "2h"}).returncode == 0
    result = kubestream_cli("validate", "--config", str(tmp_path / "absent.yaml"))
    assert (result.returncode, result.stderr) == (
        2, f"kubestream: config error: {tmp_path / 'absent.yaml'}: file not found\n")


def test_cli_validate_k8stream_config(tmp_path: Path) -> None:
    path = _write(tmp_path, "config.json", K8STREAM_README_CONFIG)
    result = kubestream_cli("validate", "--config", str(path))
    assert result.returncode == 0, result.stderr
    assert "  format:   k8stream config.json (translated)" in result.stdout.splitlines()
    assert "  encoding: protobuf (k8stream message) + gzip" in result.stdout.splitlines()


def test_cli_version() -> None:
    result = kubestream_cli("version")
    assert result.returncode == 0
    assert result.stdout.splitlines() == [
        f"kubestream {kubestream.__version__}",
        f"Python {sys.version.split()[0]}",
        f"kubernetes client {version('kubernetes')}",
    ]


def test_cli_run_with_bad_config_exits_2_before_starting(tmp_path: Path) -> None:
    path = _write(tmp_path, "kubestream.yaml", "sink:\n  tpye: s3\n")
    result = kubestream_cli("run", "--config", str(path))
    assert (result.returncode, result.stderr) == (
        2, 'kubestream: config error: sink.tpye: unknown option (did you mean "type"?)\n')


def test_cli_config_from_environment_variable(tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                              monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("KUBESTREAM_CONFIG", raising=False)
    assert main(["validate"]) == 2
    assert capsys.readouterr().err == (
        "kubestream: config error: no configuration file: pass --config FILE or set KUBESTREAM_CONFIG\n")
    path = _write(tmp_path, "k.yaml", "log:\n  level: debug\n")
    monkeypatch.setenv("KUBESTREAM_CONFIG", str(path))
    assert main(["validate"]) == 0
    assert capsys.readouterr().out.startswith(f"config OK: {path}\n")


def test_cli_usage_errors_exit_2(capsys: pytest.CaptureFixture[str]) -> None:
    for argv in (["frobnicate"], [], ["validate", "--log-level", "loud"]):
        with pytest.raises(SystemExit) as caught:
            main(argv)
        assert caught.value.code == 2
    assert "usage: kubestream" in capsys.readouterr().err


def test_cli_global_log_flags_accepted_before_and_after_command(tmp_path: Path) -> None:
    path = _write(tmp_path, "k.yaml", "")
    assert main(["--log-format", "json", "validate", "--config", str(path)]) == 0
    assert main(["validate", "--log-level=debug", "--config", str(path)]) == 0


def test_cli_check_sinks(tmp_path: Path) -> None:
    pytest.importorskip("kubestream.sinks.factory", reason="sinks/factory.py not written yet")
    good = _write(tmp_path, "good.yaml", f"sink:\n  file:\n    dir: {tmp_path / 'out'}\n")
    result = kubestream_cli("validate", "--check-sinks", "--config", str(good))
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines()[-1].startswith("sink OK: ")

    blocker = _write(tmp_path, "not-a-dir", "a file where the sink wants a directory")
    bad = _write(tmp_path, "bad.yaml", f"sink:\n  file:\n    dir: {blocker / 'out'}\n")
    result = kubestream_cli("validate", "--check-sinks", "--config", str(bad))
    assert result.returncode == 3
    assert len(result.stderr.splitlines()) == 1
    assert result.stderr.startswith("kubestream: sink unusable: ")


def test_cli_sim_arguments_pass_through_untouched() -> None:
    pytest.importorskip("kubestream.sim.cli", reason="sim/cli.py not written yet")
    result = kubestream_cli("sim", "--help")
    assert result.returncode == 0, result.stderr
    # The simulator's own help, not kubestream's (which would list run/validate/version).
    assert "{run,validate" not in result.stdout and "COMMAND" not in result.stdout
