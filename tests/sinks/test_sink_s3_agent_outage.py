"""The real agent process and the real moto S3 server behind the fault proxy: a start during an
S3 outage, with batches in the spool, keeps running (not ready, ``sink_reachable`` 0) and
delivers everything exactly once when S3 is back; wrong credentials still exit 3 with one line.
Also: an object S3 refuses for good (413/EntityTooLarge) becomes a dead letter, the rest goes on."""

from __future__ import annotations

import asyncio
import gzip
import socket
import sqlite3
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import orjson
import pytest
from prometheus_client.parser import text_string_to_metric_families
from tests.agent.harness import (
    AgentProcess,
    assert_exactly_once,
    make_workload,
    occurrences_by_uid,
    write_config,
)

from conftest import ADMIN_KEY, REGION, AuthServer, Fault, FaultProxy, MotoServer, s3_settings
from kubestream.config.settings import SinkSettings
from kubestream.obs.metrics import Metrics
from kubestream.pipeline.delivery import Delivery
from kubestream.pipeline.spool import Spool
from kubestream.sim.server import SimConfig, SimServer
from kubestream.sinks.s3 import S3Sink
from kubestream.state.store import StateStore


@pytest.fixture
def sim() -> Iterator[SimServer]:
    server = SimServer(SimConfig())
    server.start()
    try:
        yield server
    finally:
        server.stop()


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def status(port: int, path: str) -> int:
    try:
        return int(urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=5).status)
    except urllib.error.HTTPError as exc:
        return exc.code


def gauge(port: int, name: str, **labels: str) -> float | None:
    body = urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5).read().decode()
    for family in text_string_to_metric_families(body):
        for sample in family.samples:
            if sample.name == name and sample.labels == labels:
                return float(sample.value)
    return None


def s3_config(tmp_path: Path, sim: SimServer, endpoint: str, bucket: str, port: int, **s3: Any) -> Path:
    values = {"bucket": bucket, "endpoint_url": endpoint, "region": REGION, "access_key_id": ADMIN_KEY,
              "secret_access_key": ADMIN_KEY, "attempt_timeout_s": 3.0, **s3}
    return write_config(tmp_path, sim, sink={"type": "s3", "s3": values, "retry_initial_s": 0.2, "retry_max_s": 1.0},
                        batch={"max_records": 100, "max_age_s": 0.3}, server={"port": port},
                        shutdown={"timeout_s": 3})


def archived(server: MotoServer, bucket: str) -> list[dict[str, Any]]:
    records = []
    for key in server.keys(bucket, "events"):
        records += [orjson.loads(line) for line in gzip.decompress(server.read(bucket, key)).splitlines() if line]
    return records


def spool_entries(tmp_path: Path) -> int:
    with sqlite3.connect(tmp_path / "state" / "state.db") as conn:
        return int(conn.execute("SELECT count(*) FROM spool_entries").fetchone()[0])


async def eventually(check: Any, within: float, what: str) -> None:
    deadline = time.monotonic() + within
    while not await asyncio.to_thread(check):
        assert time.monotonic() < deadline, what
        await asyncio.sleep(0.3)


