"""Reflector against the simulated API server: list/watch, relists, faults, backoff, cost."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest

from kubestream.config.settings import KubeSettings
from kubestream.kube.client import KubeClient
from kubestream.kube.objects import Decoders, PodInfo
from kubestream.kube.reflector import EventType, Reflector, ReflectorEvent, ResourceRef
from kubestream.kube.store import ObjectStore
from kubestream.obs.metrics import Metrics
from kubestream.sim.server import SimServer
from kubestream.sim.testing import kubeconfig_for

PODS = ResourceRef("", "v1", "pods")
DECODE = Decoders().pod


def new_pod(name: str, namespace: str = "default", node: str | None = "node-1", **labels: str) -> dict[str, Any]:
    spec: dict[str, Any] = {"containers": [{"name": "app", "image": "nginx:1.27"}]}
    if node:
        spec["nodeName"] = node
    return {"metadata": {"name": name, "namespace": namespace, "labels": labels}, "spec": spec}


class Recorder:
    """A handler that feeds a store and remembers every event it was given."""

    def __init__(self, delete_delay_s: float = 60.0) -> None:
        self.store: ObjectStore[PodInfo] = ObjectStore("Pod", delete_delay_s=delete_delay_s)
        self.events: list[ReflectorEvent[PodInfo]] = []
        self._changed = asyncio.Event()

    async def __call__(self, event: ReflectorEvent[PodInfo]) -> None:
        self.events.append(event)
        await self.store.handle(event)
        self._changed.set()

    async def until(self, predicate: Callable[[], bool], within: float = 10.0) -> None:
        async with asyncio.timeout(within):
            while not predicate():
                self._changed.clear()
                await self._changed.wait()

    def watch_events(self) -> list[tuple[str, str, int]]:
        return [(e.type.value, e.obj.uid, e.rv) for e in self.events
                if e.obj is not None and e.type not in (EventType.LISTED,)]


async def running(reflector: Reflector[Any]) -> asyncio.Task[None]:
    task = asyncio.create_task(reflector.run())
    async with asyncio.timeout(10):
        await reflector.synced.wait()
    return task


async def stop(task: asyncio.Task[None]) -> None:
    task.cancel()
    await asyncio.gather(task, return_exceptions=True)


async def eventually(check: Callable[[], bool], within: float = 10.0) -> None:
    """Poll state owned by the simulator's thread (it has no event this loop could await)."""
    async with asyncio.timeout(within):
        while not check():  # noqa: ASYNC110
            await asyncio.sleep(0.02)


def is_rv_probe(path: str) -> bool:
    """The reflector's one-item quorum list asking the server's RV (see Reflector._rewound)."""
    query = path.split("?", 1)[1].split("&") if "?" in path else []
    return "limit=1" in query and not any(q.startswith("continue=") for q in query)


def full_lists(server: SimServer, resource: str = "pods") -> list[Any]:
    """List requests of ``resource`` that are (pages of) real lists, not RV probes."""
    return [rq for rq in server.requests.records()
            if rq.verb == "list" and rq.resource == resource and not is_rv_probe(rq.path)]


def server_pods(server: SimServer, **kw: Any) -> dict[str, int]:
    return {p["metadata"]["uid"]: int(p["metadata"]["resourceVersion"]) for p in server.cluster.list("pods", **kw)}


def store_pods(rec: Recorder) -> dict[str, int]:
    return {p.uid: p.rv for p in rec.store.items()}


async def in_thread(fn: Callable[[], Any]) -> Any:
    """Server-side mutations run in a thread so this loop keeps reading the watch."""
    return await asyncio.to_thread(fn)


