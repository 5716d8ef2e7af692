"""In-house async reflector: paged list → watch with bookmarks → relist on 410, with backoff.

Modelled on client-go's ``tools/cache/reflector.go`` and kopf's ``_cogs/clients/watching.py``
(see docs/spec/kubernetes-api.md §2 and docs/design-kube-access.md for why this is not the
official client's informer):

* Lists are paged (``limit``/``continue``) quorum reads (``resourceVersion`` unset, never older
  than what was already seen), so a cluster-wide list never arrives as one giant response: in
  Python a 94 MB PodList is ~1 GB of dicts. Only a field-scoped first list (a node agent's own
  pods) reads ``resourceVersion=0`` from the watch cache, as client-go does; servers ≤1.32 ignore
  ``limit`` there, which is harmless for a hundred pods. Relists after 410 are always quorum reads.
* Each listed item is handed over as LISTED, then one SYNCED with the list's RV; consumers diff.
* The watch resumes from the last RV seen, with bookmarks and a random server-side timeout. A
  normal end (the server's timeout) re-watches at once. 410 (HTTP or in-stream ERROR) relists.
  429 waits for Retry-After and re-watches. Everything else — 5xx, connection errors, cut or
  garbage frames, inactivity — logs a warning, counts ``watch_restarts{reason}``, backs off
  (exponential, full jitter) and resumes from the last RV without relisting.
* Handlers are awaited inline, so a slow consumer slows the socket reads (backpressure).
* After a reconnect the handler never sees an event at or below the last RV it saw.
* resourceVersion going backwards (etcd restored from a backup, or an API server that restarted
  with an empty store) is detected and answered with RESET + a quorum relist; see ``_rewound``.
"""

from __future__ import annotations

import asyncio
import enum
import logging
import random
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

import orjson

from kubestream.config.settings import KubeSettings
from kubestream.errors import (
    ApiStatusError,
    ExpiredError,
    ForbiddenError,
    KubeConnectionError,
    KubeError,
    KubeTlsError,
    TooLargeResourceVersionError,
    TooManyRequestsError,
    UnauthorizedError,
    WatchStreamError,
)
from kubestream.kube.client import KubeClient, WatchFrameError, WatchInactivityError, status_error
from kubestream.obs.metrics import Metrics
from kubestream.util.backoff import Backoff
from kubestream.util.gcpause import gc_paused

T = TypeVar("T")

log = logging.getLogger(__name__)


class EventType(enum.StrEnum):
    LISTED = "LISTED"
    """An item of a (re)list. After the last page comes one SYNCED. Every item of one list carries
    the list's RV, so a new RV means a new list (an earlier one may have broken off mid-way)."""
    SYNCED = "SYNCED"
    """A (re)list completed at ``rv``; items not LISTED since the previous SYNCED are gone."""
    ADDED = "ADDED"
    MODIFIED = "MODIFIED"
    DELETED = "DELETED"
    BOOKMARK = "BOOKMARK"
    """The watch reached ``rv`` (no object)."""
    RESET = "RESET"
    """The server's resourceVersion went backwards to ``rv`` (no object): an etcd restore or an API
    server that restarted empty. A quorum relist (LISTED..., SYNCED) follows at once; that list is
    the whole truth, and RVs seen before the RESET must no longer be compared with new ones."""


@dataclass(slots=True)
class ReflectorEvent(Generic[T]):
    type: EventType
    obj: T | None
    """The decoded object (None for SYNCED and BOOKMARK)."""
    rv: int
    """resourceVersion of the object (watch events), of the list (LISTED/SYNCED) or the bookmark."""


@dataclass(frozen=True, slots=True)
class ResourceRef:
    """A collection URL: ``/api/v1/pods`` or ``/apis/apps/v1/replicasets`` (namespace optional)."""

    group: str
    version: str
    plural: str
    namespace: str | None = None

    @property
    def path(self) -> str:
        base = f"/apis/{self.group}/{self.version}" if self.group else f"/api/{self.version}"
        if self.namespace:
            base += f"/namespaces/{self.namespace}"
        return f"{base}/{self.plural}"


Handler = Callable[[ReflectorEvent[Any]], Awaitable[None]]

_WATCH_EVENT_TYPES = {"ADDED": EventType.ADDED, "MODIFIED": EventType.MODIFIED, "DELETED": EventType.DELETED}

