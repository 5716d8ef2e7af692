"""``kubestream_kube_events_total``: Event occurrences as a Prometheus counter, counted once per
occurrence (count and series jumps, no recount on relists, 410s or restarts), with bounded labels,
and the PromQL example of docs/operations.md against a real agent process and the simulator."""

from __future__ import annotations

import re
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from source_events_support import Harness, core_event
from tests.agent.harness import AgentProcess, free_port, scrape, write_config

from kubestream.config.settings import EventMetricsSettings
from kubestream.kube.reflector import EventType
from kubestream.sim.server import SimConfig, SimServer

METRIC = "kubestream_kube_events_total"
OPERATIONS = Path(__file__).resolve().parents[2] / "docs" / "operations.md"


def _count(h: Harness, reason: str = "BackOff", type_: str = "Warning", kind: str = "Pod",
           namespace: str = "default") -> float:
    labels = {"type": type_, "reason": reason, "involved_kind": kind, "namespace": namespace}
    return h.metrics.registry.get_sample_value(METRIC, labels) or 0.0


def _series(h: Harness) -> dict[tuple[str, ...], float]:
    return {tuple(s.labels[k] for k in ("type", "reason", "involved_kind", "namespace")): s.value
            for family in h.metrics.kube_events.collect() for s in family.samples if s.name == METRIC}


def _warning(uid: str, rv: int, count: int | None = 1, **kw: Any) -> dict[str, Any]:
    return core_event(uid, rv, count, type_="Warning", **kw)


async def test_count_rises_by_the_occurrences_of_each_change(harness: Harness) -> None:
    await harness.listing([], list_rv=5)
    await harness.feed(EventType.ADDED, _warning("a", 10, 1))
    await harness.feed(EventType.MODIFIED, _warning("a", 11, 2))
    await harness.feed(EventType.MODIFIED, _warning("a", 12, 6))       # several repeats folded into one PATCH
    await harness.feed(EventType.MODIFIED, _warning("a", 13, 6))       # not an occurrence
    assert _count(harness) == 6
    series = {"count": 4, "lastObservedTime": "2023-11-14T22:05:00.123456Z"}
    await harness.feed(EventType.ADDED, _warning("s", 14, None, reason="Unhealthy"))
    await harness.feed(EventType.MODIFIED, _warning("s", 15, None, reason="Unhealthy", series=series))
    assert _count(harness, "Unhealthy") == 4
    assert sum(_series(harness).values()) == sum(d for _, d in harness.sink.deltas())


async def test_relists_410_and_restarts_do_not_count_again(harness: Harness) -> None:
    await harness.listing([_warning("a", 10, 2), _warning("b", 11, 1)], list_rv=12)
    assert _count(harness) == 3
    # 410 Gone: the reflector relists; "a" unchanged, "b" repeated twice meanwhile.
    await harness.listing([_warning("a", 10, 2), _warning("b", 20, 3)], list_rv=21)
    assert _count(harness) == 5
    harness.sink.commit()
    # The agent restarts (same process registry here): the committed watermarks come back, so
    # the first relist and a replayed watch count nothing that was counted already.
    harness.restart()
    await harness.listing([_warning("a", 10, 2), _warning("b", 20, 3)], list_rv=22)
    await harness.feed(EventType.MODIFIED, _warning("b", 20, 3))
    assert _count(harness) == 5
    await harness.feed(EventType.MODIFIED, _warning("b", 23, 4))
    assert _count(harness) == 6
    # A deletion (TTL) never counts.
    await harness.feed(EventType.DELETED, _warning("b", 24, 4))
    assert _count(harness) == 6


async def test_uncommitted_occurrences_are_counted_again_only_by_the_next_process(harness: Harness) -> None:
    await harness.listing([], list_rv=5)
    await harness.feed(EventType.ADDED, _warning("a", 10, 3))
    assert _count(harness) == 3
    harness.restart()  # a crash before the batch was committed: the archive gets them again, once
    await harness.listing([_warning("a", 10, 3)], list_rv=11)
    assert harness.sink.deltas() == [("a", 3)]
    assert _count(harness) == 6  # one registry for both incarnations here; a real restart starts at 0


async def test_baseline_and_filtered_events_are_not_counted(make_harness: Any) -> None:
    h = make_harness(since="now", reasons_exclude=["Pulled"])
    await h.listing([_warning("old", 10, 7)], list_rv=11)                 # baseline of the first start
    await h.feed(EventType.ADDED, _warning("p", 12, 1, reason="Pulled"))    # filtered
    assert _series(h) == {}
    await h.feed(EventType.MODIFIED, _warning("old", 13, 9))
    assert _series(h) == {("Warning", "BackOff", "Pod", "default"): 2.0}


async def test_labels_are_capped_and_bounded(make_harness: Any) -> None:
    h = make_harness(since="retained", metrics=EventMetricsSettings(max_reasons=2, max_namespaces=1, max_kinds=1))
    await h.listing([], list_rv=5)
    await h.feed(EventType.ADDED, _warning("a", 10, 1, reason="BackOff", namespace="shop"))
    await h.feed(EventType.ADDED, _warning("b", 11, 1, reason="Unhealthy", namespace="shop"))
    await h.feed(EventType.ADDED, _warning("c", 12, 2, reason="FailedMount", namespace="shop"))
    await h.feed(EventType.ADDED, _warning("d", 13, 1, reason="BackOff", namespace="payments", kind="Node"))
    await h.feed(EventType.ADDED, core_event("e", 14, 1, type_="Custom", reason="BackOff", namespace="shop"))
    assert _series(h) == {
        ("Warning", "BackOff", "Pod", "shop"): 1.0,
        ("Warning", "Unhealthy", "Pod", "shop"): 1.0,
        ("Warning", "other", "Pod", "shop"): 2.0,
        ("Warning", "BackOff", "other", "other"): 1.0,
        ("other", "BackOff", "Pod", "shop"): 1.0,
    }
    # no object names anywhere in the labels
    assert not any(value.startswith("obj-") for key in _series(h) for value in key)


