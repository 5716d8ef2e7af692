"""Reflector against a scripted API server on 127.0.0.1: exact frames the simulator cannot make
(garbage lines, HTTP 410 on a watch, replayed history, instantly-ending watches)."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import yaml
from aiohttp import web

from kubestream.config.settings import KubeSettings
from kubestream.kube.client import KubeClient
from kubestream.kube.reflector import Reflector, ReflectorEvent, ResourceRef
from kubestream.obs.metrics import Metrics

PODS = ResourceRef("", "v1", "pods")


def pod(name: str, rv: int) -> dict[str, Any]:
    return {"metadata": {"name": name, "namespace": "default", "uid": f"uid-{name}", "resourceVersion": str(rv)}}


def line(kind: str, obj: dict[str, Any]) -> bytes:
    return json.dumps({"type": kind, "object": obj}).encode() + b"\n"


@dataclass
class Watch:
    """One scripted watch answer: a status error, or lines then EOF (or hang until cancelled)."""

    lines: list[bytes] = field(default_factory=list)
    status: int | None = None
    hang: bool = False


@dataclass
class Script:
    list_rv: int = 10
    items: list[dict[str, Any]] = field(default_factory=list)
    watches: list[Watch] = field(default_factory=list)
    requests: list[dict[str, str]] = field(default_factory=list)
    stop: asyncio.Event = field(default_factory=asyncio.Event)
    """Set at teardown so hanging watch handlers end and the server closes at once."""


def _rv_of(chunk: bytes) -> int:
    try:
        return int(json.loads(chunk)["object"]["metadata"]["resourceVersion"])
    except (ValueError, KeyError, TypeError):
        return 0


async def serve(script: Script) -> AsyncIterator[str]:
    async def pods(request: web.Request) -> web.StreamResponse:
        query = dict(request.query)
        script.requests.append(query)
        if query.get("watch") != "true":
            return web.json_response({"kind": "PodList", "apiVersion": "v1",
                                      "metadata": {"resourceVersion": str(script.list_rv)}, "items": script.items})
        w = script.watches.pop(0) if script.watches else Watch(hang=True)
        if w.status is not None:
            return web.json_response({"kind": "Status", "apiVersion": "v1", "status": "Failure", "code": w.status,
                                      "reason": "Expired" if w.status == 410 else "InternalError",
                                      "message": "scripted"}, status=w.status)
        resp = web.StreamResponse(headers={"Content-Type": "application/json"})
        resp.enable_chunked_encoding()
        await resp.prepare(request)
        for chunk in w.lines:
            script.list_rv = max(script.list_rv, _rv_of(chunk))  # a server's RV never goes back
            await resp.write(chunk)
        if w.hang:
            await script.stop.wait()
        await resp.write_eof()
        return resp

    app = web.Application()
    app.router.add_get("/api/v1/pods", pods)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        script.stop.set()
        await runner.cleanup()


@pytest.fixture
def script() -> Script:
    return Script()


@pytest.fixture
async def client(tmp_path: Path, script: Script) -> AsyncIterator[KubeClient]:
    async for url in serve(script):
        cfg = tmp_path / "kubeconfig"
        cfg.write_text(yaml.safe_dump({
            "apiVersion": "v1", "kind": "Config", "current-context": "t",
            "clusters": [{"name": "c", "cluster": {"server": url}}],
            "contexts": [{"name": "t", "context": {"cluster": "c", "user": "u"}}],
            "users": [{"name": "u", "user": {"token": "x"}}]}))
        c = await KubeClient.create(KUBE.model_copy(update={"kubeconfig": str(cfg)}))
        yield c
        await c.close()


KUBE = KubeSettings(backoff_initial_s=0.01, backoff_max_s=0.05, inactivity_timeout_s=5, watch_timeout_s=(60, 60))


class Collector:
    def __init__(self) -> None:
        self.events: list[tuple[str, str | None, int]] = []
        self.changed = asyncio.Event()

    async def __call__(self, event: ReflectorEvent[Any]) -> None:
        name = event.obj["metadata"]["name"] if event.obj else None
        self.events.append((event.type.value, name, event.rv))
        self.changed.set()

    async def wait_for(self, predicate: Any, within: float = 5.0) -> None:
        async with asyncio.timeout(within):
            while not predicate(self.events):
                self.changed.clear()
                await self.changed.wait()


async def run_until(reflector: Reflector[Any], collector: Collector, predicate: Any) -> None:
    task = asyncio.create_task(reflector.run())
    try:
        await collector.wait_for(predicate)
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)


def identity(raw: dict[str, Any]) -> dict[str, Any]:
    return raw


def without_probes(script: Script) -> list[dict[str, str]]:
    """The requests minus the reflector's one-item RV probes (see Reflector._rewound)."""
    return [q for q in script.requests if not (q.get("watch") != "true" and q.get("limit") == "1")]