async def test_list_then_watch_add_modify_delete(sim_server: SimServer, kube_client: KubeClient,
                                                 kube_settings: KubeSettings) -> None:
    for i in range(3):
        sim_server.cluster.create("pods", new_pod(f"p{i}"))
    rec = Recorder()
    r = Reflector(kube_client, PODS, DECODE, rec, settings=kube_settings)
    task = await running(r)
    try:
        assert [e.type for e in rec.events] == [EventType.LISTED] * 3 + [EventType.SYNCED]
        list_rv = rec.events[-1].rv
        assert all(e.rv == list_rv for e in rec.events)
        await in_thread(lambda: sim_server.cluster.create("pods", new_pod("p3")))
        await in_thread(lambda: sim_server.cluster.patch("pods", "default", "p0", {"metadata": {"labels": {"v": "2"}}}))
        await in_thread(lambda: sim_server.cluster.delete("pods", "default", "p1", grace_period_s=0))
        await rec.until(lambda: any(e.type is EventType.DELETED for e in rec.events))
        changes = [(e.type, e.obj.name) for e in rec.events[4:] if e.obj is not None]
        assert changes == [(EventType.ADDED, "p3"), (EventType.MODIFIED, "p0"), (EventType.DELETED, "p1")]
        assert store_pods(rec) == server_pods(sim_server)
        assert rec.store.get_by_name("default", "p0").labels == {"v": "2"}  # type: ignore[union-attr]
        assert r.last_rv == sim_server.cluster.resource_version
    finally:
        await stop(task)
    lists = sim_server.requests.count(verb="list", resource="pods")
    assert lists == 1
    first_list = next(rq for rq in sim_server.requests.records() if rq.verb == "list")
    assert "resourceVersion" not in first_list.path and "limit=500" in first_list.path
    watch = next(rq for rq in sim_server.requests.records() if rq.verb == "watch")
    assert "allowWatchBookmarks=true" in watch.path and f"resourceVersion={list_rv}" in watch.path


async def test_bookmarks_advance_last_rv(sim_server: SimServer, kube_client: KubeClient,
                                         kube_settings: KubeSettings) -> None:
    rec = Recorder()
    r = Reflector(kube_client, PODS, DECODE, rec, settings=kube_settings)
    task = await running(r)
    try:
        # Another resource moves the global RV; only bookmarks can tell the pod watch.
        await in_thread(lambda: sim_server.cluster.create("namespaces", {"metadata": {"name": "elsewhere"}}))
        target = sim_server.cluster.resource_version
        await rec.until(lambda: any(e.type is EventType.BOOKMARK and e.rv >= target for e in rec.events))
        assert r.last_rv >= target
    finally:
        await stop(task)


async def test_relist_after_in_stream_410_is_paged_quorum_read(sim_server: SimServer, tmp_path: Path) -> None:
    settings = KubeSettings(kubeconfig=str(kubeconfig_for(sim_server, tmp_path)), backoff_initial_s=0.05,
                            backoff_max_s=0.2, list_page_size=2)
    for i in range(5):
        sim_server.cluster.create("pods", new_pod(f"p{i}"))
    metrics = Metrics()
    client = await KubeClient.create(settings, metrics=metrics)
    rec = Recorder()
    r = Reflector(client, PODS, DECODE, rec, settings=settings, metrics=metrics)
    task = await running(r)
    try:
        sim_server.faults.expire_next_watches(1, resource="pods")
        sim_server.faults.drop_watches("pods")  # the next watch is the expired one
        await in_thread(lambda: sim_server.cluster.delete("pods", "default", "p4", grace_period_s=0))
        await in_thread(lambda: sim_server.cluster.create("pods", new_pod("p5")))
        await rec.until(lambda: sum(e.type is EventType.SYNCED for e in rec.events) == 2)
        await eventually(lambda: store_pods(rec) == server_pods(sim_server))
        assert rec.store.is_deleted(next(e.obj.uid for e in rec.events if e.obj and e.obj.name == "p4"))
    finally:
        await stop(task)
        await client.close()
    lists = full_lists(sim_server)
    # Both lists are quorum reads in pages of 2: 5 pods, then 5 again (p4 gone, p5 new).
    assert len(lists) == 3 + 3
    assert all("resourceVersion" not in rq.path and "limit=2" in rq.path for rq in lists)
    assert ["continue=" in rq.path for rq in lists] == [False, True, True] * 2
    assert metrics.relists.labels(resource="pods")._value.get() == 2
    assert metrics.watch_restarts.labels(resource="pods", reason="expired")._value.get() == 1