async def test_switched_off(make_harness: Any) -> None:
    h = make_harness(since="retained", metrics=EventMetricsSettings(enabled=False))
    await h.listing([_warning("a", 10, 3)], list_rv=11)
    assert h.sink.deltas() == [("a", 3)]
    assert _series(h) == {}


# -- the documented alert, against a real agent process ----------------------------------------


@pytest.fixture
def sim() -> Iterator[SimServer]:
    server = SimServer(SimConfig())
    server.start()
    try:
        yield server
    finally:
        server.stop()


def _documented_selector() -> tuple[str, dict[str, str]]:
    """The metric and label matchers of the ```promql example of docs/operations.md."""
    block = re.search(r"```promql\n(.*?)```", OPERATIONS.read_text(), re.S)
    assert block is not None
    match = re.search(r"(kubestream_[a-z_]+)\{([^}]*)\}", block.group(1))
    assert match is not None
    return match.group(1), dict(re.findall(r'(\w+)="([^"]*)"', match.group(2)))


def _sim_event(name: str, namespace: str, count: int, *, reason: str = "BackOff",
               type_: str = "Warning") -> dict[str, Any]:
    return {
        "metadata": {"name": name, "namespace": namespace},
        "involvedObject": {"kind": "Pod", "namespace": namespace, "name": f"{name}-pod", "uid": f"uid-{name}",
                           "apiVersion": "v1", "fieldPath": "spec.containers{app}"},
        "reason": reason, "message": f"Back-off restarting failed container app in pod {name}-pod",
        "type": type_, "count": count, "source": {"component": "kubelet", "host": "node-1"},
        "firstTimestamp": "2026-01-01T00:00:00Z", "lastTimestamp": "2026-01-01T00:00:00Z",
    }


def _wait_for(port: int, check: Any, within: float = 30.0) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    deadline = time.monotonic() + within
    while True:
        samples = scrape(port)
        if check(samples) or time.monotonic() > deadline:
            return samples
        time.sleep(0.2)


def _value(samples: dict[tuple[str, tuple[tuple[str, str], ...]], float], **labels: str) -> float:
    return sum(v for (name, key), v in samples.items()
               if name == METRIC and all(dict(key).get(k) == want for k, want in labels.items()))


def test_documented_promql_metric_and_labels_exist_on_a_real_agent(sim: SimServer, tmp_path: Path) -> None:
    metric, matchers = _documented_selector()
    assert metric == METRIC
    assert set(matchers) <= {"type", "reason", "involved_kind", "namespace"}
    namespace = matchers["namespace"]
    sim.cluster.create("namespaces", {"metadata": {"name": namespace}})
    port = free_port()
    agent = AgentProcess(write_config(tmp_path, sim, server={"port": port}, events={"since": "retained"}),
                         tmp_path).start()
    try:
        agent.wait_ready()
        crash = sim.cluster.create("events", _sim_event("crash", namespace, 1))
        sim.cluster.create("events", _sim_event("other-ns", "default", 2))
        sim.cluster.create("events", _sim_event("pulled", namespace, 1, reason="Pulled", type_="Normal"))
        samples = _wait_for(port, lambda s: _value(s, **matchers) >= 1 and _value(s, reason="Pulled") >= 1
                            and _value(s, namespace="default") >= 2)
        assert _value(samples, **matchers) == 1, agent.log()
        # The kubelet folds repeats into count bumps: 1 → 4 → 7 adds 6 occurrences in all.
        for count in (4, 7):
            crash = sim.cluster.update("events", {**crash, "count": count})
        samples = _wait_for(port, lambda s: _value(s, **matchers) >= 7)
        assert _value(samples, **matchers) == 7
        series = {dict(key)["namespace"]: v for (name, key), v in samples.items()
                  if name == METRIC and dict(key)["reason"] == "BackOff"}
        assert series == {namespace: 7.0, "default": 2.0}
        assert _value(samples, type="Normal", reason="Pulled", involved_kind="Pod", namespace=namespace) == 1
        # A dropped watch (the agent resumes or relists) counts nothing again.
        sim.faults.drop_watches("events")
        time.sleep(2.0)
        assert _value(scrape(port), **matchers) == 7
    finally:
        assert agent.terminate() == 0, agent.log()
    # A restarted agent reloads what it exported: its relist counts nothing already counted.
    agent = AgentProcess(write_config(tmp_path, sim, server={"port": port}, events={"since": "retained"}),
                         tmp_path).start()
    try:
        agent.wait_ready()
        sim.cluster.update("events", {**crash, "count": 9})
        samples = _wait_for(port, lambda s: _value(s, **matchers) >= 2)
        time.sleep(1.0)
        assert _value(scrape(port), **matchers) == 2, agent.log()
        assert _value(scrape(port), namespace="default") == 0
    finally:
        assert agent.terminate() == 0, agent.log()
