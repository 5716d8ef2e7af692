"""The real agent process with two destinations, the file archive and an OTLP receiver in this
test: the OTLP stream holds every archived record (matched by ``log.record.uid``, which the
archive record's identity determines) across kill -9, a 503 outage and a dropped connection; a
dead OTLP destination delays only itself, the agent's memory stays bounded, and it catches up
completely when the receiver is back (``on_full: block``: nothing is lost)."""

from __future__ import annotations

import asyncio
import random
import threading
import time
from collections import Counter
from pathlib import Path
from typing import Any

import pytest
import yaml
from aiohttp import web
from tests.agent.harness import (
    REMOVE_AFTER_S,
    AgentProcess,
    free_port,
    make_workload,
    occurrences_by_uid,
    read_archive,
    scrape,
    wait_caught_up,
    write_config,
)
from tests.logs.logs_source_support import archive_keys
from tests.logs.logs_source_support import assert_exactly_once as assert_lines_exactly_once
from tests.outputs.outputs_support import attrs, decode_request

from kubestream.pipeline.encode.otlp import UID_ATTRIBUTE, event_uid
from kubestream.sim.nodes.logfiles import NodeLogConfig, NodeLogWriter, extract_seqs
from kubestream.sim.server import SimConfig, SimServer


@pytest.fixture
def sim() -> Any:
    server = SimServer(SimConfig())
    server.start()
    try:
        yield server
    finally:
        server.stop()


class ThreadedReceiver:
    """An OTLP/HTTP receiver on 127.0.0.1 in its own thread and event loop. It answers
    ``status`` (200 unless told otherwise), drops the next ``drop`` connections without an
    answer, and can be stopped and started again on the same port (connections refused)."""

    def __init__(self) -> None:
        self.port = free_port()
        self.status = 200
        self.drop = 0
        self.uids: list[str] = []
        """``log.record.uid`` of every record in a request answered 200, in arrival order."""
        self.lines: dict[str, set[LineKey]] = {}
        """For log lines: uid → the (pod uid, container, stream, seq) it was sent with."""
        self.answered: Counter[int] = Counter()
        self.dropped = 0
        self._lock = threading.Lock()
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, daemon=True)
        self._thread.start()
        self._runner: web.AppRunner | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/v1/logs"

    async def _handle(self, request: web.Request) -> web.StreamResponse:
        body = await request.read()
        with self._lock:
            if self.drop > 0:
                self.drop -= 1
                self.dropped += 1
                assert request.transport is not None
                request.transport.abort()
                return web.Response(status=200)
            status = self.status
            self.answered[status] += 1
            if status == 200:
                message = decode_request(body, dict(request.headers))
                for resource_logs in message.resource_logs:
                    resource = attrs(resource_logs.resource)
                    for scope_logs in resource_logs.scope_logs:
                        for log_record in scope_logs.log_records:
                            record = attrs(log_record)
                            uid = record[UID_ATTRIBUTE]
                            self.uids.append(uid)
                            if "log.iostream" in record:
                                self.lines.setdefault(uid, set()).add(_line_key(resource, record, log_record))
        if status == 200:
            return web.Response(status=200, content_type="application/x-protobuf", body=b"")
        return web.Response(status=status, headers={"Retry-After": "0"})

    async def _start(self) -> None:
        app = web.Application(client_max_size=64 << 20)
        app.router.add_post("/v1/logs", self._handle)
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        await web.TCPSite(self._runner, "127.0.0.1", self.port, reuse_address=True).start()

    async def _stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    def start(self) -> ThreadedReceiver:
        asyncio.run_coroutine_threadsafe(self._start(), self._loop).result(10)
        return self

    def stop(self) -> None:
        asyncio.run_coroutine_threadsafe(self._stop(), self._loop).result(10)

    def close(self) -> None:
        self.stop()
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(5)

    def received(self) -> list[str]:
        with self._lock:
            return list(self.uids)