async def test_field_scoped_first_list_reads_the_watch_cache(sim_server: SimServer, kube_client: KubeClient,
                                                             kube_settings: KubeSettings) -> None:
    sim_server.cluster.create("pods", new_pod("mine", node="node-1"))
    sim_server.cluster.create("pods", new_pod("theirs", node="node-2"))
    rec = Recorder()
    r = Reflector(kube_client, PODS, DECODE, rec, settings=kube_settings, field_selector="spec.nodeName=node-1")
    task = await running(r)
    await stop(task)
    assert [p.name for p in rec.store.items()] == ["mine"]
    lists = full_lists(sim_server)
    assert len(lists) == 1 and "resourceVersion=0" in lists[0].path
    assert lists[0].field_selector == "spec.nodeName=node-1"


async def test_dropped_and_cut_watches_lose_and_duplicate_nothing(sim_server: SimServer, kube_client: KubeClient,
                                                                  kube_settings: KubeSettings) -> None:
    rec = Recorder(delete_delay_s=0)
    metrics = Metrics()
    r = Reflector(kube_client, PODS, DECODE, rec, settings=kube_settings, metrics=metrics)
    task = await running(r)
    try:
        for round_ in range(6):
            if round_ % 2:
                sim_server.faults.cut_next_watch_mid_object(1)
            await eventually(lambda: sim_server.requests.open_watches("pods") == 1)
            await in_thread(lambda: sim_server.faults.drop_watches("pods"))
            for i in range(5):
                name = f"r{round_}-{i}"
                await in_thread(lambda n=name: sim_server.cluster.create("pods", new_pod(n)))  # type: ignore[misc]
            await in_thread(lambda r_=round_: sim_server.cluster.patch(
                "pods", "default", f"r{r_}-0", {"metadata": {"labels": {"touched": "yes"}}}))
            if round_:
                await in_thread(lambda r_=round_: sim_server.cluster.delete(
                    "pods", "default", f"r{r_ - 1}-1", grace_period_s=0))
        await eventually(lambda: r.last_rv >= sim_server.cluster.resource_version - 0
                         and store_pods(rec) == server_pods(sim_server))
    finally:
        await stop(task)
    seen = rec.watch_events()
    assert len(seen) == len(set(seen)), "an event was delivered twice"
    by_uid: dict[str, list[int]] = {}
    for _, uid, rv in seen:
        by_uid.setdefault(uid, []).append(rv)
    assert all(rvs == sorted(rvs) for rvs in by_uid.values()), "an older event came after a newer one"
    assert len(full_lists(sim_server)) == 1  # recovered without relisting
    broken = {reason: metrics.watch_restarts.labels(resource="pods", reason=reason)._value.get()
              for reason in ("stream_error", "bad_frame")}
    assert sum(broken.values()) >= 6, broken  # every round really broke the stream


async def test_5xx_storm_backs_off_then_recovers(sim_server: SimServer, tmp_path: Path) -> None:
    settings = KubeSettings(kubeconfig=str(kubeconfig_for(sim_server, tmp_path)), backoff_initial_s=0.1,
                            backoff_max_s=1.0)
    metrics = Metrics()
    client = await KubeClient.create(settings, metrics=metrics)
    rec = Recorder()
    r = Reflector(client, PODS, DECODE, rec, settings=settings, metrics=metrics)
    task = await running(r)
    try:
        storm_s = 2.0
        before = sim_server.requests.count(resource="pods")
        sim_server.faults.error_storm(503, storm_s, resource="pods")
        await in_thread(lambda: sim_server.faults.drop_watches("pods"))
        await in_thread(lambda: sim_server.cluster.create("pods", new_pod("during-storm")))
        await asyncio.sleep(storm_s)
        during = sim_server.requests.count(resource="pods") - before
        await rec.until(lambda: rec.store.get_by_name("default", "during-storm") is not None)
    finally:
        await stop(task)
        await client.close()
    # Without backoff a watch loop makes hundreds of requests in 2 s; with 0.1 s doubling to 1 s
    # and full jitter the expected count is about 5, bounded well below 12.
    assert 2 <= during <= 12, during
    assert metrics.watch_restarts.labels(resource="pods", reason="server_error")._value.get() >= 1
    assert len(full_lists(sim_server)) == 1  # resumed, never relisted


