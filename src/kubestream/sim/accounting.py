"""Request accounting: every API request the simulator served, for tests and benchmarks that
assert on control-plane cost (e.g. "no relist after a bookmark")."""

from __future__ import annotations

import threading
import time
from dataclasses import asdict, dataclass
from typing import Any

_UNSET: Any = object()


@dataclass(frozen=True, slots=True)
class RequestRecord:
    """One served request. ``verb`` is the Kubernetes verb (get/list/watch/create/update/patch/
    delete/deletecollection) or discovery/openapi/version/other."""

    verb: str
    resource: str
    """Group resource (``pods``, ``leases.coordination.k8s.io``); "" for non-resource paths."""
    namespace: str | None
    watch: bool
    code: int
    label_selector: str | None
    field_selector: str | None
    user_agent: str
    path: str
    time: float
    subresource: str | None = None
    user: str = ""
    """The user the bearer token authenticates as (``system:anonymous`` when auth is off, "" when
    rejected), so agents sharing one server can be told apart."""
    server: str = "apiserver"
    """Who served it: ``apiserver``, or ``kubelet`` (a simulated kubelet, see ``KubeletRecord``;
    ``resource`` is then ``nodes``, ``subresource`` what kubelet authorized, ``node`` its node)."""
    node: str | None = None

    def to_json(self) -> dict[str, Any]:
        """A JSON-ready dict."""
        return asdict(self)


@dataclass(slots=True)
class WatchTraffic:
    """What one watch stream sent its client: opening a watch is one request, but what it costs
    the API server and the agent grows with every event it streams (a cluster-wide ReplicaSet
    watch on a 5,000-node cluster streams every rollout to every node agent)."""

    resource: str
    user: str
    field_selector: str | None
    label_selector: str | None
    opened: float
    events: int = 0
    """Watch events sent (ADDED/MODIFIED/DELETED/ERROR), initial events included."""
    bookmarks: int = 0
    bytes: int = 0
    """Body bytes written (before TLS and chunked framing)."""
    closed: float | None = None

    def to_json(self) -> dict[str, Any]:
        """A JSON-ready dict."""
        return asdict(self)


@dataclass(frozen=True, slots=True)
class TrafficTotals:
    """Sums over watch streams (see ``RequestLog.watch_totals``)."""

    watches: int
    events: int
    bookmarks: int
    bytes: int


_BOOKMARK_LINE = b'{"type":"BOOKMARK"'


class RequestLog:
    """Thread-safe request log; open watches are tracked separately while they stream, and what
    each watch streamed is kept (``watch_traffic``) until ``reset``."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._records: list[RequestRecord] = []
        self._open: dict[int, str] = {}
        self._traffic: dict[int, WatchTraffic] = {}
        self._next_id = 0

    def add(self, record: RequestRecord) -> None:
        """Record a finished (or, for watches, accepted) request."""
        with self._lock:
            self._records.append(record)

    def records(self, server: str | None = "apiserver") -> list[RequestRecord]:
        """A copy of the records served by ``server`` (``apiserver``, ``kubelet``, None: both),
        oldest first. ``count``/``counts`` are the API server's only."""
        with self._lock:
            return [r for r in self._records if server is None or r.server == server]

    def count(self, verb: str | None = None, resource: str | None = None, namespace: Any = _UNSET,
              watch: bool | None = None) -> int:
        """How many requests matched; each argument left out matches anything."""
        with self._lock:
            return sum(
                1 for r in self._records
                if r.server == "apiserver"
                and (verb is None or r.verb == verb)
                and (resource is None or r.resource == resource)
                and (namespace is _UNSET or r.namespace == namespace)
                and (watch is None or r.watch == watch)
            )

    def counts(self) -> dict[str, int]:
        """``"verb resource"`` → number of requests."""
        out: dict[str, int] = {}
        with self._lock:
            for r in self._records:
                if r.server != "apiserver":
                    continue
                key = f"{r.verb} {r.resource}".strip()
                out[key] = out.get(key, 0) + 1
        return out

    def watch_opened(self, resource: str, *, user: str = "", field_selector: str | None = None,
                     label_selector: str | None = None) -> int:
        """Note a watch stream that started; returns a handle for ``watch_streamed``/``watch_closed``."""
        with self._lock:
            self._next_id += 1
            self._open[self._next_id] = resource
            self._traffic[self._next_id] = WatchTraffic(resource, user, field_selector, label_selector, now())
            return self._next_id

    def watch_streamed(self, handle: int, chunk: bytes) -> None:
        """Count a chunk of watch lines sent on stream ``handle`` (one JSON event per line)."""
        lines = chunk.count(b"\n")
        bookmarks = chunk.count(_BOOKMARK_LINE)
        with self._lock:
            traffic = self._traffic.get(handle)
            if traffic is not None:
                traffic.events += lines - bookmarks
                traffic.bookmarks += bookmarks
                traffic.bytes += len(chunk)

    def watch_closed(self, handle: int) -> None:
        """Note that a watch stream ended."""
        with self._lock:
            self._open.pop(handle, None)
            traffic = self._traffic.get(handle)
            if traffic is not None:
                traffic.closed = now()

    def watch_traffic(self) -> list[WatchTraffic]:
        """Copies of every watch stream's traffic since the last ``reset``, oldest first."""
        with self._lock:
            return [WatchTraffic(**asdict(t)) for t in self._traffic.values()]

    def watch_totals(self, *, user: str | None = None, resource: str | None = None) -> TrafficTotals:
        """Watches, events, bookmarks and bytes streamed (to ``user``, of ``resource``)."""
        with self._lock:
            chosen = [t for t in self._traffic.values()
                      if (user is None or t.user == user) and (resource is None or t.resource == resource)]
        return TrafficTotals(len(chosen), sum(t.events for t in chosen), sum(t.bookmarks for t in chosen),
                             sum(t.bytes for t in chosen))

    def open_watches(self, resource: str | None = None) -> int:
        """Watch streams currently open (optionally for one group resource)."""
        with self._lock:
            return sum(1 for r in self._open.values() if resource is None or r == resource)

    def reset(self) -> None:
        """Forget the records and the traffic of closed watches (open watches stay tracked and
        count afresh)."""
        with self._lock:
            self._records.clear()
            for handle in [h for h, t in self._traffic.items() if t.closed is not None]:
                del self._traffic[handle]
            for traffic in self._traffic.values():
                traffic.events = traffic.bookmarks = traffic.bytes = 0

    def to_json(self) -> dict[str, Any]:
        """The admin endpoint's document."""
        return {"records": [r.to_json() for r in self.records(server=None)], "counts": self.counts(),
                "openWatches": self.open_watches(), "watchTraffic": [t.to_json() for t in self.watch_traffic()]}


