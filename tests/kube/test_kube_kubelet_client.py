"""The kubelet client: the URL a Node publishes, and one-line errors (never a traceback) for
bodies that are not a PodList and for missing credentials files."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web

from kubestream.config.settings import KubeletSettings
from kubestream.kube.kubelet_client import KubeletClient, KubeletError, node_kubelet_url


@pytest.mark.parametrize(("status", "url"), [
    ({"addresses": [{"type": "Hostname", "address": "n1"}, {"type": "InternalIP", "address": "10.0.0.7"}],
      "daemonEndpoints": {"kubeletEndpoint": {"Port": 10255}}}, "https://10.0.0.7:10255"),
    ({"addresses": [{"type": "InternalIP", "address": "fd00::7"}]}, "https://[fd00::7]:10250"),
    ({"addresses": [{"type": "InternalIP", "address": "10.0.0.7"}],
      "daemonEndpoints": {"kubeletEndpoint": {"Port": "nope"}}}, "https://10.0.0.7:10250"),
    ({"addresses": [{"type": "Hostname", "address": "n1"}]}, None),
    ({"addresses": "garbage"}, None),
    ({}, None),
])
def test_the_url_comes_from_the_nodes_internal_ip_and_kubelet_port(status: dict[str, Any], url: str | None) -> None:
    assert node_kubelet_url({"metadata": {"name": "n1"}, "status": status}) == url


@pytest.fixture
async def serve() -> AsyncIterator[Callable[[bytes], Any]]:
    runners: list[web.AppRunner] = []

    async def start(body: bytes) -> str:
        async def pods(request: web.Request) -> web.Response:
            return web.Response(body=body, content_type="application/json")

        app = web.Application()
        app.router.add_get("/pods", pods)
        runner = web.AppRunner(app)
        await runner.setup()
        site = web.TCPSite(runner, "127.0.0.1", 0)
        await site.start()
        runners.append(runner)
        port = runner.addresses[0][1]
        return f"http://127.0.0.1:{port}"

    yield start
    for runner in runners:
        await runner.cleanup()


@pytest.mark.parametrize(("body", "reason"), [
    (b"<html>not json", "bad_response"),
    (b'{"kind": "Status"}', "bad_response"),
    (b'{"items": "nope"}', "bad_response"),
])
async def test_a_body_that_is_no_podlist_is_a_one_line_error(
        serve: Callable[[bytes], Any], tmp_path: Path, body: bytes, reason: str) -> None:
    token = tmp_path / "token"
    token.write_text("t")
    client = KubeletClient(KubeletSettings(token_file=token, insecure_skip_tls_verify=True), await serve(body))
    try:
        with pytest.raises(KubeletError) as info:
            await client.pods()
    finally:
        await client.close()
    assert info.value.reason == reason and "\n" not in str(info.value)


async def test_items_that_are_not_objects_are_skipped(serve: Callable[[bytes], Any], tmp_path: Path) -> None:
    token = tmp_path / "token"
    token.write_text("t")
    client = KubeletClient(KubeletSettings(token_file=token, insecure_skip_tls_verify=True),
                           await serve(b'{"items": [1, "x", {"metadata": {"uid": "u"}}]}'))
    try:
        assert await client.pods() == [{"metadata": {"uid": "u"}}]
    finally:
        await client.close()


async def test_missing_token_and_ca_files_are_credentials_errors(tmp_path: Path) -> None:
    missing = KubeletClient(KubeletSettings(token_file=tmp_path / "none", insecure_skip_tls_verify=True),
                            "https://127.0.0.1:1")
    with pytest.raises(KubeletError, match=r"cannot read logs\.kubelet\.token_file") as info:
        await missing.pods()
    assert info.value.reason == "credentials"
    await missing.close()
    token = tmp_path / "token"
    token.write_text("t")
    no_ca = KubeletClient(KubeletSettings(token_file=token, ca_file=tmp_path / "ca.crt"), "https://127.0.0.1:1")
    with pytest.raises(KubeletError, match=r"cannot load logs\.kubelet\.ca_file") as info:
        await no_ca.pods()
    assert info.value.reason == "credentials"
    await no_ca.close()