async def test_429_storm_honours_retry_after_without_relist(sim_server: SimServer, tmp_path: Path) -> None:
    settings = KubeSettings(kubeconfig=str(kubeconfig_for(sim_server, tmp_path)), backoff_initial_s=0.01,
                            backoff_max_s=0.02)
    client = await KubeClient.create(settings)
    rec = Recorder()
    r = Reflector(client, PODS, DECODE, rec, settings=settings)
    task = await running(r)
    try:
        before = sim_server.requests.count(resource="pods")
        sim_server.faults.error_storm(429, 2.0, retry_after=1, resource="pods")
        await in_thread(lambda: sim_server.faults.drop_watches("pods"))
        started = time.monotonic()
        await in_thread(lambda: sim_server.cluster.create("pods", new_pod("later")))
        await rec.until(lambda: rec.store.get_by_name("default", "later") is not None)
        waited = time.monotonic() - started
        attempts = sim_server.requests.count(resource="pods") - before
    finally:
        await stop(task)
        await client.close()
    # Retry-After 1 s over a 2 s storm: about 3 attempts (tiny backoff alone would make ~100).
    assert attempts <= 5, attempts
    assert waited >= 1.5
    assert len(full_lists(sim_server)) == 1


async def test_resume_from_start_rv_skips_the_list(sim_server: SimServer, kube_client: KubeClient,
                                                   kube_settings: KubeSettings) -> None:
    sim_server.cluster.create("pods", new_pod("before"))
    saved = sim_server.cluster.resource_version
    sim_server.cluster.create("pods", new_pod("after"))
    rec = Recorder()
    r = Reflector(kube_client, PODS, DECODE, rec, settings=kube_settings, start_rv=saved)
    task = await running(r)
    try:
        await rec.until(lambda: any(e.obj is not None and e.obj.name == "after" for e in rec.events))
    finally:
        await stop(task)
    assert [(e.type, e.obj.name if e.obj else None) for e in rec.events if e.type is not EventType.BOOKMARK] == [
        (EventType.ADDED, "after")]
    assert full_lists(sim_server) == []  # only the RV probe (limit=1) before resuming


async def test_resume_from_compacted_rv_relists(sim_server: SimServer, kube_client: KubeClient,
                                                kube_settings: KubeSettings) -> None:
    sim_server.cluster.create("pods", new_pod("a"))
    saved = sim_server.cluster.resource_version
    sim_server.cluster.create("pods", new_pod("b"))
    sim_server.faults.compact()
    rec = Recorder()
    r = Reflector(kube_client, PODS, DECODE, rec, settings=kube_settings, start_rv=saved)
    task = asyncio.create_task(r.run())
    try:
        await rec.until(lambda: any(e.type is EventType.SYNCED for e in rec.events))
    finally:
        await stop(task)
    assert sorted(e.obj.name for e in rec.events if e.type is EventType.LISTED and e.obj) == ["a", "b"]


async def test_inactivity_and_server_timeout_rewatch_without_relist(sim_factory: Callable[..., SimServer],
                                                                    tmp_path: Path) -> None:
    server = sim_factory(bookmark_interval_s=60.0)
    settings = KubeSettings(kubeconfig=str(kubeconfig_for(server, tmp_path)), inactivity_timeout_s=0.3,
                            watch_timeout_s=(1.0, 1.0), backoff_initial_s=0.01, backoff_max_s=0.02)
    metrics = Metrics()
    client = await KubeClient.create(settings, metrics=metrics)
    rec = Recorder()
    r = Reflector(client, PODS, DECODE, rec, settings=settings, metrics=metrics)
    task = await running(r)
    try:
        await eventually(lambda: metrics.watch_restarts.labels(resource="pods", reason="inactivity")._value.get() >= 2)
        await in_thread(lambda: server.cluster.create("pods", new_pod("x")))
        await rec.until(lambda: rec.store.get_by_name("default", "x") is not None)
    finally:
        await stop(task)
        await client.close()
    assert len(full_lists(server)) == 1