async def test_a_start_during_an_s3_outage_waits_and_then_delivers_exactly_once(
    sim: SimServer, tmp_path: Path, moto_server: MotoServer, bucket: str, fault_proxy: FaultProxy
) -> None:
    port = free_port()
    config = s3_config(tmp_path, sim, fault_proxy.endpoint, bucket, port)
    workload = make_workload(sim, seed=17, rate=200)
    agent = AgentProcess(config, tmp_path).start()
    await asyncio.to_thread(agent.wait_ready)
    await asyncio.to_thread(workload.run_for, 1.0)
    await fault_proxy.go_down()  # the outage starts: batches pile up in the spool
    await asyncio.to_thread(workload.run_for, 1.5)
    await eventually(lambda: spool_entries(tmp_path) > 0 or agent.proc is None, 10, "nothing in the spool")
    agent.kill()
    assert spool_entries(tmp_path) > 0
    for _ in range(3):  # restarts during the outage: each keeps running (it used to exit 3)
        agent.start()
        await asyncio.to_thread(agent.wait_ready)
        await asyncio.to_thread(workload.run_for, 0.5)
        await eventually(lambda: gauge(port, "kubestream_sink_reachable", sink="s3") == 0, 10, "reachable != 0")
        assert agent.proc is not None and agent.proc.poll() is None, agent.log()
        assert await asyncio.to_thread(status, port, "/readyz") == 503
        agent.kill()
    agent.start()
    await asyncio.to_thread(agent.wait_ready)
    workload.stop()
    await asyncio.sleep(1.0)
    assert agent.proc is not None and agent.proc.poll() is None, agent.log()
    await fault_proxy.start()  # S3 is back on the same address
    total = workload.ledger.total()
    await eventually(lambda: sum(occurrences_by_uid(archived(moto_server, bucket)).values()) >= total, 60,
                     f"archive never caught up:\n{agent.log()}")
    assert_exactly_once(archived(moto_server, bucket), workload.ledger)
    await eventually(lambda: status(port, "/readyz") == 200, 20, "never ready again")
    assert gauge(port, "kubestream_sink_reachable", sink="s3") == 1
    assert await asyncio.to_thread(agent.terminate) == 0, agent.log()
    assert "sink not reachable at start" in agent.log() and "Traceback" not in agent.log()


async def test_wrong_credentials_still_exit_3_with_one_line(
    sim: SimServer, tmp_path: Path, moto_auth_server: AuthServer
) -> None:
    config = s3_config(tmp_path, sim, moto_auth_server.server.endpoint, moto_auth_server.bucket, free_port(),
                       access_key_id="AKIAUNKNOWNKEY000000", secret_access_key="wrong")
    agent = AgentProcess(config, tmp_path).start()
    assert agent.proc is not None
    assert await asyncio.to_thread(agent.proc.wait, 60) == 3
    lines = [line for line in agent.log().splitlines() if "sink unusable" in line]
    assert len(lines) == 1 and "InvalidAccessKeyId" in lines[0], agent.log()
    assert "Traceback" not in agent.log()


async def test_an_object_s3_refuses_for_good_becomes_a_dead_letter(
    tmp_path: Path, moto_server: MotoServer, bucket: str, fault_proxy: FaultProxy
) -> None:
    state = StateStore(tmp_path / "state.db")
    try:
        metrics = Metrics()
        spool = Spool(tmp_path / "spool", state, max_bytes=1 << 20)
        for n in (1, 2, 3):
            await spool.commit(f"arch/events/dt=2024-05-01/hour=10/u-{n}-{n}.ndjson.gz", b"batch %d" % n, [],
                               stream="events", records=1)
        fault_proxy.fault = Fault(status=400, code="EntityTooLarge", remaining=1)
        sink = S3Sink(s3_settings(fault_proxy.endpoint, bucket), prefix="arch", metrics=metrics)
        delivery = Delivery(spool, sink, settings=SinkSettings(prefix="arch", retry_initial_s=0.01), metrics=metrics)
        assert await delivery.drain(20.0)
        assert moto_server.keys(bucket) == [
            "arch/dead-letter/events/dt=2024-05-01/hour=10/u-1-1.ndjson.gz",
            "arch/events/dt=2024-05-01/hour=10/u-2-2.ndjson.gz",
            "arch/events/dt=2024-05-01/hour=10/u-3-3.ndjson.gz",
        ]
        assert moto_server.read(bucket, "arch/dead-letter/events/dt=2024-05-01/hour=10/u-1-1.ndjson.gz") == b"batch 1"
        assert metrics.registry.get_sample_value("kubestream_dead_letters_total",
                                                 {"stream": "events", "reason": "sink"}) == 1
        await sink.close()
    finally:
        state.close()
