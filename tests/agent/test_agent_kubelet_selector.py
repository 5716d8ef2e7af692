"""Kubelet mode, before the kubelet's first answer (or while it refuses): a new pod's first lines
wait for its labels instead of being selected and routed as a pod without labels. A destination
with ``filter.pod_selector: app=web`` must get the lines of an ``app=web`` pod even when the agent
started while the kubelet said 403."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

from tests.agent.test_agent_kubelet_address import NODE, Start, _settings, sim, start
from tests.enrich.enrich_support import make_pod

from kubestream.agent.routing import record_filter
from kubestream.config.settings import DestinationFilter
from kubestream.model import Record
from kubestream.sim.config import DenyRule
from kubestream.sim.server import SimServer

__all__ = ["sim", "start"]


async def test_a_new_pods_lines_wait_for_its_labels_while_the_kubelet_refuses(
        sim: SimServer, tmp_path: Path, start: Start) -> None:
    enricher = await start(_settings(sim, tmp_path, nodes=True))
    kubelet = enricher.kubelet
    assert kubelet is not None
    sim.config.deny = [DenyRule(resource="nodes/pods"), DenyRule(resource="nodes/proxy")]
    pod = (await asyncio.to_thread(make_pod, sim, "web-new", "shop", labels={"app": "web"}))["metadata"]
    waiting = asyncio.create_task(enricher.settle_pod(pod["uid"]))
    await asyncio.sleep(1.0)  # reads fail meanwhile: the line is held, not sent without labels
    assert not waiting.done()
    sim.config.deny = []
    started = time.monotonic()
    async with asyncio.timeout(10):
        await waiting
    assert time.monotonic() - started < 5
    block = enricher.for_pod("shop", "web-new", pod["uid"], container="app")
    assert block["labels"] == {"app": "web"}
    accepts = record_filter(DestinationFilter(pod_selector="app=web"), "logs")
    assert accepts is not None and accepts(Record(data={"kubernetes": block}, sort_key=0, position=1))
    assert sim.kubelet_requests.count(node=NODE, path="/pods", code=403) >= 1