async def test_server_timeout_rewatches_immediately(sim_server: SimServer, tmp_path: Path) -> None:
    settings = KubeSettings(kubeconfig=str(kubeconfig_for(sim_server, tmp_path)), watch_timeout_s=(1.0, 1.0),
                            backoff_initial_s=5.0, backoff_max_s=5.0)
    metrics = Metrics()
    client = await KubeClient.create(settings, metrics=metrics)
    r = Reflector(client, PODS, DECODE, Recorder(), settings=settings, metrics=metrics)
    task = await running(r)
    try:
        await eventually(lambda: sim_server.requests.count(verb="watch", resource="pods") >= 3, within=5)
    finally:
        await stop(task)
        await client.close()
    assert metrics.watch_restarts.labels(resource="pods", reason="timeout")._value.get() >= 2
    watch_query = next(rq.path for rq in sim_server.requests.records() if rq.verb == "watch")
    assert "timeoutSeconds=1&" in watch_query or watch_query.endswith("timeoutSeconds=1")
    assert len(full_lists(sim_server)) == 1


async def test_unauthorized_keeps_retrying_with_backoff(sim_factory: Callable[..., SimServer], tmp_path: Path) -> None:
    server = sim_factory(tokens=["good"])
    settings = KubeSettings(kubeconfig=str(kubeconfig_for(server, tmp_path, token="bad")), backoff_initial_s=0.05,
                            backoff_max_s=0.1)
    client = await KubeClient.create(settings)
    r = Reflector(client, PODS, DECODE, Recorder(), settings=settings)
    task = asyncio.create_task(r.run())
    await asyncio.sleep(0.5)
    assert not task.done() and not r.synced.is_set()
    server.set_tokens(["good", "bad"])  # RBAC/credentials fixed: it recovers on its own
    try:
        async with asyncio.timeout(5):
            await r.synced.wait()
    finally:
        await stop(task)
        await client.close()


async def test_tls_and_token_kubeconfig(sim_factory: Callable[..., SimServer], tmp_path: Path) -> None:
    server = sim_factory(tls=True, tokens=["s3cret"])
    assert server.url.startswith("https://")
    server.cluster.create("pods", new_pod("tls-pod"))
    settings = KubeSettings(kubeconfig=str(kubeconfig_for(server, tmp_path, token="s3cret")))
    client = await KubeClient.create(settings)
    rec = Recorder()
    r = Reflector(client, PODS, DECODE, rec, settings=settings)
    task = await running(r)
    await stop(task)
    await client.close()
    assert [p.name for p in rec.store.items()] == ["tls-pod"]


HandlerT = Callable[[ReflectorEvent[Any]], Awaitable[None]]


@pytest.mark.parametrize("n", [3])
async def test_slow_handler_applies_backpressure_without_loss(sim_server: SimServer, kube_client: KubeClient,
                                                              kube_settings: KubeSettings, n: int) -> None:
    rec = Recorder()

    async def slow(event: ReflectorEvent[Any]) -> None:
        await asyncio.sleep(0.05)
        await rec(event)

    r = Reflector(kube_client, PODS, DECODE, slow, settings=kube_settings)
    task = await running(r)
    try:
        for i in range(n * 5):
            await in_thread(lambda i=i: sim_server.cluster.create("pods", new_pod(f"s{i}")))  # type: ignore[misc]
        await eventually(lambda: store_pods(rec) == server_pods(sim_server))
    finally:
        await stop(task)
