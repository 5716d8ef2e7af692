"""Write journaling for determinism checks: every API write of a tick, hashed with server-set
fields (uid, resourceVersion, creationTimestamp) replaced by stable aliases."""

from __future__ import annotations

import hashlib
import re
from typing import Any, Literal

import orjson

from kubestream.sim.workload.cluster_model import WorkloadStats
from kubestream.sim.workload.scenario import ClusterApi

_UID_RE = re.compile(rb"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")
_RV_RE = re.compile(rb'"(resourceVersion|creationTimestamp)":("[^"]*"|null)')


class _Journal:
    """Hashes each tick's writes with server-assigned values replaced by stable aliases."""

    def __init__(self) -> None:
        self._aliases: dict[bytes, bytes] = {}
        self._hash = hashlib.sha256()

    def note(self, verb: str, plural: str, namespace: str | None, name: str, body: dict[str, Any] | None,
             answer: dict[str, Any] | None) -> None:
        if answer is not None:
            uid = str(answer.get("metadata", {}).get("uid", "")).encode()
            if uid and uid not in self._aliases:
                self._aliases[uid] = b"uid-%d" % len(self._aliases)
        raw = orjson.dumps([verb, plural, namespace, name, body], option=orjson.OPT_SORT_KEYS)
        raw = _RV_RE.sub(rb'"\1":"-"', raw)
        raw = _UID_RE.sub(lambda m: self._aliases.get(m.group(0), b"uid-?"), raw)
        self._hash.update(raw)

    def close_tick(self) -> str:
        digest = self._hash.hexdigest()
        self._hash = hashlib.sha256()
        return digest


class _CountingApi:
    """The cluster, counting and (optionally) journaling every call that writes."""

    def __init__(self, cluster: ClusterApi, stats: WorkloadStats, journal: _Journal | None) -> None:
        self._cluster = cluster
        self._stats = stats
        self._journal = journal

    def _count(self, verb: str, plural: str, namespace: str | None, name: str, body: dict[str, Any] | None,
               answer: dict[str, Any]) -> dict[str, Any]:
        self._stats.writes[verb] = self._stats.writes.get(verb, 0) + 1
        if self._journal is not None:
            self._journal.note(verb, plural, namespace, name, body, answer)
        return answer

    def create(self, plural: str, obj: dict[str, Any], *, group: str = "", version: str = "v1") -> dict[str, Any]:
        meta = obj.get("metadata", {})
        answer = self._cluster.create(plural, obj, group=group, version=version)
        return self._count("create", plural, meta.get("namespace"), meta.get("name", ""), obj, answer)

    def get(self, plural: str, namespace: str | None, name: str, *, group: str = "",
            version: str = "v1") -> dict[str, Any]:
        """A read: neither counted nor journaled."""
        return self._cluster.get(plural, namespace, name, group=group, version=version)

    def patch(self, plural: str, namespace: str | None, name: str, patch: dict[str, Any], *,
              patch_type: Literal["strategic", "merge"] = "strategic", group: str = "",
              version: str = "v1") -> dict[str, Any]:
        answer = self._cluster.patch(plural, namespace, name, patch, patch_type=patch_type, group=group,
                                     version=version)
        return self._count("patch", plural, namespace, name, patch, answer)

    def delete(self, plural: str, namespace: str | None, name: str, *, group: str = "", version: str = "v1",
               grace_period_s: float | None = None) -> dict[str, Any]:
        answer = self._cluster.delete(plural, namespace, name, group=group, version=version,
                                      grace_period_s=grace_period_s)
        return self._count("delete", plural, namespace, name, None, answer)
