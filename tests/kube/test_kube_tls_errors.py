"""Certificate failures are TLS errors, not "connection" warnings: the real agent pointed at the
TLS simulator with the wrong CA, or under a server name its certificate does not carry, logs an
ERROR naming the host and the reason, reports /readyz false and counts api_errors{kind="tls"}."""

from __future__ import annotations

import base64
import socket
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import yaml
from kube_tls import make_tls
from tests.agent.harness import AgentProcess, write_config

from kubestream.config.settings import KubeSettings
from kubestream.errors import KubeConnectionError, KubeTlsError
from kubestream.kube.client import KubeClient
from kubestream.obs.metrics import Metrics
from kubestream.sim.server import SimServer


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _get(port: int, path: str) -> tuple[int, str]:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=5) as resp:
            return int(resp.status), resp.read().decode()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read().decode()


def _bad_kubeconfig(server: SimServer, tmp_path: Path, case: str) -> Path:
    """A kubeconfig for ``server`` whose TLS settings are wrong in one way."""
    path = server.write_kubeconfig(tmp_path / "kubeconfig")
    doc: dict[str, Any] = yaml.safe_load(path.read_text())
    cluster = doc["clusters"][0]["cluster"]
    if case == "wrong-ca":
        other = tmp_path / "other-ca"
        other.mkdir()
        cluster["certificate-authority-data"] = base64.b64encode(make_tls(other).ca_cert.read_bytes()).decode()
    else:  # the right CA, but a name the server's certificate is not valid for
        cluster["tls-server-name"] = "api.wrong.example"
    path.write_text(yaml.safe_dump(doc))
    return path


CASES = {"wrong-ca": "certificate verify failed", "name-mismatch": "api.wrong.example"}


@pytest.mark.parametrize("case", sorted(CASES))
async def test_client_raises_a_tls_error_naming_host_and_reason(sim_factory: Callable[..., SimServer],
                                                                tmp_path: Path, case: str) -> None:
    server = sim_factory(tls=True)
    metrics = Metrics()
    client = await KubeClient.create(KubeSettings(kubeconfig=str(_bad_kubeconfig(server, tmp_path, case))),
                                     metrics=metrics)
    try:
        with pytest.raises(KubeTlsError) as caught:
            await client.request_json("GET", "/api/v1/pods")
        assert client.tls_error is not None and server.url in client.tls_error
    finally:
        await client.close()
    assert caught.value.host == server.url
    assert CASES[case] in caught.value.reason or CASES[case] in str(caught.value)
    assert metrics.api_errors.labels(kind="tls")._value.get() == 1
    assert metrics.api_errors.labels(kind="connection")._value.get() == 0


async def test_unreachable_and_timed_out_are_other_kinds(tmp_path: Path) -> None:
    port = _free_port()  # nothing listens there
    cfg = tmp_path / "kc"
    cfg.write_text(yaml.safe_dump({
        "apiVersion": "v1", "kind": "Config", "current-context": "t",
        "clusters": [{"name": "c", "cluster": {"server": f"http://127.0.0.1:{port}"}}],
        "contexts": [{"name": "t", "context": {"cluster": "c", "user": "u"}}], "users": [{"name": "u", "user": {}}]}))
    metrics = Metrics()
    client = await KubeClient.create(KubeSettings(kubeconfig=str(cfg)), metrics=metrics)
    try:
        with pytest.raises(KubeConnectionError) as refused:
            await client.request_json("GET", "/api/v1/pods")
        assert client.tls_error is None
    finally:
        await client.close()
    assert not isinstance(refused.value, KubeTlsError)
    assert metrics.api_errors.labels(kind="connection")._value.get() == 1
    # A listener that never answers: the request times out.
    with socket.socket() as silent:
        silent.bind(("127.0.0.1", 0))
        silent.listen(1)
        cfg.write_text(cfg.read_text().replace(str(port), str(silent.getsockname()[1])))
        client = await KubeClient.create(KubeSettings(kubeconfig=str(cfg), request_timeout_s=0.3), metrics=metrics)
        try:
            with pytest.raises(KubeConnectionError) as timed_out:
                await client.request_json("GET", "/api/v1/pods")
            assert not isinstance(timed_out.value, KubeTlsError)
        finally:
            await client.close()
    assert metrics.api_errors.labels(kind="timeout")._value.get() == 1


@pytest.mark.parametrize("case", sorted(CASES))
def test_agent_reports_tls_failures_loudly_and_is_not_ready(sim_factory: Callable[..., SimServer],
                                                            tmp_path: Path, case: str) -> None:
    server = sim_factory(tls=True)
    port = _free_port()
    config = write_config(tmp_path, server, server={"port": port})
    _bad_kubeconfig(server, tmp_path, case)  # write_config wrote tmp_path/kubeconfig: spoil it
    agent = AgentProcess(config, tmp_path).start()
    try:
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            if "ERROR" in agent.log() and "TLS handshake" in agent.log():
                break
            time.sleep(0.2)
        status, body = _get(port, "/readyz")
        metrics = _get(port, "/metrics")[1]
    finally:
        assert agent.terminate() == 0, agent.log()
    log = agent.log()
    errors = [line for line in log.splitlines() if "ERROR" in line and "TLS handshake" in line]
    assert errors, log
    assert server.url in errors[0] and CASES[case] in errors[0], errors[0]
    assert "Traceback" not in log
    assert status == 503 and "TLS handshake" in body and server.url in body, body
    tls = [line for line in metrics.splitlines() if line.startswith('kubestream_api_errors_total{kind="tls"}')]
    assert tls and float(tls[0].split()[-1]) >= 1, tls
