"""Wiring of one agent process: the stages of the data's walk, started together and stopped in
an order that loses nothing.

Shutdown order (SIGTERM/SIGINT), declared by the stages themselves rather than by task names:
stop every ``Source`` (no new records) and the caches feeding them → flush each source's
pipeline (the open batch into the spool; state commits with it) → every destination's delivery
worker drains its own parts, all at once, within the remaining bound → close connections. Whatever is not delivered by then stays registered in the spool and
is delivered under the same key at the next start, so a short bound costs latency, never data.
The bound holds on every path: when it runs out, a commit still waiting out a full spool disk
gives up (nothing of it registered, its records read again at the next start).

A sink that does not answer at start (an outage) is not fatal: the agent collects into the
spool (bounded by ``spool.max_bytes``), reports not-ready and ``sink_reachable`` 0, and re-checks
the sink with backoff and jitter; only an answer that no wait can change (bad credentials,
missing bucket, access denied) exits ``EXIT_SINK_UNUSABLE``.
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
from kubestream.agent.preflight import log_warnings, preflight
from kubestream.agent.routing import build_routes, pending_limits
from kubestream.agent.stages import Source, StreamSource
from kubestream.config.settings import DestinationSettings, Settings
from kubestream.enrich import Enricher
from kubestream.errors import ConfigError, KubestreamError, SinkFatalError, SinkRetryableError
from kubestream.kube.client import KubeClient
from kubestream.obs.metrics import Metrics
from kubestream.obs.server import ObsServer
from kubestream.pipeline import memory
from kubestream.pipeline.batcher import Pipeline
from kubestream.pipeline.delivery import Delivery
from kubestream.pipeline.spool import Spool
from kubestream.sinks.base import Sink, SinkReader
from kubestream.sinks.factory import make_destination_sink
from kubestream.sources.events import EventsSource
from kubestream.sources.logs.source import LogsSource
from kubestream.state.store import StateStore
from kubestream.util.backoff import Backoff

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
        self._client: KubeClient | None = None
        self._sources: list[Source] = []
        self._enricher: Enricher | None = None
        self._sink_ok = True
        self._delivery: Delivery | None = None
        self._deliveries: list[Delivery] = []
        self._elector: LeaderElector | None = None
        self._leading = False
        self._lost_leadership = False

    def request_stop(self) -> None:
        """Begin a graceful shutdown (signal handlers and the demo call this)."""
        self.stopping.set()

    def readiness(self) -> tuple[bool, str]:
        """/readyz: caches synced and the sink writable (a standby replica is ready to take over)."""
        if self._client is not None and self._client.tls_error:
            return False, self._client.tls_error  # names the host and the reason
        if self._elector is not None and not self._leading:
            return True, "standby"
        if not self._sources:
            return False, "starting"
        for source in self._sources:
            if not source.synced.is_set():
                inner = source.inner if isinstance(source, StreamSource) else source
                return False, f"{type(inner).__name__} not synced"
        if self._enricher is not None and not self._enricher.synced.is_set():
            return False, "enrichment caches not synced"
        if not self._sink_ok:
            return False, "sink not writable"
        for delivery in self._deliveries:
            if not delivery.reachable:
                return False, "sink not reachable" if len(self._deliveries) == 1 else \
                    f"destination {delivery.destination} not reachable"
        return True, "ready"

    async def run(self) -> int:
        """Run until ``request_stop`` (or a fatal error); return the process exit code."""
        s = self.settings
        # Before any worker thread exists: the arena cap applies to threads created afterwards.
        memory.configure(s.memory)
        # The same checks as `kubestream validate`, before anything starts (raises ConfigError).
        log_warnings(await preflight(s))
        client = await KubeClient.create(s.kube, metrics=self.metrics)
        self._client = client
        obs = ObsServer(s.server, self.metrics, self.readiness) if s.server.enabled else None
        try:
            if obs is not None:
                await obs.start()
            if s.leader_election.enabled:
                self._elector = LeaderElector(client, s.leader_election, s.kube, metrics=self.metrics)
                if not await self._until_leader(self._elector):
                    return EXIT_OK  # asked to stop while standing by
                # The archive is the truth after a takeover: drop what this replica knew.
                # (Imported here: reading the archive back loads pyarrow, ~35 MB that a node
                # agent, which never takes over, does not carry.)
                from kubestream.agent.takeover import wipe_local_state

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
        destinations = s.destinations()
        spool = Spool(s.spool_dir, state, max_bytes=s.spool.max_bytes, metrics=self.metrics,
                      limits=pending_limits(s))
        spool.recover(destinations=[d.name for d in destinations])
        built: list[tuple[DestinationSettings, Sink]] = []
        try:
            for destination in destinations:
                built.append((destination, make_destination_sink(destination, self.metrics)))
            return await self._run_with_sinks(client, state, spool, built)
        finally:
            for _, sink in built:
                await sink.close()

    async def _run_with_sinks(self, client: KubeClient, state: StateStore, spool: Spool,
                              built: list[tuple[DestinationSettings, Sink]]) -> int:
        s = self.settings
        deliveries = [Delivery(spool, sink, settings=d, metrics=self.metrics, destination=d.name) for d, sink in built]
        self._deliveries = deliveries
        archive = s.archive_destination()
        archive_index = next((i for i, (d, _) in enumerate(built) if archive is not None and d.name == archive.name),
                             None)
        self._delivery = deliveries[archive_index] if archive_index is not None else deliveries[0]
        self._sink = self._delivery.sink
        unreachable: list[Delivery] = []
        try:
            for delivery in deliveries:
                if not await self._check_sink_at_start(delivery.sink, delivery):
                    unreachable.append(delivery)
            if self._elector is not None and self._delivery in unreachable:
                # A takeover rebuilds its state from the archive: nothing to do before it answers.
                reachable = await self._until_stopped_or(self._wait_for_sink(self._delivery.sink, self._delivery))
                if not reachable:
                    return EXIT_OK
                unreachable.remove(self._delivery)
        except SinkFatalError as exc:
            log.error("sink unusable: %s", exc)
            return EXIT_SINK_UNUSABLE
        if self._elector is not None:
            sink = self._delivery.sink
            if archive is None or not isinstance(sink, SinkReader):
                raise ConfigError(f"the {sink.name} sink cannot be read back, which leader election needs",
                                  key="leader_election.enabled")
            from kubestream.agent.takeover import rebuild_from_archive

            await rebuild_from_archive(s, sink, state)
        return await self._run_stages(client, state, spool, deliveries, unreachable)

    async def _check_sink_at_start(self, sink: Sink, delivery: Delivery) -> bool:
        """True if the sink is writable, False if it does not answer now; ``SinkFatalError`` if
        it answered that it is unusable."""
        try:
            await sink.check()
        except SinkRetryableError as exc:
            delivery.set_reachable(False)
            delivery.usable.clear()
            log.warning("sink not reachable at start (%s); collecting into the spool (at most spool.max_bytes) "
                        "and checking again with backoff", exc)
            return False
        delivery.set_reachable(True)
        return True

    async def _wait_for_sink(self, sink: Sink, delivery: Delivery) -> bool:
        """Check the sink again with backoff and full jitter until it answers; then let the
        delivery worker go. ``SinkFatalError`` if the answer is that it is unusable."""
        own = next((d for d in self.settings.destinations() if d.name == delivery.destination), self.settings.sink)
        backoff = Backoff(own.retry_initial_s, own.retry_max_s, reset_after_s=float("inf"))
        while True:
            await asyncio.sleep(backoff.next_delay())
            try:
                await sink.check()
            except SinkRetryableError as exc:
                log.info("sink still not reachable (%s); check %d", exc, backoff.attempt)
                continue
            log.info("sink %s reachable: delivering the spool", sink.name)
            delivery.set_reachable(True)
            delivery.usable.set()
            return True

    async def _until_stopped_or(self, work: Coroutine[Any, Any, bool]) -> bool:
        """``work``'s result, or False if a stop is requested first."""
        task = asyncio.create_task(work, name="sink-check")
        stop_wait = asyncio.create_task(self.stopping.wait(), name="stop-wait")
        done, _ = await asyncio.wait([task, stop_wait], return_when=asyncio.FIRST_COMPLETED)
        stop_wait.cancel()
        if task in done:
            return task.result()
        await _cancel(task)
        return False

    async def _run_stages(self, client: KubeClient, state: StateStore, spool: Spool, deliveries: list[Delivery],
                          unreachable: list[Delivery]) -> int:
        s = self.settings
        # A node agent (logs only) caches only its node's pods; an events collector needs all.
        node_name = self._node_name() if s.logs.enabled else None
        enricher = None
        if s.enrich.enabled:
            enricher = Enricher(client, s, node_name=None if s.events.enabled else node_name, metrics=self.metrics)
        self._enricher = enricher

        stages = _Stages()
        if enricher is not None:
            stages.feeders.append(stages.start("enricher", enricher.run()))
        if s.events.enabled:
            events_pipeline = Pipeline("events", s, state, spool, metrics=self.metrics,
                                       routes=build_routes(s, "events"))
            events = EventsSource(client, s, state, events_pipeline, enricher, metrics=self.metrics)
            self._sources.append(StreamSource("events", events, events_pipeline))
        if s.logs.enabled:
            assert node_name is not None
            logs_pipeline = Pipeline("logs", s, state, spool, metrics=self.metrics, routes=build_routes(s, "logs"))
            logs = LogsSource(s, state, logs_pipeline, enricher, node_name=node_name, metrics=self.metrics)
            self._sources.append(StreamSource("logs", logs, logs_pipeline))
        for source in self._sources:
            for task in source.start():
                stages.tasks[task.get_name()] = task
        for delivery in deliveries:
            stages.workers[delivery] = stages.start(f"delivery-{delivery.destination}", delivery.run())
        for delivery in unreachable:
            check = stages.start(f"sink-check-{delivery.destination}", self._wait_for_sink(delivery.sink, delivery))
            stages.one_shot.add(check.get_name())
            stages.feeders.append(check)
        if self._elector is not None:
            stages.start("lease", self._elector.hold())
        if s.events.enabled and s.compaction.interval_s is not None:
            # Stopped with the feeders: a compaction is safe to interrupt anywhere. Runs only
            # here, past leader election, so a standby never compacts.
            from kubestream.archive.schedule import PeriodicCompaction

            stages.feeders.append(stages.start("compaction", PeriodicCompaction(s, metrics=self.metrics).run()))
        if self.ready_file is not None:
            ready = stages.start("ready-file", self._write_ready_file())
            stages.one_shot.add(ready.get_name())
            stages.feeders.append(ready)

        exit_code = await self._wait_for_stop_or_failure(stages.tasks, stages.one_shot)
        deadline = time.monotonic() + s.shutdown.timeout_s
        pipelines = [source.pipeline for source in self._sources]
        # The bound holds even for a commit waiting out a full spool disk (steps 1 and 2 below).
        give_up = asyncio.get_running_loop().call_later(s.shutdown.timeout_s, _give_up, pipelines)
        try:
            return await self._shutdown(stages, deadline, exit_code)
        finally:
            give_up.cancel()

    def _node_name(self) -> str:
        name = self.settings.logs.node_name or os.environ.get("NODE_NAME")
        if not name:
            raise ConfigError("the node agent needs its node's name: set logs.node_name or NODE_NAME",
                              key="logs.node_name")
        return name

    async def _wait_for_stop_or_failure(self, tasks: dict[str, asyncio.Task[Any]], one_shot: set[str]) -> int:
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
                if task.get_name() in one_shot:
                    # Finished its one job; keep waiting for a real reason to stop.
                    del tasks[task.get_name()]
                    return await self._wait_for_stop_or_failure(tasks, one_shot)
                log.error("stage %s ended unexpectedly", task.get_name())
                return EXIT_FAILED
            if isinstance(exc, LeadershipLost):
                # Another replica may already be exporting: stop at once, flush nothing.
                self._lost_leadership = True
                log.error("lost leadership (%s); stopping without delivering more", exc)
            elif isinstance(exc, SinkFatalError) and task.get_name().startswith("sink-check"):
                self._sink_ok = False
                log.error("sink unusable: %s", exc)
                return EXIT_SINK_UNUSABLE
            elif isinstance(exc, SinkFatalError):
                self._sink_ok = False
                log.error("sink failed permanently: %s", exc)
            elif isinstance(exc, KubestreamError):
                log.error("stage %s failed: %s", task.get_name(), exc)
            else:
                log.error("stage %s crashed", task.get_name(), exc_info=exc)
            return EXIT_FAILED
        return EXIT_OK

    async def _shutdown(self, stages: _Stages, deadline: float, exit_code: int) -> int:
        if self._lost_leadership:
            for task in stages.tasks.values():
                await _cancel(task)
            return exit_code
        log.info("shutting down: flushing the open batches and draining the spool")
        # 1. No new records: stop the sources, then what feeds them (caches) and the one-shot helpers.
        for source in self._sources:
            await source.stop()
        for task in stages.feeders:
            await _cancel(task)
        # 2. Close the open batches: spool write + state commit in one step each.
        for source in self._sources:
            try:
                await source.flush(max(0.1, deadline - time.monotonic()))
            except (TimeoutError, KubestreamError) as exc:
                log.error("could not flush the open %s batch (%s); its records will be read again at the next "
                          "start", source.stream, exc)
                exit_code = exit_code or EXIT_FAILED
        # 3. Every destination delivers its parts, concurrently, within the bound; the rest waits
        #    for the next start. A destination that failed for good does not drain.
        draining = []
        for delivery, worker in stages.workers.items():
            if worker.done():
                continue
            await _cancel(worker)
            draining.append(delivery)
        remaining = max(0.1, deadline - time.monotonic())
        results = await asyncio.gather(*(d.drain(remaining) for d in draining), return_exceptions=True)
        for delivery, result in zip(draining, results, strict=True):
            if result is not True:
                log.warning("destination %s: spool not fully delivered before the shutdown bound (%s); it will be "
                            "delivered at the next start", delivery.destination,
                            "timed out" if result is False else result)
        for task in stages.tasks.values():
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


class _Stages:
    """The tasks of a running agent, with the roles shutdown needs (not their names)."""

    def __init__(self) -> None:
        self.tasks: dict[str, asyncio.Task[Any]] = {}
        """Every task, watched for failure."""
        self.feeders: list[asyncio.Task[Any]] = []
        """Stopped right after the sources: caches and one-shot helpers."""
        self.workers: dict[Delivery, asyncio.Task[Any]] = {}
        """Each destination's delivery worker, drained last."""
        self.one_shot: set[str] = set()
        """Tasks that end on their own after doing their one job."""

    def start(self, name: str, coro: Coroutine[Any, Any, Any]) -> asyncio.Task[Any]:
        task = asyncio.create_task(coro, name=name)
        self.tasks[name] = task
        return task


def _give_up(pipelines: list[Pipeline]) -> None:
    for pipeline in pipelines:
        pipeline.give_up()


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
