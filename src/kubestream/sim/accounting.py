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

    def to_json(self) -> dict[str, Any]:
        """A JSON-ready dict."""
        return asdict(self)


class RequestLog:
    """Thread-safe request log; open watches are tracked separately while they stream."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._records: list[RequestRecord] = []
        self._open: dict[int, str] = {}
        self._next_id = 0

    def add(self, record: RequestRecord) -> None:
        """Record a finished (or, for watches, accepted) request."""
        with self._lock:
            self._records.append(record)

    def records(self) -> list[RequestRecord]:
        """A copy of all records, oldest first."""
        with self._lock:
            return list(self._records)

    def count(self, verb: str | None = None, resource: str | None = None, namespace: Any = _UNSET,
              watch: bool | None = None) -> int:
        """How many requests matched; each argument left out matches anything."""
        with self._lock:
            return sum(
                1 for r in self._records
                if (verb is None or r.verb == verb)
                and (resource is None or r.resource == resource)
                and (namespace is _UNSET or r.namespace == namespace)
                and (watch is None or r.watch == watch)
            )

    def counts(self) -> dict[str, int]:
        """``"verb resource"`` → number of requests."""
        out: dict[str, int] = {}
        with self._lock:
            for r in self._records:
                key = f"{r.verb} {r.resource}".strip()
                out[key] = out.get(key, 0) + 1
        return out

    def watch_opened(self, resource: str) -> int:
        """Note a watch stream that started; returns a handle for ``watch_closed``."""
        with self._lock:
            self._next_id += 1
            self._open[self._next_id] = resource
            return self._next_id

    def watch_closed(self, handle: int) -> None:
        """Note that a watch stream ended."""
        with self._lock:
            self._open.pop(handle, None)

    def open_watches(self, resource: str | None = None) -> int:
        """Watch streams currently open (optionally for one group resource)."""
        with self._lock:
            return sum(1 for r in self._open.values() if resource is None or r == resource)

    def reset(self) -> None:
        """Forget the records (open watches stay tracked)."""
        with self._lock:
            self._records.clear()

    def to_json(self) -> dict[str, Any]:
        """The admin endpoint's document."""
        return {"records": [r.to_json() for r in self.records()], "counts": self.counts(),
                "openWatches": self.open_watches()}


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

    def to_json(self) -> dict[str, Any]:
        """A JSON-ready dict."""
        return asdict(self)


class KubeletRequestLog:
    """Thread-safe log of kubelet requests, kept apart from the API server's so a test can say
    "no pod list on the API server, N kubelet /pods requests"."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._records: list[KubeletRecord] = []

    def add(self, record: KubeletRecord) -> None:
        """Record a served kubelet request."""
        with self._lock:
            self._records.append(record)

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
