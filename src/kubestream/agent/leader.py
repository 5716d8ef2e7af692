"""Leader election on a ``coordination.k8s.io/v1`` Lease: exactly one events collector exports.

The Lease objects are read and written through the official client (``kubernetes.aio``'s
``CoordinationV1Api`` and its ``V1Lease`` model). The election loop itself is in-house because
the client's async elector falls short here: it never releases its lease on shutdown (a standby
then waits a whole lease duration after every rolling update) and stamps local, not UTC, times.

The rules follow client-go's ``tryAcquireOrRenew`` (spec §7):
- a record is "expired" when this process last saw it *change* more than ``leaseDurationSeconds``
  ago (local observation time, so clock skew between replicas does not matter);
- a holder renews by PUT with the resourceVersion it read: a stale write is a 409, never a steal;
- a new holder increments ``leaseTransitions``; a release empties ``holderIdentity``.
A standby does not poll: it watches the one Lease (the in-house reflector, with its backoff), and
wakes when the Lease changes or when the observed record would expire.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import logging
import os
import socket
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from kubernetes.aio.client import CoordinationV1Api, V1Lease, V1LeaseSpec, V1ObjectMeta
from kubernetes.aio.client.exceptions import ApiException

from kubestream.config.settings import KubeSettings, LeaderElectionSettings
from kubestream.errors import ConfigError
from kubestream.kube.client import KubeClient
from kubestream.kube.reflector import EventType, Reflector, ReflectorEvent, ResourceRef
from kubestream.obs.metrics import Metrics

log = logging.getLogger("kubestream.leader")


class LeadershipLost(Exception):
    """The lease could not be renewed within the renew deadline, or another holder took it."""


@dataclass(frozen=True, slots=True)
class LeaseRecord:
    """What the election needs of a Lease (decoded from raw watch JSON)."""

    holder: str
    duration_s: float
    transitions: int
    renew_time: str
    resource_version: str

    @classmethod
    def from_json(cls, obj: dict[str, Any]) -> LeaseRecord:
        spec = obj.get("spec") or {}
        return cls(
            holder=spec.get("holderIdentity") or "",
            duration_s=float(spec.get("leaseDurationSeconds") or 0),
            transitions=int(spec.get("leaseTransitions") or 0),
            renew_time=str(spec.get("renewTime") or ""),
            resource_version=str((obj.get("metadata") or {}).get("resourceVersion", "")),
        )

    def identity_key(self) -> tuple[str, str, float, int]:
        """What must change for the record to count as 'observed changing' (client-go compares
        the whole record; the resourceVersion alone changes on every write too)."""
        return (self.holder, self.renew_time, self.duration_s, self.transitions)


def default_identity() -> str:
    return os.environ.get("POD_NAME") or f"{socket.gethostname()}-{os.getpid()}"


def _now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


class LeaderElector:
    """Acquire, renew and release one Lease."""

    def __init__(self, client: KubeClient, settings: LeaderElectionSettings, kube: KubeSettings, *,
                 metrics: Metrics | None = None, clock: Callable[[], float] = time.monotonic) -> None:
        if settings.renew_deadline_s >= settings.lease_duration_s:
            # The loader checks this too (check_settings); settings built in code reach here unchecked.
            raise ConfigError(f"must be below leader_election.lease_duration_s ({settings.lease_duration_s:g})",
                              key="leader_election.renew_deadline_s")
        self.settings = settings
        self.name = settings.lease_name
        self.namespace = settings.namespace or os.environ.get("POD_NAMESPACE") or "default"
        self.identity = settings.identity or default_identity()
        self._api = CoordinationV1Api(client.api_client)
        self._metrics = metrics
        self._clock = clock
        self._observed: LeaseRecord | None = None
        self._observed_at = 0.0
        self._changed = asyncio.Event()
        self._last_renew = 0.0
        self._acquired_transitions = 0
        self._reflector: Reflector[LeaseRecord] = Reflector(
            client, ResourceRef("coordination.k8s.io", "v1", "leases", self.namespace),
            LeaseRecord.from_json, self._on_lease, settings=kube,
            field_selector=f"metadata.name={self.name}", name="lease", metrics=metrics)

    @property
    def transitions(self) -> int:
        """``leaseTransitions`` when this replica acquired the lease: a leadership epoch."""
        return self._acquired_transitions

    async def _on_lease(self, event: ReflectorEvent[LeaseRecord]) -> None:
        if event.type in (EventType.LISTED, EventType.ADDED, EventType.MODIFIED) and event.obj is not None:
            self._observe(event.obj)
        elif event.type is EventType.DELETED:
            self._observed = None
            self._changed.set()

    def _observe(self, record: LeaseRecord) -> None:
        if self._observed is None or record.identity_key() != self._observed.identity_key():
            self._observed_at = self._clock()
            self._changed.set()
        self._observed = record

    def _expired(self) -> bool:
        rec = self._observed
        return rec is None or not rec.holder or self._clock() > self._observed_at + rec.duration_s

    async def acquire(self) -> None:
        """Return once this replica holds the lease (watching it meanwhile, never polling)."""
        watch = asyncio.create_task(self._reflector.run(), name="lease-watch")
        try:
            await self._reflector.synced.wait()
            while True:
                rec = self._observed
                free = rec is None or rec.holder == self.identity or self._expired()
                if free and await self._try_acquire_or_renew():
                    log.info("acquired lease %s/%s as %s", self.namespace, self.name, self.identity)
                    if self._metrics is not None:
                        self._metrics.leader.set(1)
                    return
                await self._wait_for_change_or_expiry()
        finally:
            watch.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await watch

    async def _wait_for_change_or_expiry(self) -> None:
        self._changed.clear()
        rec = self._observed
        timeout = self.settings.retry_period_s
        if rec is not None and rec.holder:
            timeout = max(0.05, self._observed_at + rec.duration_s - self._clock() + 0.01)
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._changed.wait(), timeout)

    async def hold(self) -> None:
        """Renew every ``retry_period_s``; raise ``LeadershipLost`` past the renew deadline."""
        self._last_renew = self._clock()
        while True:
            await asyncio.sleep(self.settings.retry_period_s)
            if await self._try_acquire_or_renew():
                self._last_renew = self._clock()
                continue
            if self._observed is not None and self._observed.holder not in ("", self.identity):
                raise LeadershipLost(f"lease taken by {self._observed.holder}")
            if self._clock() - self._last_renew > self.settings.renew_deadline_s:
                raise LeadershipLost("could not renew the lease within the renew deadline")

    async def release(self) -> None:
        """Give the lease up at once (client-go's ReleaseOnCancel): empty holder, 1 s duration."""
        if self._metrics is not None:
            self._metrics.leader.set(0)
        try:
            lease = await self._api.read_namespaced_lease(self.name, self.namespace)
            if lease.spec is None or lease.spec.holder_identity != self.identity:
                return
            now = _now()
            lease.spec = V1LeaseSpec(holder_identity="", lease_duration_seconds=1, acquire_time=now,
                                     renew_time=now, lease_transitions=lease.spec.lease_transitions)
            await self._api.replace_namespaced_lease(self.name, self.namespace, lease)
            log.info("released lease %s/%s", self.namespace, self.name)
        except (ApiException, OSError) as exc:
            log.warning("could not release lease %s/%s: %s (it will expire)", self.namespace, self.name, exc)

    async def _try_acquire_or_renew(self) -> bool:
        now = _now()
        duration = max(1, round(self.settings.lease_duration_s))
        try:
            lease = await self._api.read_namespaced_lease(self.name, self.namespace)
        except ApiException as exc:
            if exc.status != 404:
                log.warning("reading lease %s/%s failed: %s", self.namespace, self.name, exc.status)
                return False
            return await self._create(now, duration)
        except OSError as exc:
            log.warning("reading lease %s/%s failed: %s", self.namespace, self.name, exc)
            return False
        spec = lease.spec or V1LeaseSpec()
        holder = spec.holder_identity or ""
        if holder and holder != self.identity and not self._expired():
            return False
        transitions = spec.lease_transitions or 0
        if holder != self.identity:
            transitions += 1
            acquire_time = now
        else:
            acquire_time = spec.acquire_time or now
        lease.spec = V1LeaseSpec(holder_identity=self.identity, lease_duration_seconds=duration,
                                 acquire_time=acquire_time, renew_time=now, lease_transitions=transitions)
        if not await self._write("updating", self._api.replace_namespaced_lease(self.name, self.namespace, lease)):
            return False
        self._acquired_transitions = transitions
        return True

    async def _create(self, now: dt.datetime, duration: int) -> bool:
        lease = V1Lease(
            metadata=V1ObjectMeta(name=self.name, namespace=self.namespace),
            spec=V1LeaseSpec(holder_identity=self.identity, lease_duration_seconds=duration,
                             acquire_time=now, renew_time=now, lease_transitions=0))
        if not await self._write("creating", self._api.create_namespaced_lease(self.namespace, lease)):
            return False
        self._acquired_transitions = 0
        return True

    async def _write(self, what: str, request: Awaitable[Any]) -> bool:
        """Send one Lease write; False when it lost a race (409, silently) or failed (logged)."""
        try:
            await request
        except ApiException as exc:
            if exc.status != 409:
                log.warning("%s lease %s/%s failed: %s", what, self.namespace, self.name, exc.status)
            return False
        except OSError as exc:
            log.warning("%s lease %s/%s failed: %s", what, self.namespace, self.name, exc)
            return False
        return True