LineKey = tuple[str, str, str, int]


def _line_key(resource: dict[str, Any], record: dict[str, Any], log_record: Any) -> LineKey:
    """A streamed line's identity as the node log writer's ledger has it: pod uid, container,
    stream and the sequence number the writer put in the line."""
    body = log_record.body
    data = body.bytes_value if body.WhichOneof("value") == "bytes_value" else body.string_value.encode(
        "utf-8", "surrogateescape")
    seqs = extract_seqs(data)
    assert len(seqs) == 1, data[:200]
    return (resource["k8s.pod.uid"], resource["k8s.container.name"], record["log.iostream"], seqs[0])


@pytest.fixture
def otlp_receiver() -> Any:
    server = ThreadedReceiver().start()
    try:
        yield server
    finally:
        server.close()


def _config(tmp_path: Path, sim: SimServer, receiver: ThreadedReceiver, *, port: int = 0, node: str | None = None,
            **otlp_destination: Any) -> Path:
    sections: dict[str, dict[str, Any]] = {"batch": {"max_records": 50, "max_age_s": 0.3}}
    streams = ["events"]
    if node is not None:
        sections["logs"] = {"enabled": True, "node_name": node, "pods_dir": str(tmp_path / "pods"),
                            "containers_dir": str(tmp_path / "containers"), "sweep_interval_s": 1.0}
        streams.append("logs")
    config = write_config(tmp_path, sim, **sections)
    document = yaml.safe_load(config.read_text())
    del document["sink"]
    document["server"]["port"] = port
    document["sinks"] = [
        {"name": "archive", "type": "file", "stream_uid": "e2e", "streams": list(streams),
         "file": {"dir": str(tmp_path / "archive")}},
        {"name": "otlp", "type": "otlp", "streams": list(streams), "retry_initial_s": 0.1, "retry_max_s": 1.0,
         "otlp": {"endpoint": receiver.url}, **otlp_destination},
    ]
    config.write_text(yaml.safe_dump(document))
    return config


def _archived_events(archive: Path) -> list[dict[str, Any]]:
    return [record for record in read_archive(archive) if record["kind"] == "event"]


def _archived_lines(archive: Path) -> list[dict[str, Any]]:
    return [record for record in read_archive(archive) if record["kind"] == "log"]


def _expected_uids(archive: Path) -> Counter[str]:
    """The ``log.record.uid`` of every archived event, computed from the archive record as the
    encoder does (the agent encodes with the cluster name it resolved, which the record carries)."""
    return Counter(event_uid(record, record.get("cluster")) for record in _archived_events(archive))


def _assert_same_lines(archive: Path, receiver: ThreadedReceiver) -> tuple[int, int]:
    """The OTLP stream holds every archived log line: each uid always carries the same line
    (stable ids), and the distinct uids are exactly the archived lines, once each; (lines, duplicates)."""
    with receiver._lock:
        lines = {uid: set(keys) for uid, keys in receiver.lines.items()}
        uids = Counter(uid for uid in receiver.uids if uid in lines)
    unstable = {uid: keys for uid, keys in lines.items() if len(keys) != 1}
    assert not unstable, f"{len(unstable)} uids sent with different lines, e.g. {list(unstable.items())[:2]}"
    streamed: Counter[LineKey] = Counter(next(iter(keys)) for keys in lines.values())
    archived = archive_keys(_archived_lines(archive))
    duplicates = sum(n - 1 for n in uids.values())
    twice = {k: n for k, n in streamed.items() if n > 1}
    assert not twice, f"{len(twice)} lines streamed under two uids, e.g. {list(twice.items())[:3]}"
    assert set(streamed) == set(archived), (
        f"{len(set(archived) - set(streamed))} archived lines never streamed, "
        f"{len(set(streamed) - set(archived))} streamed lines not archived; "
        f"{len(archived)} archived, {sum(uids.values())} streamed, {duplicates} duplicates (same uid)")
    return len(archived), duplicates


