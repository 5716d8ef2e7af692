"""Log-line parsing through the real LogsSource → Pipeline → Spool → Delivery → FileSink (issue 9):
an exited container's last partial line goes out after ``partial_expiry_s``; start patterns from
pod annotations run on RE2, a catastrophic one stalls nothing and a refused one is reported once
per container, its lines going out unjoined."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import pytest
from logs_source_support import NODE, Rig, eventually, make_settings, pod, read_archive

from kubestream.config.settings import KubeSettings, Settings
from kubestream.enrich import Enricher
from kubestream.kube.client import KubeClient
from kubestream.sim.server import SimServer
from kubestream.sim.testing import kubeconfig_for, running_sim

PREFIX = b"2026-01-01T00:00:00.000000001Z stdout "
GREEDY = "a" * 34 + "!"
"""``(a+)+$`` against this line takes a backtracking engine 2^34 steps."""


def log_file(tmp: Path, namespace: str, name: str, uid: str, restart: int = 0, container: str = "app") -> Path:
    path = tmp / "pods" / f"{namespace}_{name}_{uid}" / container / f"{restart}.log"
    path.parent.mkdir(parents=True, exist_ok=True)
    return path


def write_cri(path: Path, *lines: tuple[str, str]) -> None:
    """Append (tag, message) CRI lines, one write each, as the runtime does."""
    with path.open("ab") as f:
        for tag, message in lines:
            f.write(PREFIX + tag.encode() + b" " + message.encode() + b"\n")
            f.flush()


def messages_of(tmp: Path, uid: str | None = None) -> list[str]:
    return [str(r["message"]) for r in read_archive(tmp / "out")
            if uid is None or r["kubernetes"]["pod_uid"] == uid]


async def test_an_exited_containers_last_partial_goes_out_after_the_expiry(tmp_path: Path) -> None:
    settings = make_settings(tmp_path, partial_expiry_s=0.3)
    path = log_file(tmp_path, "default", "job-1", "0b3f6f3c-0000-4000-8000-000000000001")
    rig = Rig(tmp_path, settings)
    await rig.start()
    try:
        # containerd's last write for a container that exited mid-line: a P that never gets its F.
        write_cri(path, ("F", "started"), ("P", "the last words"))
        await eventually(lambda: len(messages_of(tmp_path)) >= 2, within=10)
        got = messages_of(tmp_path)
    finally:
        await rig.stop()
    assert got == ["started", "the last words"]
    assert rig.dropped("truncated") == 0  # nothing was lost: emitted as written


# -- start patterns from pod annotations -------------------------------------------------------


@pytest.fixture
def sim_server() -> Iterator[SimServer]:
    with running_sim(bookmark_interval_s=0.5) as server:
        yield server


@pytest.fixture
def settings(sim_server: SimServer, tmp_path: Path) -> Settings:
    base = make_settings(tmp_path, multiline_timeout_s=0.3)
    kube = KubeSettings(kubeconfig=str(kubeconfig_for(sim_server, tmp_path)), backoff_initial_s=0.05,
                        backoff_max_s=0.2)
    return base.model_copy(update={"kube": kube})


@pytest.fixture
async def enricher(settings: Settings) -> AsyncIterator[Enricher]:
    client = await KubeClient.create(settings.kube)
    e = Enricher(client, settings, node_name=NODE)
    task = asyncio.create_task(e.run())
    await asyncio.wait_for(e.synced.wait(), 10)
    yield e
    task.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await task
    await client.close()


def create_pod(server: SimServer, name: str, annotations: dict[str, str] | None = None) -> dict[str, Any]:
    body = pod(name, annotations=annotations)
    body["metadata"].pop("uid")
    return server.cluster.create("pods", body)


async def wait_cached(e: Enricher, uid: str) -> None:
    await eventually(lambda: e.pods is not None and e.pods.get(uid) is not None, within=10)


async def test_annotation_patterns_stall_nothing_and_refused_ones_are_reported_once(
        tmp_path: Path, sim_server: SimServer, settings: Settings, enricher: Enricher,
        caplog: pytest.LogCaptureFixture) -> None:
    annotation = "kubestream.io/multiline-start"
    greedy = create_pod(sim_server, "greedy-0", {annotation: "(a+)+$"})
    refused = create_pod(sim_server, "refused-0", {annotation: r"^(\w+) \1"})  # a backreference
    other = create_pod(sim_server, "other-0")
    for p in (greedy, refused, other):
        await wait_cached(enricher, p["metadata"]["uid"])
    uids = {p["metadata"]["name"]: p["metadata"]["uid"] for p in (greedy, refused, other)}
    write_cri(log_file(tmp_path, "default", "greedy-0", uids["greedy-0"]), *[("F", GREEDY)] * 3)
    # Two files of the refused container (a restart): still one warning, one count.
    for restart in (0, 1):
        write_cri(log_file(tmp_path, "default", "refused-0", uids["refused-0"], restart),
                  ("F", f"run{restart} run{restart}"), ("F", "  not a continuation here"))
    write_cri(log_file(tmp_path, "default", "other-0", uids["other-0"]), ("F", "one"), ("F", "two"))
    rig = Rig(tmp_path, settings, enricher=enricher)
    caplog.set_level(logging.WARNING, logger="kubestream.sources.logs.container_rules")
    try:
        await rig.start()
        await eventually(lambda: len(messages_of(tmp_path)) >= 9, within=15)
        await asyncio.sleep(0.5)  # past the multi-line timeout: anything held back would be out now
        got = {name: sorted(messages_of(tmp_path, uid)) for name, uid in uids.items()}
    finally:
        await rig.stop()
    assert got == {"greedy-0": [GREEDY] * 3,
                   "refused-0": ["  not a continuation here"] * 2 + ["run0 run0", "run1 run1"],
                   "other-0": ["one", "two"]}
    warnings = [r for r in caplog.records if "refused" in r.getMessage()]
    assert len(warnings) == 1 and "refused-0" in warnings[0].getMessage() and "\n" not in warnings[0].getMessage()
    assert rig.metrics.registry.get_sample_value(
        "kubestream_patterns_rejected_total", {"origin": "annotation"}) == 1
