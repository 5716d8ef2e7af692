"""Two destinations of one agent process: an S3 destination behind the fault proxy (a moto
server that stops answering) and a file destination. While S3 is down the file destination
keeps delivering with a low lag; when S3 is back it catches up, and both hold every
occurrence exactly once."""

from __future__ import annotations

import asyncio
import gzip
import time
from pathlib import Path
from typing import Any

import orjson
import pytest
import yaml
from tests.agent.harness import (
    AgentProcess,
    assert_exactly_once,
    free_port,
    make_workload,
    occurrences_by_uid,
    read_archive,
    scrape,
    write_config,
)

from conftest import ADMIN_KEY, REGION, FaultProxy, MotoServer
from kubestream.sim.server import SimConfig, SimServer


@pytest.fixture
def sim() -> Any:
    server = SimServer(SimConfig())
    server.start()
    try:
        yield server
    finally:
        server.stop()


def _archived(server: MotoServer, bucket: str) -> list[dict[str, Any]]:
    records = []
    for key in server.keys(bucket, "s3-copy/events"):
        records += [orjson.loads(line) for line in gzip.decompress(server.read(bucket, key)).splitlines() if line]
    return records


def _metric(port: int, name: str, destination: str) -> float:
    return sum(v for (n, labels), v in scrape(port).items()
               if n == name and ("destination", destination) in labels)


async def _eventually(check: Any, within: float, what: str) -> None:
    deadline = time.monotonic() + within
    while not await asyncio.to_thread(check):
        assert time.monotonic() < deadline, what
        await asyncio.sleep(0.3)


async def test_an_s3_outage_delays_only_the_s3_destination(
    sim: SimServer, tmp_path: Path, moto_server: MotoServer, bucket: str, fault_proxy: FaultProxy
) -> None:
    port = free_port()
    config = write_config(tmp_path, sim, batch={"max_records": 100, "max_age_s": 0.3}, server={"port": port},
                          shutdown={"timeout_s": 3})
    document = yaml.safe_load(config.read_text())
    del document["sink"]
    document["sinks"] = [
        {"name": "s3-copy", "type": "s3", "prefix": "s3-copy", "stream_uid": "e2e",
         "retry_initial_s": 0.2, "retry_max_s": 1.0, "streams": ["events"],
         "s3": {"bucket": bucket, "endpoint_url": fault_proxy.endpoint, "region": REGION,
                "access_key_id": ADMIN_KEY, "secret_access_key": ADMIN_KEY, "attempt_timeout_s": 3.0}},
        {"name": "files", "type": "file", "stream_uid": "e2e", "file": {"dir": str(tmp_path / "files")}},
    ]
    config.write_text(yaml.safe_dump(document))
    workload = make_workload(sim, seed=29, rate=200)
    agent = AgentProcess(config, tmp_path).start()
    await asyncio.to_thread(agent.wait_ready)
    await fault_proxy.go_down()
    await asyncio.to_thread(workload.run_for, 2.5)
    total = workload.ledger.total()
    await _eventually(lambda: sum(occurrences_by_uid(read_archive(tmp_path / "files")).values()) >= total, 20,
                      f"the file destination fell behind:\n{agent.log()}")
    await asyncio.sleep(1.0)
    assert await asyncio.to_thread(_metric, port, "kubestream_destination_oldest_pending_seconds", "files") < 1.0
    assert await asyncio.to_thread(_metric, port, "kubestream_destination_oldest_pending_seconds", "s3-copy") > 1.0
    assert await asyncio.to_thread(_metric, port, "kubestream_destination_reachable", "s3-copy") == 0
    assert _archived(moto_server, bucket) == []
    await fault_proxy.start()  # S3 is back on the same address
    workload.stop()
    total = workload.ledger.total()
    await _eventually(lambda: sum(occurrences_by_uid(_archived(moto_server, bucket)).values()) >= total, 60,
                      f"the S3 destination never caught up:\n{agent.log()}")
    assert await asyncio.to_thread(agent.terminate) == 0, agent.log()
    assert_exactly_once(_archived(moto_server, bucket), workload.ledger)
    assert_exactly_once(read_archive(tmp_path / "files"), workload.ledger)
