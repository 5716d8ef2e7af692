"""resourceVersion going backwards (an etcd restore; here the simulated API server restarted
empty on the same port): the reflector notices, counts it, logs one WARNING and relists."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Iterator
from pathlib import Path

import pytest
from test_kube_reflector_sim import DECODE, PODS, Recorder, eventually, full_lists, in_thread, new_pod, stop

from kubestream.config.settings import KubeSettings
from kubestream.kube.client import KubeClient
from kubestream.kube.reflector import EventType, Reflector
from kubestream.obs.metrics import Metrics
from kubestream.sim.server import SimConfig, SimServer
from kubestream.sim.testing import TEST_DEFAULTS

FAST = {"backoff_initial_s": 0.05, "backoff_max_s": 0.2, "watch_timeout_s": (60.0, 60.0),
        "inactivity_timeout_s": 60.0}


class Restartable:
    """A simulator that can be replaced by a new, empty one on the same port."""

    def __init__(self) -> None:
        self.server = SimServer(SimConfig(**TEST_DEFAULTS)).start()
        self.port = self.server.port

    def restart_empty(self) -> SimServer:
        self.server.stop()
        self.server = SimServer(SimConfig(**{**TEST_DEFAULTS, "port": self.port})).start()
        return self.server


@pytest.fixture
def sims() -> Iterator[Restartable]:
    r = Restartable()
    yield r
    r.server.stop()


def resets(metrics: Metrics, resource: str = "pods") -> float:
    return metrics.resource_version_resets.labels(resource=resource)._value.get()


async def test_server_restarted_empty_is_detected_and_relisted(sims: Restartable, tmp_path: Path,
                                                               caplog: pytest.LogCaptureFixture) -> None:
    old = sims.server
    for i in range(30):  # push the old world's RV well above what the new one will reach
        old.cluster.create("pods", new_pod(f"old-{i}"))
    settings = KubeSettings(kubeconfig=str(old.write_kubeconfig(tmp_path / "kc")), **FAST)
    metrics = Metrics()
    client = await KubeClient.create(settings, metrics=metrics)
    rec = Recorder(delete_delay_s=60)
    r = Reflector(client, PODS, DECODE, rec, settings=settings, metrics=metrics)
    task = asyncio.create_task(r.run())
    try:
        await rec.until(lambda: r.synced.is_set() and len(rec.store) == 30)
        old_rv = r.last_rv
        new = await in_thread(sims.restart_empty)
        await in_thread(lambda: new.cluster.create("pods", new_pod("new-0")))
        assert new.cluster.resource_version < old_rv
        await rec.until(lambda: rec.store.get_by_name("default", "new-0") is not None)
        await in_thread(lambda: new.cluster.create("pods", new_pod("new-1")))  # and the watch goes on
        await rec.until(lambda: rec.store.get_by_name("default", "new-1") is not None)
    finally:
        await stop(task)
        await client.close()
    kinds = [e.type for e in rec.events]
    reset_at = kinds.index(EventType.RESET)
    assert rec.events[reset_at].rv < old_rv
    assert kinds[reset_at + 1] is EventType.LISTED  # then the quorum relist of the new world
    assert EventType.SYNCED in kinds[reset_at + 1:]
    assert sorted(p.name for p in rec.store.items()) == ["new-0", "new-1"]
    assert all(rec.store.is_deleted(e.obj.uid) for e in rec.events[:reset_at] if e.obj is not None)
    assert resets(metrics) == 1
    assert "resourceVersion=" not in full_lists(new)[0].path  # a quorum read
    warnings = [rec_ for rec_ in caplog.records if "went backwards" in rec_.getMessage()]
    assert len(warnings) == 1 and warnings[0].levelno == logging.WARNING
    assert f"from {old_rv} to" in warnings[0].getMessage()


async def test_resuming_a_saved_rv_the_server_never_reached(sims: Restartable, tmp_path: Path) -> None:
    # The Events source resumes from its committed RV; after an etcd restore that RV is "from
    # the future" and a plain watch from it hangs (200, then nothing): check before watching.
    server = sims.server
    server.cluster.create("pods", new_pod("a"))
    settings = KubeSettings(kubeconfig=str(server.write_kubeconfig(tmp_path / "kc")), **FAST)
    metrics = Metrics()
    client = await KubeClient.create(settings, metrics=metrics)
    rec = Recorder()
    r = Reflector(client, PODS, DECODE, rec, settings=settings, metrics=metrics, start_rv=22915)
    task = asyncio.create_task(r.run())
    try:
        await rec.until(lambda: any(e.type is EventType.SYNCED for e in rec.events))
        await in_thread(lambda: server.cluster.create("pods", new_pod("b")))
        await rec.until(lambda: rec.store.get_by_name("default", "b") is not None)
    finally:
        await stop(task)
        await client.close()
    assert [e.type for e in rec.events[:2]] == [EventType.RESET, EventType.LISTED]
    assert resets(metrics) == 1
    assert r.last_rv == server.cluster.resource_version


async def test_a_healthy_resume_costs_one_probe_and_no_reset(sims: Restartable, tmp_path: Path) -> None:
    server = sims.server
    server.cluster.create("pods", new_pod("a"))
    saved = server.cluster.resource_version
    settings = KubeSettings(kubeconfig=str(server.write_kubeconfig(tmp_path / "kc")), **FAST)
    metrics = Metrics()
    client = await KubeClient.create(settings, metrics=metrics)
    rec = Recorder()
    r = Reflector(client, PODS, DECODE, rec, settings=settings, metrics=metrics, start_rv=saved)
    task = asyncio.create_task(r.run())
    try:
        await eventually(lambda: server.requests.open_watches("pods") == 1)
    finally:
        await stop(task)
        await client.close()
    assert resets(metrics) == 0 and rec.events == []
    assert [rq.verb for rq in server.requests.records() if rq.resource == "pods"] == ["list", "watch"]
    assert full_lists(server) == []