async def test_garbage_line_resumes_from_last_rv_without_relist(client: KubeClient, script: Script) -> None:
    script.items = [pod("a", 5)]
    script.watches = [Watch([line("ADDED", pod("b", 11)), b"<html>proxy error</html>\n", line("ADDED", pod("x", 12))]),
                      Watch([line("ADDED", pod("c", 13))], hang=True)]
    metrics = Metrics()
    got = Collector()
    r = Reflector(client, PODS, identity, got, settings=KUBE, metrics=metrics)
    await run_until(r, got, lambda ev: ("ADDED", "c", 13) in ev)
    assert got.events == [("LISTED", "a", 10), ("SYNCED", None, 10), ("ADDED", "b", 11), ("ADDED", "c", 13)]
    watch_rvs = [q["resourceVersion"] for q in script.requests if q.get("watch") == "true"]
    assert watch_rvs == ["10", "11"]
    assert sum(1 for q in without_probes(script) if q.get("watch") != "true") == 1
    assert metrics.watch_restarts.labels(resource="pods", reason="stream_error")._value.get() == 1


async def test_replayed_history_is_not_delivered_twice(client: KubeClient, script: Script) -> None:
    script.watches = [Watch([line("ADDED", pod("b", 11)), line("MODIFIED", pod("b", 12))]),
                      # A server (or proxy cache) replays from an older RV after the reconnect.
                      Watch([line("ADDED", pod("b", 11)), line("MODIFIED", pod("b", 12)),
                             line("DELETED", pod("b", 13))], hang=True)]
    got = Collector()
    r = Reflector(client, PODS, identity, got, settings=KUBE)
    await run_until(r, got, lambda ev: ("DELETED", "b", 13) in ev)
    assert [e for e in got.events if e[0] not in ("LISTED", "SYNCED")] == [
        ("ADDED", "b", 11), ("MODIFIED", "b", 12), ("DELETED", "b", 13)]


async def test_http_410_on_watch_relists_with_quorum_read(client: KubeClient, script: Script) -> None:
    script.watches = [Watch(status=410), Watch(hang=True)]
    got = Collector()
    metrics = Metrics()
    r = Reflector(client, PODS, identity, got, settings=KUBE, metrics=metrics, start_rv=3)
    await run_until(r, got, lambda ev: ("SYNCED", None, 10) in ev)
    first, relist = without_probes(script)[0], without_probes(script)[1]
    assert first["watch"] == "true" and first["resourceVersion"] == "3"
    assert "watch" not in relist and "resourceVersion" not in relist and relist["limit"] == "500"
    assert metrics.relists.labels(resource="pods")._value.get() == 1
    assert metrics.watch_restarts.labels(resource="pods", reason="expired")._value.get() == 1


async def test_in_stream_error_410_relists(client: KubeClient, script: Script) -> None:
    expired = {"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
               "message": "too old resource version: 10 (50)", "reason": "Expired", "code": 410}
    script.watches = [Watch([line("ERROR", expired)]), Watch(hang=True)]
    got = Collector()
    r = Reflector(client, PODS, identity, got, settings=KUBE)
    await run_until(r, got, lambda ev: sum(1 for e in ev if e[0] == "SYNCED") == 2)
    lists = [q for q in without_probes(script) if q.get("watch") != "true"]
    assert [q.get("resourceVersion") for q in lists] == [None, None]  # quorum reads, paged
    assert all(q["limit"] == "500" for q in lists)


async def test_bookmarks_advance_last_rv(client: KubeClient, script: Script) -> None:
    bookmark = {"kind": "Pod", "apiVersion": "v1", "metadata": {"resourceVersion": "40"}}
    script.watches = [Watch([line("BOOKMARK", bookmark)]), Watch(hang=True)]
    got = Collector()
    r = Reflector(client, PODS, identity, got, settings=KUBE)
    task = asyncio.create_task(r.run())
    try:
        await got.wait_for(lambda ev: ("BOOKMARK", None, 40) in ev)
        async with asyncio.timeout(5):
            while len(script.requests) < 3:  # noqa: ASYNC110 - requests are appended by the server
                await asyncio.sleep(0.01)
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
    assert r.last_rv == 40
    assert script.requests[2]["resourceVersion"] == "40"  # the normal end re-watched from the bookmark


async def test_instantly_ending_watches_back_off(client: KubeClient, script: Script) -> None:
    script.watches = [Watch() for _ in range(4)] + [Watch(hang=True)]
    got = Collector()
    metrics = Metrics()
    settings = KUBE.model_copy(update={"backoff_initial_s": 0.05, "backoff_max_s": 0.05})
    r = Reflector(client, PODS, identity, got, settings=settings, metrics=metrics)
    task = asyncio.create_task(r.run())
    await asyncio.sleep(0.6)
    task.cancel()
    await asyncio.gather(task, return_exceptions=True)
    assert len(script.watches) == 0  # all consumed, then the hanging one stays open
    assert metrics.watch_restarts.labels(resource="pods", reason="stream_error")._value.get() == 4
    assert got.events == [("SYNCED", None, 10)]
