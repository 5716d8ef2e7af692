"""Wiring of one agent process: the stages of the data's walk, started together and stopped in
an order that loses nothing.

Shutdown order (SIGTERM/SIGINT): stop the sources (no new records) → close the open batch into
the spool (state commits with it) → let the delivery worker drain the spool within the remaining
bound → close connections. Whatever is not delivered by then stays registered in the spool and
is delivered under the same key at the next start, so a short bound costs latency, never data.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import signal
import time
from collections.abc import Coroutine
from pathlib import Path
from typing import Any

from kubestream.agent.leader import LeaderElector, LeadershipLost
from kubestream.agent.takeover import rebuild_from_archive, wipe_local_state
from kubestream.config.settings import Settings
from kubestream.enrich import Enricher
from kubestream.errors import ConfigError, KubestreamError, SinkFatalError
from kubestream.kube.client import KubeClient
from kubestream.obs.metrics import Metrics
from kubestream.obs.server import ObsServer
from kubestream.pipeline.batcher import Pipeline
from kubestream.pipeline.delivery import Delivery
from kubestream.pipeline.spool import Spool
from kubestream.sinks.base import Sink, SinkReader
from kubestream.sinks.factory import make_sink
from kubestream.sources.events import EventsSource
from kubestream.sources.logs.chunk import make_log_encoder
from kubestream.sources.logs.source import LogsSource
from kubestream.state.store import StateStore

log = logging.getLogger("kubestream.agent")

EXIT_OK = 0
EXIT_FAILED = 1
EXIT_SINK_UNUSABLE = 3


class Agent:
    """One kubestream agent: sources (events, logs) → enrichment → pipelines → spool → sink."""

    def __init__(self, settings: Settings, *, metrics: Metrics | None = None,
                 ready_file: Path | None = None) -> None:
        self.settings = settings
        self.metrics = metrics or Metrics()
        self.ready_file = ready_file
        self.stopping = asyncio.Event()
        self._sink: Sink | None = None
        self._sources: list[EventsSource | LogsSource] = []
        self._enricher: Enricher | None = None
        self._sink_ok = True
        self._elector: LeaderElector | None = None
        self._leading = False
        self._lost_leadership = False

    def request_stop(self) -> None:
        """Begin a graceful shutdown (signal handlers and the demo call this)."""
        self.stopping.set()

    def readiness(self) -> tuple[bool, str]:
        """/readyz: caches synced and the sink writable (a standby replica is ready to take over)."""
        if self._elector is not None and not self._leading:
            return True, "standby"
        if not self._sources:
            return False, "starting"
        for source in self._sources:
            if not source.synced.is_set():
                return False, f"{type(source).__name__} not synced"
        if self._enricher is not None and not self._enricher.synced.is_set():
            return False, "enrichment caches not synced"
        if not self._sink_ok:
            return False, "sink not writable"
        return True, "ready"

    async def run(self) -> int:
        """Run until ``request_stop`` (or a fatal error); return the process exit code."""
        s = self.settings
        if s.leader_election.enabled and (s.encoding.format == "protobuf" and s.encoding.protobuf_message == "k8stream"):
            raise ConfigError("leader election needs an archive it can read back; the k8stream protobuf "
                              "message drops event uids and counts", key="encoding.protobuf_message")
        if s.leader_election.enabled and s.logs.enabled:
            raise ConfigError("leader election is for the events collector; node agents (logs.enabled) all run",
                              key="leader_election.enabled")
        if not (s.events.enabled or s.logs.enabled):
            raise ConfigError("nothing to do: enable events, logs or both", key="events.enabled")
        client = await KubeClient.create(s.kube, metrics=self.metrics)
        obs = ObsServer(s.server, self.metrics, self.readiness) if s.server.enabled else None
        try:
            if obs is not None:
                await obs.start()
            if s.leader_election.enabled:
                self._elector = LeaderElector(client, s.leader_election, s.kube, metrics=self.metrics)
                if not await self._until_leader(self._elector):
                    return EXIT_OK  # asked to stop while standing by
                # The archive is the truth after a takeover: drop what this replica knew.
                wipe_local_state(s)
            s.state.dir.mkdir(parents=True, exist_ok=True)
            state = StateStore(s.state.dir / "state.db")
            try:
                return await self._run_with_state(client, state)
            finally:
                state.close()
        finally:
            if obs is not None:
                await obs.stop()
            await client.close()

    async def _until_leader(self, elector: LeaderElector) -> bool:
        acquire = asyncio.create_task(elector.acquire(), name="acquire-lease")
        stop_wait = asyncio.create_task(self.stopping.wait(), name="stop-wait")
        done, _ = await asyncio.wait([acquire, stop_wait], return_when=asyncio.FIRST_COMPLETED)
        if acquire in done:
            stop_wait.cancel()
            acquire.result()
            self._leading = True
            return True
        await _cancel(acquire)
        return False

    async def _run_with_state(self, client: KubeClient, state: StateStore) -> int:
        s = self.settings
        spool = Spool(s.spool_dir, state, max_bytes=s.spool.max_bytes, metrics=self.metrics)
        spool.recover()
        sink = make_sink(s, self.metrics)
        self._sink = sink
        try:
            await sink.check()
        except SinkFatalError as exc:
            log.error("sink unusable: %s", exc)
            await sink.close()
            return EXIT_SINK_UNUSABLE
        try:
            if self._elector is not None:
                if not isinstance(sink, SinkReader):
                    raise ConfigError(f"the {sink.name} sink cannot be read back, which leader election needs",
                                      key="leader_election.enabled")
                await rebuild_from_archive(s, sink, state)
            return await self._run_stages(client, state, spool, sink)
        finally:
            await sink.close()

    async def _run_stages(self, client: KubeClient, state: StateStore, spool: Spool, sink: Sink) -> int:
        s = self.settings
        delivery = Delivery(spool, sink, settings=s.sink, metrics=self.metrics)
        # A node agent (logs only) caches only its node's pods; an events collector needs all.
        node_name = self._node_name() if s.logs.enabled else None
        enricher = None
        if s.enrich.enabled:
            enricher = Enricher(client, s, node_name=None if s.events.enabled else node_name, metrics=self.metrics)
        self._enricher = enricher

        background: dict[str, asyncio.Task[Any]] = {}
        pipelines: list[Pipeline] = []

        def start(name: str, coro: Coroutine[Any, Any, Any]) -> None:
            background[name] = asyncio.create_task(coro, name=name)

        if enricher is not None:
            start("enricher", enricher.run())
        if s.events.enabled:
            events_pipeline = Pipeline("events", s, state, spool, metrics=self.metrics)
            pipelines.append(events_pipeline)
            source = EventsSource(client, s, state, events_pipeline, enricher, metrics=self.metrics)
            self._sources.append(source)
            start("pipeline-events", events_pipeline.run())
            start("source-events", source.run())
        if s.logs.enabled:
            assert node_name is not None
            logs_pipeline = Pipeline("logs", s, state, spool, metrics=self.metrics, encoder=make_log_encoder(s))
            pipelines.append(logs_pipeline)
            logs = LogsSource(s, state, logs_pipeline, enricher, node_name=node_name, metrics=self.metrics)
            self._sources.append(logs)
            start("pipeline-logs", logs_pipeline.run())
            start("source-logs", logs.run())
        start("delivery", delivery.run())
        if self._elector is not None:
            start("lease", self._elector.hold())
        if self.ready_file is not None:
            start("ready-file", self._write_ready_file())

        exit_code = await self._wait_for_stop_or_failure(background)
        deadline = time.monotonic() + s.shutdown.timeout_s
        exit_code = await self._shutdown(background, pipelines, delivery, deadline, exit_code)
        return exit_code

    def _node_name(self) -> str:
        name = self.settings.logs.node_name or os.environ.get("NODE_NAME")
        if not name:
            raise ConfigError("the node agent needs its node's name: set logs.node_name or NODE_NAME",
                              key="logs.node_name")
        return name

    async def _wait_for_stop_or_failure(self, tasks: dict[str, asyncio.Task[Any]]) -> int:
        stop_wait = asyncio.create_task(self.stopping.wait(), name="stop-wait")
        try:
            done, _ = await asyncio.wait([stop_wait, *tasks.values()], return_when=asyncio.FIRST_COMPLETED)
        finally:
            stop_wait.cancel()
        for task in done:
            if task is stop_wait or task.cancelled():
                continue
            exc = task.exception()
            if exc is None:
                if task.get_name() == "ready-file":
                    # Finished its one job; keep waiting for a real reason to stop.
                    del tasks["ready-file"]
                    return await self._wait_for_stop_or_failure(tasks)
                log.error("stage %s ended unexpectedly", task.get_name())
                return EXIT_FAILED
            if isinstance(exc, LeadershipLost):
                # Another replica may already be exporting: stop at once, flush nothing.
                self._lost_leadership = True
                log.error("lost leadership (%s); stopping without delivering more", exc)
            elif isinstance(exc, SinkFatalError):
                self._sink_ok = False
                log.error("sink failed permanently: %s", exc)
            elif isinstance(exc, KubestreamError):
                log.error("stage %s failed: %s", task.get_name(), exc)
            else:
                log.error("stage %s crashed", task.get_name(), exc_info=exc)
            return EXIT_FAILED
        return EXIT_OK

    async def _shutdown(self, tasks: dict[str, asyncio.Task[Any]], pipelines: list[Pipeline],
                        delivery: Delivery, deadline: float, exit_code: int) -> int:
        if self._lost_leadership:
            for task in tasks.values():
                await _cancel(task)
            return exit_code
        log.info("shutting down: flushing the open batch and draining the spool")
        # 1. No new records: stop the sources (and the caches feeding them).
        for name in ("source-events", "source-logs", "enricher", "ready-file"):
            await _cancel(tasks.pop(name, None))
        # 2. Close the open batches: spool write + state commit in one step each.
        for pipeline in pipelines:
            await _cancel(tasks.pop(f"pipeline-{pipeline.stream}", None))
            try:
                await asyncio.wait_for(pipeline.flush(), timeout=max(0.1, deadline - time.monotonic()))
            except (TimeoutError, KubestreamError) as exc:
                log.error("could not flush the open %s batch (%s); its records will be read again at the next "
                          "start", pipeline.stream, exc)
                exit_code = exit_code or EXIT_FAILED
        # 3. Deliver what the spool holds, within the bound; the rest waits for the next start.
        delivery_task = tasks.pop("delivery", None)
        if delivery_task is not None and not delivery_task.done():
            await _cancel(delivery_task)
            drained = await delivery.drain(max(0.1, deadline - time.monotonic()))
            if not drained:
                log.warning("spool not fully delivered before the shutdown bound; it will be delivered at the next start")
        for task in tasks.values():
            await _cancel(task)
        if self._elector is not None:
            await self._elector.release()  # the standby takes over now, not a lease duration later
        log.info("stopped")
        return exit_code

    async def _write_ready_file(self) -> None:
        assert self.ready_file is not None
        # Tests and scripts wait for this file: written once the caches have synced.
        if self._enricher is not None:
            await self._enricher.synced.wait()
        for source in self._sources:
            await source.synced.wait()
        self.ready_file.write_text("ready\n")


async def _cancel(task: asyncio.Task[Any] | None) -> None:
    if task is None or task.done():
        return
    task.cancel()
    with contextlib.suppress(asyncio.CancelledError, Exception):
        await task


def run_agent(settings: Settings, *, ready_file: Path | None = None) -> int:
    """Run an agent in this process until SIGTERM/SIGINT; return the exit code."""

    async def main() -> int:
        agent = Agent(settings, ready_file=ready_file)
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, agent.request_stop)
        return await agent.run()

    return asyncio.run(main())