def _wait_streamed(receiver: ThreadedReceiver, want: Counter[str], timeout: float) -> set[str]:
    """Poll until every uid of ``want`` has arrived; the missing ones."""
    deadline = time.monotonic() + timeout
    while True:
        missing = set(want) - set(receiver.received())
        if not missing or time.monotonic() > deadline:
            return missing
        time.sleep(0.25)


def _assert_same_records(archive: Path, receiver: ThreadedReceiver) -> tuple[int, int]:
    """Every archived record is in the OTLP stream, nothing else is, and repeats carry the
    uid of a record sent before (at least once, stable ids); (records, duplicates)."""
    want = _expected_uids(archive)
    assert all(n == 1 for n in want.values()), "the archive holds an event twice"
    with receiver._lock:
        got = Counter(uid for uid in receiver.uids if uid not in receiver.lines)
    missing = set(want) - set(got)
    extra = set(got) - set(want)
    duplicates = sum(n - 1 for n in got.values())
    assert not missing and not extra, (
        f"{len(missing)} archived records never streamed (e.g. {sorted(missing)[:3]}), "
        f"{len(extra)} streamed records not in the archive (e.g. {sorted(extra)[:3]}); "
        f"{len(want)} archived, {sum(got.values())} streamed, {duplicates} duplicates (same uid)")
    return len(want), duplicates


def test_archive_and_otlp_hold_the_same_records_across_kill_9_and_an_outage(
        sim: SimServer, otlp_receiver: ThreadedReceiver, tmp_path: Path) -> None:
    rng = random.Random(20261203)
    workload = make_workload(sim, seed=11, rate=200)
    workload.step()
    node = workload.node_names[0]
    writer = NodeLogWriter(
        NodeLogConfig(root=tmp_path / "pods", containers_dir=tmp_path / "containers", node=node, seed=11,
                      lines_per_s=300, rotate_bytes=256 * 1024, max_files=3, remove_after_s=REMOVE_AFTER_S,
                      sync_every_s=0.3),
        cluster=sim.cluster)
    config = _config(tmp_path, sim, otlp_receiver, node=node)
    workload.start()
    writer.start()
    try:
        for round_ in range(7):
            if round_ == 2:
                otlp_receiver.status = 503  # an outage across two kills
            elif round_ == 4:
                otlp_receiver.status = 200
                otlp_receiver.drop = 1  # and one connection dropped without an answer
            agent = AgentProcess(config, tmp_path).start()
            agent.wait_ready()
            time.sleep(rng.uniform(0.3, 1.5))
            agent.kill()
    finally:
        workload.stop()
        writer.stop()
    otlp_receiver.status = 200
    agent = AgentProcess(config, tmp_path).start()
    agent.wait_ready()
    expected_lines = writer.ledger.keys()
    deadline = time.monotonic() + 40
    while (time.monotonic() < deadline
           and len(archive_keys(_archived_lines(tmp_path / "archive"))) < len(expected_lines)):
        time.sleep(0.3)
    deadline = time.monotonic() + 40
    while (time.monotonic() < deadline
           and sum(occurrences_by_uid(_archived_events(tmp_path / "archive")).values()) < workload.ledger.total()):
        time.sleep(0.3)
    missing = _wait_streamed(otlp_receiver, _expected_uids(tmp_path / "archive"), timeout=40)
    deadline = time.monotonic() + 40
    while time.monotonic() < deadline and len(otlp_receiver.lines) < len(expected_lines):
        time.sleep(0.3)
    time.sleep(1.0)
    assert agent.terminate() == 0, agent.log()
    events = _archived_events(tmp_path / "archive")
    assert sum(occurrences_by_uid(events).values()) == workload.ledger.total()
    assert len(expected_lines) > 500
    assert_lines_exactly_once(archive_keys(_archived_lines(tmp_path / "archive")), expected_lines)
    assert otlp_receiver.answered[503] > 0, "the outage was never seen"
    assert otlp_receiver.dropped == 1, "the dropped connection was never seen"
    records, duplicates = _assert_same_records(tmp_path / "archive", otlp_receiver)
    lines, line_duplicates = _assert_same_lines(tmp_path / "archive", otlp_receiver)
    assert not missing
    print(f"{records} events and {lines} log lines archived and streamed; duplicates (same uid): "
          f"{duplicates} events, {line_duplicates} lines; answers {dict(otlp_receiver.answered)}")


