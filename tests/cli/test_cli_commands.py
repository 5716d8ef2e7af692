"""The kubestream command as users run it: exit codes and the single error line."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from importlib.metadata import version
from pathlib import Path
from typing import Any

import pytest
import yaml
from tests.agent.harness import AgentProcess

import kubestream
from kubestream.cli.main import main

K8STREAM_README_CONFIG = (
    '{"batch_size": 5, "batch_interval": 5, "uid": "719395d7-4e91-4817-a6ec-9a8ded29bebc", '
    '"file_sink_dir": "/tmp/l9k8stream/", "prefix": "local/test-upload", "aws_region": "ap-south-1", '
    '"aws_bucket": "last9-trials", "aws_profile": "last9data", "aws_access_key": "1", '
    '"aws_secret_access_key": "2", "sink": "file", "kubeconfig": "./kubeconfig"}'
)


KUBECONFIG = """\
clusters: [{name: c, cluster: {server: "https://127.0.0.1:1"}}]
users: [{name: u, user: {token: t}}]
contexts: [{name: c, context: {cluster: c, user: u}}]
current-context: c
"""


@pytest.fixture(autouse=True)
def _environment(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """What validate and run look at besides the file: a kubeconfig (./kubeconfig, also as
    KUBECONFIG), the working directory (relative state dirs), no NODE_NAME, not in a pod."""
    (tmp_path / "kubeconfig").write_text(KUBECONFIG)
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("KUBECONFIG", str(tmp_path / "kubeconfig"))
    for name in ("NODE_NAME", "KUBERNETES_SERVICE_HOST", "KUBESTREAM_CONFIG"):
        monkeypatch.delenv(name, raising=False)


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


# --- validate agrees with run ----------------------------------------------------------------

def _base_config(tmp_path: Path) -> dict[str, Any]:
    """A configuration both commands accept (the control case of the table below)."""
    return {"kube": {"kubeconfig": str(tmp_path / "kubeconfig")}, "state": {"dir": str(tmp_path / "state")},
            "sink": {"type": "file", "file": {"dir": str(tmp_path / "out")}}, "server": {"port": 0}}


def _put(config: dict[str, Any], dotted: str, value: object) -> None:
    *parents, leaf = dotted.split(".")
    node = config
    for part in parents:
        node = node.setdefault(part, {})
    node[leaf] = value


# name → (options to set on the base config, the line both commands must print). "{tmp}" is the
# test's directory. Each is a configuration `run` refuses; before the preflight, `validate`
# printed "config OK" for most of them.
REFUSED_BY_RUN: dict[str, tuple[dict[str, object], str]] = {
    "bad endpoint_url": ({"sink.type": "s3", "sink.s3.bucket": "b", "sink.s3.endpoint_url": "not a url"},
                         "sink.s3.endpoint_url: 'not a url' is not an http(s) URL"),
    "missing kubeconfig": ({"kube.kubeconfig": "{tmp}/absent"}, "kube.kubeconfig: {tmp}/absent: file does not exist"),
    "garbage kubeconfig": ({"kube.kubeconfig": "{tmp}/garbage"},
                           "kube.kubeconfig: {tmp}/garbage: not a usable kubeconfig: YAML syntax error at line 2, "
                           "column 5: expected ',' or ']', but got ':'"),
    "unknown context": ({"kube.context": "prod"}, "kube.context: no context 'prod' in {tmp}/kubeconfig (contexts: c)"),
    "bad label selector": ({"logs.label_selector": "app in (a"},
                           "logs.label_selector: cannot parse the label selector near 'app in (a'"),
    "logs without node name": ({"events.enabled": False, "logs.enabled": True},
                               "logs.node_name: the node agent needs its node's name: set logs.node_name or NODE_NAME"),
    "nothing enabled": ({"events.enabled": False}, "events.enabled: nothing to do: enable events, logs or both"),
    "state dir is a file": ({"state.dir": "{tmp}/kubeconfig"}, "state.dir: {tmp}/kubeconfig is not a directory"),
    "multi-line pattern RE2 refuses": ({"logs.multiline": [{"start_pattern": "^(?=ERROR)"}]},
                                       "logs.multiline[0].start_pattern: RE2 cannot compile it"),
}
# More of the same, through validate only: run goes through the same preflight (the table above
# shows it), and every process costs a second or two of start-up.
REFUSED_BY_VALIDATE: dict[str, tuple[dict[str, object], str]] = {
    "kubeconfig is a list": ({"kube.kubeconfig": "{tmp}/list"},
                             "kube.kubeconfig: {tmp}/list: not a usable kubeconfig: expected a mapping with "
                             "clusters, contexts and users"),
    "state dir cannot be created": ({"state.dir": "/proc/kubestream-state"},
                                    "state.dir: cannot create /proc/kubestream-state (/proc: "),
    "renew deadline above lease": ({"leader_election.enabled": True, "leader_election.renew_deadline_s": 20},
                                   "leader_election.renew_deadline_s: must be below "
                                   "leader_election.lease_duration_s (15)"),
    "infinite time bound": ({"batch.max_age_s": float("inf")}, "batch.max_age_s: Input should be a finite number"),
    "leader election for node agents": ({"leader_election.enabled": True, "logs.enabled": True,
                                         "logs.node_name": "n1"},
                                        "leader_election.enabled: leader election is for the events collector"),
}


def _bad_configs(tmp_path: Path, table: dict[str, tuple[dict[str, object], str]]) -> dict[str, Path]:
    (tmp_path / "garbage").write_text("garbage: [unclosed\n  - : :\n")
    (tmp_path / "list").write_text("- a\n- b\n")
    configs: dict[str, Path] = {}
    for index, (name, (options, _)) in enumerate(table.items()):
        config = _base_config(tmp_path)
        for dotted, value in options.items():
            _put(config, dotted, value.replace("{tmp}", str(tmp_path)) if isinstance(value, str) else value)
        configs[name] = tmp_path / f"bad-{index}.yaml"
        configs[name].write_text(yaml.safe_dump(config))
    return configs


def _validate_line(path: Path, capsys: pytest.CaptureFixture[str]) -> str:
    assert main(["validate", "--config", str(path)]) == 2, path.read_text()
    validated = capsys.readouterr()
    assert validated.out == ""
    assert len(validated.err.splitlines()) == 1, validated.err
    return validated.err


@pytest.mark.parametrize("name", REFUSED_BY_VALIDATE)
def test_validate_refuses_with_one_line(name: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = _bad_configs(tmp_path, {name: REFUSED_BY_VALIDATE[name]})[name]
    expected = f"kubestream: config error: {REFUSED_BY_VALIDATE[name][1].replace('{tmp}', str(tmp_path))}"
    assert _validate_line(path, capsys).startswith(expected)


def test_validate_refuses_what_run_refuses_with_the_same_line(tmp_path: Path,
                                                              capsys: pytest.CaptureFixture[str]) -> None:
    control = tmp_path / "control.yaml"
    control.write_text(yaml.safe_dump(_base_config(tmp_path)))
    assert main(["validate", "--config", str(control)]) == 0, capsys.readouterr().err
    capsys.readouterr()
    configs = _bad_configs(tmp_path, REFUSED_BY_RUN)
    # The real `kubestream run` processes, all at once (each would start the agent if accepted).
    env = {k: v for k, v in os.environ.items() if k not in ("NODE_NAME", "KUBECONFIG")}
    runs = {name: subprocess.Popen([sys.executable, "-m", "kubestream.cli.main", "run", "--config", str(path)],
                                   stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
            for name, path in configs.items()}
    try:
        results = {name: (proc.wait(timeout=120), proc.communicate()[1]) for name, proc in runs.items()}
    finally:
        for proc in runs.values():
            if proc.poll() is None:
                proc.kill()
    for name, (_, line) in REFUSED_BY_RUN.items():
        expected = f"kubestream: config error: {line.replace('{tmp}', str(tmp_path))}"
        validated = _validate_line(configs[name], capsys)
        assert results[name] == (2, validated), name
        assert validated.startswith(expected), (name, validated)


def test_validate_and_run_both_warn_once_about_insecure_transport(tmp_path: Path) -> None:
    kubeconfig = tmp_path / "insecure-kubeconfig"
    kubeconfig.write_text(KUBECONFIG.replace('server: "https://127.0.0.1:1"',
                                             'server: "https://127.0.0.1:1", insecure-skip-tls-verify: true'))
    config = _base_config(tmp_path)
    config["kube"]["kubeconfig"] = str(kubeconfig)
    config["sink"] = {"type": "s3", "s3": {"bucket": "b", "endpoint_url": "http://storage.example.invalid:9000",
                                           "region": "us-east-1", "access_key_id": "k", "secret_access_key": "s"}}
    path = tmp_path / "insecure.yaml"
    path.write_text(yaml.safe_dump(config))
    tls = (f"kube: TLS verification of the Kubernetes API server is off (insecure-skip-tls-verify in {kubeconfig}, "
           "cluster 'c')")
    plain = "sink.s3.endpoint_url: credentials are used over plain http with http://storage.example.invalid:9000"

    validated = kubestream_cli("validate", "--config", str(path))
    assert validated.returncode == 0, validated.stderr
    warnings = validated.stderr.splitlines()
    assert len(warnings) == 2 and warnings[0].startswith(f"kubestream: warning: {tls}")
    assert warnings[1].startswith(f"kubestream: warning: {plain}")

    agent = AgentProcess(path, tmp_path).start()  # runs on: nothing answers, it keeps retrying
    try:
        deadline = time.monotonic() + 60
        while "sink not reachable" not in agent.log() and agent.proc is not None and agent.proc.poll() is None:
            assert time.monotonic() < deadline, agent.log()
            time.sleep(0.1)
    finally:
        agent.terminate()
    log = agent.log()
    assert log.count(tls) == 1 and log.count(plain) == 1, log
