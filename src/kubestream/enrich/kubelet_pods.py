"""The node agent's pods from its kubelet (``logs.metadata_source: kubelet``) instead of a watch.

Every ``logs.kubelet.refresh_s`` (±20 % jitter, so a DaemonSet's agents do not poll in step) and
at once when a log directory of an unknown pod UID appears (at most once per ``min_gap_s``), the
kubelet's ``GET /pods`` is read, decoded with the reflector's pod decoder and applied to the
same ``ObjectStore`` as one list: LISTED items then SYNCED, so a pod gone from ``/pods`` becomes
"deleted" and stays ``enrich.delete_delay_s`` like a watch's DELETED.

Kubelet reports a static pod under its own (hash) UID, the one in its log directory name
``<ns>_<pod>_<uid>``, so static pods are found by UID directly.

Failures (unreachable, 401/403, TLS, garbage) count ``kubestream_kubelet_errors_total{reason}``,
back off with full jitter and keep the cache as it is; they never fall back to the API server.
One log line per state change (failing with a new reason, recovered), not per retry. ``synced``
(readiness) is set by the first successful read.

The kubelet's address is the Node's (InternalIP and ``kubeletEndpoint.Port``), which kubelet
rewrites on every status update, so it can change while the agent runs. ``address_changed`` is fed
by the agent's Node watch (every Node update it receives anyway, no extra request): a new address
switches the client and reads from it at once. Without a Node watch (``enrich.nodes: false``) a
connection, TLS or timeout failure looks the Node up again (``relocate``, one list of one node, at
most every ``RELOCATE_S``): a kubelet that moved is found, one that is down costs a request a minute.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
import time
from collections.abc import Awaitable, Callable
from typing import Any, Protocol

from kubestream.config.settings import KubeletSettings, KubeSettings
from kubestream.errors import KubeError
from kubestream.kube.kubelet_client import KubeletError
from kubestream.kube.objects import PodInfo
from kubestream.kube.reflector import EventType, ReflectorEvent
from kubestream.kube.store import ObjectStore
from kubestream.obs.metrics import Metrics
from kubestream.util.backoff import Backoff

log = logging.getLogger(__name__)

JITTER = 0.2
"""Each interval is ``refresh_s`` times a factor drawn in [1 - JITTER, 1 + JITTER]."""
RELOCATE_S = 60.0
"""Without a Node watch, the Node is looked up again after an unreachable read at most this often."""
_MOVED_REASONS = frozenset({"connection", "tls", "timeout"})
"""Failures that an address change would explain (401/403/5xx come from a kubelet that answers)."""
ASKED_TTL_S = 60.0
"""An unknown UID asks for one refresh; asking again for the same UID waits this long (a pod
whose files outlive its metadata must not keep the kubelet busy)."""


class PodLister(Protocol):
    """What the poller needs of ``KubeletClient``."""

    url: str

    async def pods(self) -> list[dict[str, Any]]: ...

    async def retarget(self, url: str) -> bool: ...

    async def close(self) -> None: ...

    def forget_token(self) -> None: ...


class KubeletPods:
    """Keeps ``store`` equal to the kubelet's ``/pods`` (plus retained deletions)."""

    def __init__(self, connect: Callable[[], Awaitable[PodLister]], store: ObjectStore[PodInfo],
                 decode: Callable[[dict[str, Any]], PodInfo | None], settings: KubeletSettings,
                 kube: KubeSettings, *, metrics: Metrics | None = None, min_gap_s: float = 1.0,
                 rng: random.Random | None = None, clock: Callable[[], float] = time.monotonic,
                 relocate: Callable[[], Awaitable[str]] | None = None) -> None:
        """``connect`` is an async callable returning a ``PodLister`` (it may have to find the
        kubelet's address first); it is retried with the same backoff as the reads. ``relocate``
        (None when a Node watch calls ``address_changed``, or the URL is configured) reads the
        kubelet's address from the API again after a read the kubelet did not answer."""
        self._connect = connect
        self._relocate = relocate
        self._relocated_at = float("-inf")
        self._moved_to: str | None = None
        self._url: str | None = None
        """The address the client reads from (None until connected)."""
        self.address_changes = 0
        """How often the client was switched to a new kubelet address."""
        self.store = store
        self._decode = decode
        self._settings = settings
        self._metrics = metrics
        self._min_gap_s = min_gap_s
        self._rng = rng or random.Random()
        self._clock = clock
        self._backoff = Backoff(kube.backoff_initial_s, kube.backoff_max_s, kube.backoff_reset_after_s,
                                clock=clock, rng=self._rng)
        self.synced = asyncio.Event()
        """Set after the first successful read."""
        self.reads = 0
        """Successful ``/pods`` reads (for tests and diagnostics)."""
        self._wake = asyncio.Event()
        self._asked: dict[str, float] = {}
        self._failing: str | None = None
        self._list_no = 0
        self._attempt_done = asyncio.Event()
        """Set (and replaced) after every read attempt, successful or not."""
        self._attempt_started = float("-inf")
        """When the last finished attempt started."""
        self._answered_started = float("-inf")
        """When the last successful read started."""

    def address_changed(self, url: str) -> None:
        """The Node now publishes ``url`` as its kubelet's address: switch before the next read,
        which happens at once (the old address probably answers no more). The same address again
        (every Node status update carries it) does nothing."""
        if url == (self._moved_to or self._url):
            return
        self._moved_to = url
        self._wake.set()

    def want(self, uid: str) -> None:
        """A log directory names a pod UID the store does not know: refresh soon."""
        now = self._clock()
        asked = self._asked.get(uid)
        if asked is not None and now - asked < ASKED_TTL_S:
            return
        if len(self._asked) > 4096:  # hostile directory names must not grow this without bound
            self._asked = {u: t for u, t in self._asked.items() if now - t < ASKED_TTL_S}
        self._asked[uid] = now
        self._wake.set()

    async def settle(self, uid: str, timeout: float) -> None:  # noqa: ASYNC109 - a bound, not a deadline to pass on
        """Wait (at most ``timeout``) until a read that started after ``uid`` was first asked about
        has finished, so the first lines of a new pod are not sent before its metadata arrives;
        returns at once when the UID is known or was already answered (even as "not there")."""
        if uid in self.store:
            return
        self.want(uid)
        asked = self._asked[uid]
        deadline = self._clock() + timeout
        while self._attempt_started < asked:
            remaining = deadline - self._clock()
            if remaining <= 0:
                return
            try:
                await asyncio.wait_for(self._attempt_done.wait(), remaining)
            except TimeoutError:
                return

    def answered_since(self, uid: str) -> bool:
        """Whether a successful read started after ``uid`` was first asked about (its answer,
        found or not, is in the store); False for a UID never asked about."""
        asked = self._asked.get(uid)
        return asked is not None and self._answered_started >= asked

    async def run(self) -> None:
        """Poll until cancelled; never raises on kubelet or API errors."""
        lister = await self._until_connected()
        self._url = lister.url
        try:
            while True:
                self._wake.clear()
                await self._follow_address(lister)
                last = self._clock()
                ok = await self._read(lister)
                self._attempt_started = last
                if ok:
                    self._answered_started = last
                self._attempt_done.set()
                self._attempt_done = asyncio.Event()
                if ok:
                    await self._wait_for_next(last)
                elif self._moved_to is None:
                    await self._sleep_or_moved(self._backoff.next_delay())
        finally:
            await lister.close()

    async def _follow_address(self, lister: PodLister) -> None:
        url, self._moved_to = self._moved_to, None
        if url is None:
            return
        old = lister.url
        if await lister.retarget(url):
            self._url = lister.url
            self.address_changes += 1
            self._backoff.reset()  # the failures so far were the old address's
            log.info("kubelet pods: the Node's kubelet address changed from %s to %s", old, url)

    async def _maybe_relocate(self, reason: str) -> None:
        if self._relocate is None or reason not in _MOVED_REASONS:
            return
        now = self._clock()
        if now - self._relocated_at < RELOCATE_S:
            return
        self._relocated_at = now
        try:
            self._moved_to = await self._relocate()
        except KubeError as e:  # the API is down too: try again after the next failure
            log.debug("kubelet pods: cannot look the Node up again: %s", e)

    async def _until_connected(self) -> PodLister:
        while True:
            try:
                lister: PodLister = await self._connect()
                return lister
            except KubeletError as e:
                self._failed(e.reason, str(e))
            except KubeError as e:  # reading the Node (for the kubelet's address) failed
                self._failed("no_address", f"cannot read the Node to find its kubelet: {e}")
            await asyncio.sleep(self._backoff.next_delay())

    async def _read(self, lister: PodLister) -> bool:
        try:
            items = await lister.pods()
        except KubeletError as e:
            if e.reason == "unauthorized":
                lister.forget_token()  # a rotated token is read again before the retry
            self._failed(e.reason, str(e))
            await self._maybe_relocate(e.reason)
            return False
        self._apply(items)
        self.reads += 1
        self._backoff.reset()
        if self._failing is not None:
            log.info("kubelet pods: reading again after %s", self._failing)
            self._failing = None
        self.synced.set()
        return True

    def _apply(self, items: list[dict[str, Any]]) -> None:
        # One read is one list: the store's LISTED/SYNCED diff marks pods gone from /pods deleted
        # (kept delete_delay_s). The list number stands in for the RV that tells lists apart.
        self._list_no += 1
        for raw in items:
            pod = self._decode(raw)
            if pod is not None:
                self.store.apply(ReflectorEvent(EventType.LISTED, pod, self._list_no))
        self.store.apply(ReflectorEvent(EventType.SYNCED, None, self._list_no))

    def _failed(self, reason: str, message: str) -> None:
        if self._metrics is not None:
            self._metrics.kubelet_errors.labels(reason=reason).inc()
        if reason != self._failing:
            cache = "keeping the cached pods" if self.synced.is_set() else "not ready until it answers"
            log.warning("kubelet pods: %s; retrying with backoff, %s", message, cache)
            self._failing = reason

    async def _sleep_or_moved(self, delay: float) -> None:
        """Back off, but a new address ends the wait (a woken ``want`` does not)."""
        deadline = self._clock() + delay
        while self._moved_to is None and (remaining := deadline - self._clock()) > 0:
            self._wake.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), remaining)

    async def _wait_for_next(self, last: float) -> None:
        interval = self._settings.refresh_s * self._rng.uniform(1 - JITTER, 1 + JITTER)
        try:
            await asyncio.wait_for(self._wake.wait(), interval)
        except TimeoutError:
            return
        # Woken by an unknown UID: still no more than one read per min_gap_s.
        gap = last + self._min_gap_s - self._clock()
        if gap > 0:
            await asyncio.sleep(gap)