def _rss_kib(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    raise AssertionError("no VmRSS")


def _metric(samples: dict[tuple[str, tuple[tuple[str, str], ...]], float], name: str, **labels: str) -> float:
    return sum(v for (n, ls), v in samples.items() if n == name and all((k, v2) in ls for k, v2 in labels.items()))


def _dead_otlp_while_the_archive_keeps_up(sim: SimServer, receiver: ThreadedReceiver, tmp_path: Path,
                                          outage_s: float) -> None:
    """``on_full: block`` with a ``max_pending_bytes`` the outage does not reach: pending parts
    wait on disk, so the agent's RSS does not grow with them, and nothing is lost."""
    port = free_port()
    workload = make_workload(sim, seed=17, rate=200)
    config = _config(tmp_path, sim, receiver, port=port, on_full="block", max_pending_bytes=512 << 20)
    agent = AgentProcess(config, tmp_path).start()
    agent.wait_ready()
    assert agent.proc is not None
    pid = agent.proc.pid
    receiver.stop()  # connections refused from now on
    workload.start()
    started = time.monotonic()
    rss: list[int] = []
    archive_lag: list[float] = []
    otlp_lag: list[float] = []
    try:
        time.sleep(3.0)  # warm up: the first batches, the caches
        baseline = _rss_kib(pid)
        while time.monotonic() - started < outage_s:
            time.sleep(1.0)
            samples = scrape(port)
            archive_lag.append(_metric(samples, "kubestream_destination_oldest_pending_seconds",
                                       destination="archive"))
            otlp_lag.append(_metric(samples, "kubestream_destination_oldest_pending_seconds", destination="otlp"))
            rss.append(_rss_kib(pid))
    finally:
        workload.stop()
    wait_caught_up(tmp_path / "archive", workload.ledger, timeout=20)
    summary = (f"archive lag max {max(archive_lag):.2f}s, otlp lag last {otlp_lag[-1]:.1f}s, "
               f"RSS {baseline} -> max {max(rss)} KiB")
    assert max(archive_lag) < 3.0, summary
    assert otlp_lag[-1] > outage_s - 6.0, summary
    assert otlp_lag[-1] > otlp_lag[0], summary
    assert max(rss) < baseline + 64 * 1024, summary
    receiver.start()
    missing = _wait_streamed(receiver, _expected_uids(tmp_path / "archive"), timeout=60)
    samples = scrape(port)
    assert agent.terminate() == 0, agent.log()
    assert not missing, (len(missing), summary)
    records, duplicates = _assert_same_records(tmp_path / "archive", receiver)
    assert _metric(samples, "kubestream_destination_dropped_records_total", destination="otlp") == 0
    print(f"{summary}; {records} records caught up, {duplicates} duplicates")


def test_a_dead_otlp_destination_delays_only_itself(sim: SimServer, otlp_receiver: ThreadedReceiver,
                                                    tmp_path: Path) -> None:
    _dead_otlp_while_the_archive_keeps_up(sim, otlp_receiver, tmp_path, outage_s=20.0)


@pytest.mark.soak
@pytest.mark.timeout(900)
def test_a_dead_otlp_destination_for_five_minutes(sim: SimServer, otlp_receiver: ThreadedReceiver,
                                                  tmp_path: Path) -> None:
    _dead_otlp_while_the_archive_keeps_up(sim, otlp_receiver, tmp_path, outage_s=300.0)
