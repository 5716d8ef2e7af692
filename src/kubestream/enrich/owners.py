"""Walking a pod's owner chain up to its top workload, from the watch caches only.

Only the *intermediate* links need a cache: a ReplicaSet's ownerReferences already name its
Deployment (kind, name, uid), a Job's name its CronJob. StatefulSets and DaemonSets own their
pods directly. So the enricher watches ReplicaSets and Jobs and nothing above them: the chain
ends at the first owner whose kind has no cache, which is the top workload.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

from kubestream.kube.objects import OwnerRef, WorkloadInfo

MAX_DEPTH = 8
"""Chains are 1-2 links in practice; the bound only guards against an ownerReference cycle."""



class NotCached:
    """Sentinel: no cache holds this kind, so the link is the top of the chain."""


NOT_CACHED = NotCached()

WorkloadLookup = Callable[[str, str], "WorkloadInfo | NotCached | None"]
"""(kind, uid) → the cached workload, None if its cache lacks it, NOT_CACHED if no cache."""


@dataclass(slots=True)
class OwnerChain:
    links: list[OwnerRef] = field(default_factory=list)
    """Nearest first: Pod → ReplicaSet → Deployment gives [ReplicaSet, Deployment]."""
    complete: bool = True
    """False when a link should have been in a cache but was not (the chain may be cut short)."""

    @property
    def top(self) -> OwnerRef | None:
        return self.links[-1] if self.links else None


def controller_of(owners: tuple[OwnerRef, ...]) -> OwnerRef | None:
    """The managing owner: the controller reference, else the first one (decoders sort it first)."""
    return owners[0] if owners else None


def walk(owners: tuple[OwnerRef, ...], lookup: WorkloadLookup) -> OwnerChain:
    """Follow controller references upwards through the cached kinds."""
    chain = OwnerChain()
    seen: set[str] = set()
    ref = controller_of(owners)
    while ref is not None and len(chain.links) < MAX_DEPTH and ref.uid not in seen:
        seen.add(ref.uid)
        chain.links.append(ref)
        found = lookup(ref.kind, ref.uid)
        if isinstance(found, NotCached):
            break
        if found is None:
            chain.complete = False
            break
        ref = controller_of(found.owners)
    return chain