_VERY_SHORT_WATCH_S = 1.0
"""A watch ending this fast without delivering anything is treated as a failure (client-go's
VeryShortWatchError), so a misbehaving server cannot make us spin."""


class Reflector(Generic[T]):
    """Keeps one collection's objects flowing to a handler: list once, then watch forever."""

    def __init__(
        self,
        client: KubeClient,
        resource: ResourceRef,
        decode: Callable[[dict[str, Any]], T | None],
        handler: Handler,
        *,
        settings: KubeSettings,
        label_selector: str | None = None,
        field_selector: str | None = None,
        start_rv: int | None = None,
        name: str | None = None,
        metrics: Metrics | None = None,
    ) -> None:
        self._client = client
        self.resource = resource
        self._decode = decode
        self._handler = handler
        self._settings = settings
        self._label_selector = label_selector
        self._field_selector = field_selector
        self._start_rv = start_rv
        self.name = name or resource.plural
        self._metrics = metrics
        self._last_rv = start_rv or 0
        self._backoff = Backoff(settings.backoff_initial_s, settings.backoff_max_s, settings.backoff_reset_after_s)
        self.synced = asyncio.Event()
        """Set after the first SYNCED (or the first accepted watch when resuming from start_rv)."""
        self.lists = 0
        """Completed lists (for tests and diagnostics)."""
        self._last_relist_at: float | None = None
        # Check the server's RV before the next watch: resuming a saved RV, or after a watch that
        # gave no sign the server had reached ours (see _rewound).
        self._verify_rv = start_rv is not None
        self._reached = False

    @property
    def last_rv(self) -> int:
        """The highest resourceVersion handed to the handler (object, list or bookmark)."""
        return self._last_rv

    # -- main loop -----------------------------------------------------------------------------

    async def run(self) -> None:
        """List and watch until cancelled. Never returns on API errors: backs off and retries."""
        need_list = self._start_rv is None
        quorum = False
        while True:
            try:
                if self._verify_rv:
                    if await self._rewound():
                        need_list, quorum = True, True
                    self._verify_rv = False
                if need_list:
                    await self._list(quorum=quorum)
                    need_list = False
                await self._watch()
            except ExpiredError as e:
                # 410 on a watch (in-stream or HTTP) or on a list: relist with a quorum read.
                self._restart("expired")
                need_list, quorum = True, True
                delay = self._relist_delay()
                log.info("%s: RV %s expired (%s); relisting in %.1fs", self.name, self._last_rv, e.message, delay)
                await asyncio.sleep(delay)
            except TooManyRequestsError as e:
                delay = max(e.retry_after or 0.0, self._backoff.next_delay())
                log.warning("%s: API server asks to slow down (429); retrying in %.1fs", self.name, delay)
                self._restart("throttled")
                await asyncio.sleep(delay)
            except TooLargeResourceVersionError as e:
                # client-go (tools/cache/reflector.go, Reflector.list): on
                # isTooLargeResourceVersionError it calls setIsLastSyncResourceVersionUnavailable
                # and relists with resourceVersion="" (a quorum read) so it "makes forward
                # progress"; a lagging watch cache catches up, a rewound one never would.
                delay = max(e.retry_after or 0.0, self._backoff.next_delay())
                log.warning("%s: API server has not reached RV %s (%s); relisting with a quorum read in %.1fs",
                            self.name, self._last_rv, e.message, delay)
                self._restart("too_large_rv")
                self._verify_rv = True
                need_list, quorum = True, True
                await asyncio.sleep(delay)
            except KubeError as e:
                reason = _reason(e)
                delay = self._backoff.next_delay()
                # Retrying cannot fix bad credentials or an untrusted certificate by itself (a
                # rotation can): keep retrying with backoff, but say so at ERROR.
                level = (logging.ERROR if isinstance(e, UnauthorizedError | ForbiddenError | KubeTlsError)
                         else logging.WARNING)
                log.log(level, "%s: %s (%s); resuming from RV %s in %.1fs",
                        self.name, reason, e, self._last_rv, delay)
                self._restart(reason)
                # A broken connection is how an API server restart looks: check its RV first.
                self._verify_rv = True
                await asyncio.sleep(delay)

    async def _rewound(self) -> bool:
        """Whether the server's resourceVersion is now below ours; if so, count it, log one
        WARNING and hand the handler a RESET (the caller then relists with a quorum read).

        An etcd restore (or an API server restarted with an empty store) makes every RV we hold
        "from the future". A real server answers a plain watch from such an RV with 200 and then
        filters out every event at or below it, bookmarks included: the watch hangs quietly
        until the new world happens to pass our RV, and everything before that is never seen.
        Only lists with ``resourceVersionMatch`` and streaming lists say "Too large resource
        version" (504, in-stream for the latter), which client-go answers by relisting with
        resourceVersion="" (tools/cache/reflector.go: ``isTooLargeResourceVersionError`` →
        ``setIsLastSyncResourceVersionUnavailable(true)`` → ``relistResourceVersion()`` == "").

        So the question is asked explicitly, but only when there is reason to: before resuming a
        saved RV, after a failed request or a broken watch (a restarting API server looks like
        that), and after a watch that ended (server timeout, inactivity) without any event or
        bookmark at or above our RV, i.e. without proof the server had reached it. The
        answer is a one-item quorum list (``limit=1``, resourceVersion unset: read from etcd, or
        from a watch cache proven fresh), whose list RV is the server's current one. Cost: on a
        healthy server, whose bookmarks arrive about every minute, zero; for a quiet resource
        without bookmarks (Events are not watch-cached, so their watches get none), one tiny
        request per watch timeout (5-10 min: at most 12 per hour per resource); one per failed
        attempt after errors (when the server is down the probe is the retry request itself).
        Polling the RV on a timer every 10 s would cost 360 requests per hour per resource.
        """
        if self._last_rv <= 0:
            return False
        query = self._selectors()
        query["limit"] = "1"
        page = await self._client.request_json("GET", self.resource.path, query=query)
        meta = page.get("metadata") if isinstance(page, dict) else None
        current = _int_rv(meta.get("resourceVersion") if isinstance(meta, dict) else None)
        if current <= 0 or current >= self._last_rv:
            return False
        log.warning("%s: the API server's resourceVersion went backwards from %s to %s (etcd restored, or the "
                    "API server restarted empty); relisting everything with a quorum read",
                    self.name, self._last_rv, current)
        if self._metrics is not None:
            self._metrics.resource_version_resets.labels(resource=self.name).inc()
        self._last_rv = current
        await self._handler(ReflectorEvent(EventType.RESET, None, current))
        return True

    def _relist_delay(self) -> float:
        """No wait for the first relist after a healthy period; back off when they repeat.

        A 410 is routine (the watch fell out of the server's history window) and the relist should
        be immediate, but a server that keeps answering 410 must not get a list storm.
        """
        now = time.monotonic()
        recent = self._last_relist_at is not None and now - self._last_relist_at < self._settings.backoff_reset_after_s
        self._last_relist_at = now
        return self._backoff.next_delay() if recent else 0.0

    # -- list ----------------------------------------------------------------------------------

    async def _list(self, *, quorum: bool) -> None:
        if self._metrics is not None:
            self._metrics.relists.labels(resource=self.name).inc()
        query = self._selectors()
        query["limit"] = str(self._settings.list_page_size)
        if not quorum and self._field_selector:
            # A field-scoped list (a node's pods) is small: read it from the watch cache.
            query["resourceVersion"] = "0"
        list_rv, objects, token = self._slim_page(
            await self._client.request_json("GET", self.resource.path, query=query))
        while True:
            # Fetch the next page while this one is handed over: the server builds page N+1
            # while we consume page N. At most two pages are held.
            next_page = asyncio.create_task(self._next_page(query, token)) if token else None
            try:
                for obj in objects:
                    await self._handler(ReflectorEvent(EventType.LISTED, obj, list_rv))
            except BaseException:
                if next_page is not None:
                    next_page.cancel()
                    await asyncio.gather(next_page, return_exceptions=True)
                raise
            if next_page is None:
                break
            _, objects, token = self._slim_page(await next_page)
        self._last_rv = list_rv
        self._verify_rv = False  # the list's RV is the server's own
        self.lists += 1
        await self._handler(ReflectorEvent(EventType.SYNCED, None, list_rv))
        self.synced.set()

    def _slim_page(self, page: Any) -> tuple[int, list[T], str | None]:
        """Decode a raw page's items at once, then let the raw page go.

        Synchronous on purpose: with the GC paused (util/gcpause.py) the raw graph of a large page
        (a whole cluster when the server ignores ``limit`` for RV=0) is never walked by the
        collector; it is freed by refcount when this returns.
        """
        meta = page.get("metadata") or {}
        decode = self._decode
        with gc_paused():
            objects = [obj for raw in page.get("items") or () if (obj := decode(raw)) is not None]
        return _int_rv(meta.get("resourceVersion")), objects, meta.get("continue") or None

    async def _next_page(self, query: dict[str, str], token: str) -> Any:
        # The continue token carries the RV; sending both is a 400.
        query.pop("resourceVersion", None)
        query["continue"] = token
        return await self._client.request_json("GET", self.resource.path, query=dict(query))

    # -- watch ---------------------------------------------------------------------------------

    async def _watch(self) -> None:
        """One watch request; returns on a normal end of the stream."""
        low, high = self._settings.watch_timeout_s
        query = self._selectors()
        query.update({
            "watch": "true",
            "allowWatchBookmarks": "true",
            "resourceVersion": str(self._last_rv),
            "timeoutSeconds": str(max(1, int(random.uniform(low, high)))),
        })
        started = time.monotonic()
        delivered = 0
        # Until a line proves the server reached our RV, the next attempt checks it first;
        # set before the request so a refused connection also leads to a check.
        self._reached = False
        self._verify_rv = True
        async with self._client.stream(self.resource.path, query,
                                       timeout=self._settings.inactivity_timeout_s) as lines:
            # Accepted (HTTP 200): resuming from a saved RV counts as synced from here on.
            self.synced.set()
            async for line in lines:
                await self._on_line(line)
                delivered += 1
                if self._reached:
                    self._verify_rv = False
        if not delivered and time.monotonic() - started < _VERY_SHORT_WATCH_S:
            raise WatchStreamError("watch ended immediately without any event (very short watch)")
        self._restart("timeout")

    async def _on_line(self, line: bytes) -> None:
        try:
            event = orjson.loads(line)
            kind = event["type"]
            obj = event["object"]
        except (orjson.JSONDecodeError, KeyError, TypeError) as e:
            raise WatchStreamError(f"undecodable watch frame ({len(line)} bytes): {line[:80]!r}") from e
        if kind == "ERROR":
            error = status_error(int(obj.get("code") or 500) if isinstance(obj, dict) else 500,
                                 obj if isinstance(obj, dict) else None)
            raise error
        rv = _int_rv(((obj or {}).get("metadata") or {}).get("resourceVersion"))
        if rv >= self._last_rv and (kind == "BOOKMARK" or rv > self._last_rv):
            self._reached = True  # the server is at or past our RV: it has not gone backwards
        if kind == "BOOKMARK":
            if rv > self._last_rv:
                self._last_rv = rv
                await self._handler(ReflectorEvent(EventType.BOOKMARK, None, rv))
            return
        event_type = _WATCH_EVENT_TYPES.get(kind)
        if event_type is None:
            raise WatchStreamError(f"unknown watch event type {kind!r}")
        if rv <= self._last_rv:
            # Replayed after a reconnect (or a server that resent history): already handled.
            return
        self._last_rv = rv
        decoded = self._decode(obj)
        if decoded is not None:
            await self._handler(ReflectorEvent(event_type, decoded, rv))

    # -- helpers -------------------------------------------------------------------------------

    def _selectors(self) -> dict[str, str]:
        query: dict[str, str] = {}
        if self._label_selector:
            query["labelSelector"] = self._label_selector
        if self._field_selector:
            query["fieldSelector"] = self._field_selector
        return query

    def _restart(self, reason: str) -> None:
        if self._metrics is not None:
            self._metrics.watch_restarts.labels(resource=self.name, reason=reason).inc()


def _int_rv(value: Any) -> int:
    try:
        return int(value)
    except (TypeError, ValueError):
        return 0


def _reason(error: KubeError) -> str:
    """A short, bounded label for ``watch_restarts{reason}``."""
    if isinstance(error, WatchInactivityError):
        return "inactivity"
    if isinstance(error, WatchFrameError):
        return "bad_frame"
    if isinstance(error, WatchStreamError):
        return "stream_error"
    if isinstance(error, KubeTlsError):
        return "tls"
    if isinstance(error, KubeConnectionError):
        return "connection"
    if isinstance(error, UnauthorizedError):
        return "unauthorized"
    if isinstance(error, ForbiddenError):
        return "forbidden"
    if isinstance(error, ApiStatusError):
        return "server_error" if error.code >= 500 else "client_error"
    return "error"
