"""Wiring of one agent process: the stages of the data's walk, started together and stopped in
an order that loses nothing.

Shutdown order (SIGTERM/SIGINT): stop the sources (no new records) → close the open batch into
the spool (state commits with it) → let the delivery worker drain the spool within the remaining
bound → close connections. Whatever is not delivered by then stays registered in the spool and
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
from kubestream.agent.takeover import rebuild_from_archive, wipe_local_state
from kubestream.config.settings import Settings
from kubestream.enrich import Enricher
from kubestream.errors import ConfigError, KubestreamError, SinkFatalError, SinkRetryableError
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
        self._sources: list[EventsSource | LogsSource] = []
        self._enricher: Enricher | None = None
        self._sink_ok = True
        self._delivery: Delivery | None = None
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
                return False, f"{type(source).__name__} not synced"
        if self._enricher is not None and not self._enricher.synced.is_set():
            return False, "enrichment caches not synced"
        if not self._sink_ok:
            return False, "sink not writable"
        if self._delivery is not None and not self._delivery.reachable:
            return False, "sink not reachable"
        return True, "ready"

    async def run(self) -> int:
        """Run until ``request_stop`` (or a fatal error); return the process exit code."""
        s = self.settings
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
        delivery = Delivery(spool, sink, settings=s.sink, metrics=self.metrics)
        self._delivery = delivery
        try:
            reachable = await self._check_sink_at_start(sink, delivery)
            if self._elector is not None and not reachable:
                # A takeover rebuilds its state from the archive: nothing to do before it answers.
                reachable = await self._until_stopped_or(self._wait_for_sink(sink, delivery))
                if not reachable:
                    return EXIT_OK
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
            return await self._run_stages(client, state, spool, delivery, sink_reachable=reachable)
        finally:
            await sink.close()

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
        backoff = Backoff(self.settings.sink.retry_initial_s, self.settings.sink.retry_max_s,
                          reset_after_s=float("inf"))
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

    async def _run_stages(self, client: KubeClient, state: StateStore, spool: Spool, delivery: Delivery, *,
                          sink_reachable: bool) -> int:
        s = self.settings
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
            logs_pipeline = Pipeline("logs", s, state, spool, metrics=self.metrics, encoder=make_log_encoder(s),
                                     fallback_encoder=make_log_encoder(s, safe=True))
            pipelines.append(logs_pipeline)
            logs = LogsSource(s, state, logs_pipeline, enricher, node_name=node_name, metrics=self.metrics)
            self._sources.append(logs)
            start("pipeline-logs", logs_pipeline.run())
            start("source-logs", logs.run())
        start("delivery", delivery.run())
        if not sink_reachable:
            start("sink-check", self._wait_for_sink(delivery.sink, delivery))
        if self._elector is not None:
            start("lease", self._elector.hold())
        if self.ready_file is not None:
            start("ready-file", self._write_ready_file())

        exit_code = await self._wait_for_stop_or_failure(background)
        deadline = time.monotonic() + s.shutdown.timeout_s
        # The bound holds even for a commit waiting out a full spool disk (steps 1 and 2 below).
        give_up = asyncio.get_running_loop().call_later(s.shutdown.timeout_s, _give_up, pipelines)
        try:
            return await self._shutdown(background, pipelines, delivery, deadline, exit_code)
        finally:
            give_up.cancel()

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
                if task.get_name() in ("ready-file", "sink-check"):
                    # Finished its one job; keep waiting for a real reason to stop.
                    del tasks[task.get_name()]
                    return await self._wait_for_stop_or_failure(tasks)
                log.error("stage %s ended unexpectedly", task.get_name())
                return EXIT_FAILED
            if isinstance(exc, LeadershipLost):
                # Another replica may already be exporting: stop at once, flush nothing.
                self._lost_leadership = True
                log.error("lost leadership (%s); stopping without delivering more", exc)
            elif isinstance(exc, SinkFatalError) and task.get_name() == "sink-check":
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

    async def _shutdown(self, tasks: dict[str, asyncio.Task[Any]], pipelines: list[Pipeline],
                        delivery: Delivery, deadline: float, exit_code: int) -> int:
        if self._lost_leadership:
            for task in tasks.values():
                await _cancel(task)
            return exit_code
        log.info("shutting down: flushing the open batch and draining the spool")
        # 1. No new records: stop the sources (and the caches feeding them).
        for name in ("source-events", "source-logs", "enricher", "ready-file", "sink-check"):
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