def now() -> float:
    """Wall-clock time for records."""
    return time.time()


@dataclass(frozen=True, slots=True)
class KubeletRecord:
    """One request a simulated kubelet served. ``verb`` is the authorization verb kubelet derives
    from the HTTP method (``get`` for GET, pkg/kubelet/server/auth.go)."""

    node: str
    verb: str
    path: str
    code: int
    user: str
    user_agent: str
    time: float
    subresource: str = "proxy"
    """The ``nodes/<subresource>`` kubelet authorized the request as (auth.go)."""

    def to_json(self) -> dict[str, Any]:
        """A JSON-ready dict."""
        return asdict(self)

    def as_request(self) -> RequestRecord:
        """The record as it appears in the API server's log (``server="kubelet"``)."""
        return RequestRecord(verb=self.verb, resource="nodes", namespace=None, watch=False, code=self.code,
                             label_selector=None, field_selector=None, user_agent=self.user_agent, path=self.path,
                             time=self.time, subresource=self.subresource, user=self.user, server="kubelet",
                             node=self.node)


class KubeletRequestLog:
    """Thread-safe log of kubelet requests, kept apart from the API server's so a test can say
    "no pod list on the API server, N kubelet /pods requests"."""

    def __init__(self, mirror: RequestLog | None = None) -> None:
        """``mirror``: the API server's log, which gets each record too (``server="kubelet"``), so
        ``records(server=None)`` and ``GET /_sim/requests`` show both servers in one timeline."""
        self._lock = threading.Lock()
        self._records: list[KubeletRecord] = []
        self._mirror = mirror

    def add(self, record: KubeletRecord) -> None:
        """Record a served kubelet request."""
        with self._lock:
            self._records.append(record)
        if self._mirror is not None:
            self._mirror.add(record.as_request())

    def records(self) -> list[KubeletRecord]:
        """A copy of all records, oldest first."""
        with self._lock:
            return list(self._records)

    def count(self, node: str | None = None, verb: str | None = None, path: str | None = None,
              code: int | None = None) -> int:
        """How many requests matched (``path`` without the query); each argument left out matches anything."""
        with self._lock:
            return sum(
                1 for r in self._records
                if (node is None or r.node == node) and (verb is None or r.verb == verb)
                and (path is None or r.path.partition("?")[0] == path) and (code is None or r.code == code)
            )

    def reset(self) -> None:
        """Forget the records."""
        with self._lock:
            self._records.clear()
