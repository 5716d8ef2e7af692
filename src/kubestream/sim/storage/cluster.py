"""The simulated cluster's API semantics, callable in-process (thread-safe, synchronous) and
used by the HTTP server, so both paths share validation, defaults, RVs and watch notifications.

Objects are stored without ``kind``/``apiVersion`` (list items carry none, spec §1); Events are
stored in the core/v1 form and converted for events.k8s.io/v1 (spec §5). Stored dicts are never
mutated after commit: every write builds a new dict, so readers may share them without copying.
"""

from __future__ import annotations

import bisect
import functools
import math
import time
from dataclasses import dataclass
from typing import Any, Literal, TypeVar, cast

import orjson

from kubestream.sim.config import SimConfig
from kubestream.sim.storage import event_views as ev
from kubestream.sim.storage import fieldmanager as fm
from kubestream.sim.storage import rules
from kubestream.sim.storage import status as st
from kubestream.sim.storage.defaults import DEFAULTED_KINDS, admit, prepare_for_create, scheme_defaults
from kubestream.sim.storage.keyspace import (
    ADDED,
    DELETED,
    MODIFIED,
    HistoryExpired,
    InvalidToken,
    Obj,
    Store,
    decode_continue,
    encode_continue,
)
from kubestream.sim.storage.kinds import empty_object, normalize_times
from kubestream.sim.storage.meta import generated_name, new_uid, rfc3339
from kubestream.sim.storage.patch import MERGE, STRATEGIC, apply_patch
from kubestream.sim.storage.resources import UNCACHED_STORES, ResourceType, lookup
from kubestream.sim.storage.schemas import model_class_name
from kubestream.sim.storage.selectors import Filter, make_filter
from kubestream.sim.storage.status import SimApiError
from kubestream.sim.storage.timers import Timers

__all__ = ["ListPage", "SimApiError", "SimCluster"]

_T = TypeVar("_T")

_META_ORDER = (
    "name", "generateName", "namespace", "selfLink", "uid", "resourceVersion", "generation",
    "creationTimestamp", "deletionTimestamp", "deletionGracePeriodSeconds", "labels", "annotations",
    "ownerReferences", "finalizers", "managedFields",
)
_SERVER_META = ("uid", "creationTimestamp", "deletionTimestamp", "deletionGracePeriodSeconds",
                "generateName", "selfLink")
_LEASE_RV_REQUIRED = "must be specified for an update"
_GENERATION_KINDS = frozenset({"Deployment", "ReplicaSet", "StatefulSet", "DaemonSet", "Job", "CronJob",
                               "PodDisruptionBudget"})
"""Kinds whose strategy keeps ``metadata.generation`` (pods too, from 1.34: KubeVersion.pod_generation)."""
IN_PROCESS = None
"""``manager`` of an in-process write: the workload and tests standing for controllers, kubelet and
the scheduler; their writes may set status with the object (as a create then a status write)."""


@functools.cache
def _zero_view(rtype: ResourceType) -> Obj:
    # The kind's Go zero value, the "live" object a create is compared with (fieldmanager.py).
    zero = empty_object(rtype, 0)
    return {k: v for k, v in zero.items() if k not in ("kind", "apiVersion", "metadata")}


def _in_process_managers(rtype: ResourceType, obj: Obj) -> tuple[str, str]:
    """(main manager, status manager) an in-process write is filed under: events by the component
    that reports them, nodes and pod status by kubelet, the rest by kube-controller-manager."""
    if rtype.kind == "Event":
        component = obj.get("reportingComponent") or (obj.get("source") or {}).get("component")
        return str(component or "kube-controller-manager"), "kube-controller-manager"
    if rtype.kind == "Node":
        return "kubelet", "kubelet"
    return "kube-controller-manager", "kubelet" if rtype.kind == "Pod" else "kube-controller-manager"


@dataclass(slots=True)
class ListPage:
    """One LIST response: stored items, the list RV, and paging metadata (spec §1)."""

    items: list[Obj]
    resource_version: int
    continue_token: str | None = None
    remaining: int | None = None


def _clone(obj: _T) -> _T:
    # A JSON round trip is the fastest deep copy for plain JSON data (≈10x copy.deepcopy).
    return cast(_T, orjson.loads(orjson.dumps(obj)))


def _ordered_meta(meta: dict[str, Any]) -> dict[str, Any]:
    out = {k: meta[k] for k in _META_ORDER if k in meta}
    out.update({k: v for k, v in meta.items() if k not in out})
    return out


class SimCluster:
    """In-process access to the simulated API (same semantics as HTTP, no HTTP).

    The public methods return private copies: callers may mutate what they get back.

    Public methods take the URL plural plus group/version and return API-view objects (with
    ``kind``/``apiVersion``); failures raise ``SimApiError`` carrying the Status the HTTP API
    would return.
    """

    def __init__(self, config: SimConfig | None = None) -> None:
        self.config = config or SimConfig()
        self.store = Store(
            history_min_s=self.config.history_min_s,
            history_min_events=self.config.history_min_events,
            history_max_events=self.config.history_max_events,
            start_rv=self.config.start_rv,
            uncached=UNCACHED_STORES,
        )
        self._timers = Timers()
        self._ttl_deadlines: dict[str, float] = {}
        self._token_issued: dict[int, float] = {}
        self.compactions = 0
        """Ticks of the periodic compactor that compacted (for tests and measurements)."""
        ns_type = self.rtype("namespaces")
        for name in self.config.auto_namespaces:
            self.create_obj(ns_type, None, {"metadata": {"name": name}})
        if self.config.compaction_interval_s:
            self._schedule_compaction(None)

    def close(self) -> None:
        """Stop background timers (pending grace deletions and TTL expiries are dropped)."""
        self._timers.close()

    # -- resolution and views ------------------------------------------------------------------

    @staticmethod
    def rtype(plural: str, group: str = "", version: str = "v1") -> ResourceType:
        """The registry entry of a resource; 404 NotFound if not served."""
        found = lookup(group, version, plural)
        if found is None:
            raise st.not_found_generic()
        return found

    @staticmethod
    def item_view(rtype: ResourceType, stored: Obj) -> Obj:
        """The object as a list item (no kind/apiVersion), converted for the API's Event form."""
        if rtype.kind == "Event":
            return ev.v1_view(stored) if rtype.group == "events.k8s.io" else ev.core_view(stored)
        return stored

    @classmethod
    def view(cls, rtype: ResourceType, stored: Obj) -> Obj:
        """The object as GET/watch return it: kind and apiVersion first."""
        return {"kind": rtype.kind, "apiVersion": rtype.api_version, **cls.item_view(rtype, stored)}

    @staticmethod
    def _from_view(rtype: ResourceType, body: Obj) -> Obj:
        obj = {k: v for k, v in body.items() if k not in ("kind", "apiVersion")}
        if rtype.kind == "Event" and rtype.group == "events.k8s.io":
            obj = ev.from_v1(obj)
        return obj

    @property
    def resource_version(self) -> int:
        """The current global revision (the RV a list at this moment reports)."""
        return self.store.rv

    def _check_type(self, rtype: ResourceType, body: Any) -> Obj:
        if not isinstance(body, dict):
            raise st.bad_request(
                f"the object provided is unrecognized (must be of type {rtype.kind}): "
                f"couldn't get version/kind; json parse error: expected an object"
            )
        api_version = body.get("apiVersion")
        kind = body.get("kind")
        if kind and kind != rtype.kind:
            raise st.bad_request(
                f'{kind} in version "{str(api_version or rtype.version).rsplit("/", 1)[-1]}" cannot be handled as '
                f'a {rtype.kind}: no kind "{kind}" is registered for version "{api_version or rtype.api_version}"'
            )
        if api_version and api_version != rtype.api_version:
            raise st.bad_request(
                f"the API version in the data ({api_version}) does not match the expected API version "
                f"({rtype.api_version})"
            )
        meta = body.get("metadata")
        if meta is not None and not isinstance(meta, dict):
            raise st.bad_request(f"{rtype.kind} in version \"{rtype.version}\" cannot be handled as a {rtype.kind}: "
                                 "json: cannot unmarshal into Go struct field .metadata of type v1.ObjectMeta")
        return body

    def _key(self, rtype: ResourceType, namespace: str | None, name: str) -> str:
        return f"{namespace}/{name}" if rtype.namespaced else name

    def _require_namespace(self, rtype: ResourceType, namespace: str | None) -> None:
        if not rtype.namespaced:
            return
        if not namespace:
            raise st.bad_request("the namespace of the provided object is empty")
        if namespace not in self.store.bucket("namespaces").objects:
            raise st.not_found("namespaces", "", "namespaces", namespace)

    # -- create ----------------------------------------------------------------------------------

    def create_obj(self, rtype: ResourceType, namespace: str | None, body: Any, *, manager: str | None = IN_PROCESS,
                   dry_run: bool = False) -> Obj:
        """POST: server-set uid/creationTimestamp/RV/generateName, defaults, managedFields,
        validation (422), 201 (spec §9.34, §9.40-42). ``manager``: the request's field manager
        (None: an in-process writer); ``dry_run``: everything but the commit."""
        obj = self._from_view(rtype, _clone(self._check_type(rtype, body)))
        meta = dict(obj.get("metadata") or {})
        body_ns = meta.get("namespace")
        if rtype.namespaced:
            if body_ns and namespace and body_ns != namespace:
                raise st.bad_request("the namespace of the provided object does not match the namespace sent on the request")
            namespace = namespace or body_ns
            meta["namespace"] = namespace
        else:
            meta.pop("namespace", None)
        if not meta.get("name"):
            if not meta.get("generateName"):
                raise st.invalid(rtype.kind if not rtype.group else f"{rtype.kind}.{rtype.group}", rtype.group,
                                 rtype.plural, "", [st.field_error("Required", "metadata.name",
                                                                   "name or generateName is required")])
            meta["name"] = generated_name(meta["generateName"])
        for key in ("deletionTimestamp", "deletionGracePeriodSeconds", "selfLink", "generation"):
            meta.pop(key, None)
        meta["uid"] = new_uid()
        meta["resourceVersion"] = ""  # placeholder keeps Go's field order; commit sets the value
        meta["creationTimestamp"] = rfc3339()
        obj["metadata"] = meta
        self._require_namespace(rtype, namespace)  # NamespaceLifecycle admission answers before validation
        scheme_defaults(rtype, obj)
        requested = fm.valid_entries(meta.pop("managedFields", None)) or []
        meta["managedFields"] = self._track(rtype, _zero_view(rtype), obj, requested, manager, None)
        prepare_for_create(rtype, obj, keep_status=manager is IN_PROCESS)
        admit(rtype, obj)
        if rtype.kind in _GENERATION_KINDS or (rtype.kind == "Pod" and self.config.version.pod_generation):
            obj["metadata"]["generation"] = 1
        if not obj["metadata"]["managedFields"]:
            del obj["metadata"]["managedFields"]
        rules.raise_invalid(rtype, meta["name"], rules.create_causes(rtype, obj,
                                                                     v1_events=rtype.group == "events.k8s.io"))
        normalize_times(rtype.kind, obj)
        obj["metadata"] = _ordered_meta(obj["metadata"])
        key = self._key(rtype, namespace, meta["name"])
        with self.store.lock:
            self._require_namespace(rtype, namespace)
            if key in self.store.bucket(rtype.store_name).objects:
                raise st.already_exists(rtype.group_resource, rtype.group, rtype.plural, meta["name"])
            if dry_run:
                return obj
            self.store.commit(rtype.store_name, ADDED, key, obj)
        self.store.notify()
        self._after_write(rtype, key)
        return obj

    def _track(self, rtype: ResourceType, old_view: Obj, new: Obj, entries: list[Obj], manager: str | None,
               subresource: str | None) -> list[Obj]:
        """managedFields after a write from ``old_view`` (API form) to ``new`` (stored form)."""
        new_view = self.item_view(rtype, new)
        class_name = model_class_name(rtype)
        has_status = "status" in rtype.subresources
        now = rfc3339()
        if manager is IN_PROCESS:
            main, status_manager = _in_process_managers(rtype, new)
            change = fm.compare(class_name, old_view, new_view, status_only=False, ignore_status=has_status)
            entries = fm.update(entries, fm.Writer(main, rtype.api_version), change, now)
            if has_status:
                change = fm.compare(class_name, old_view, new_view, status_only=True, ignore_status=False)
                entries = fm.update(entries, fm.Writer(status_manager, rtype.api_version, subresource="status"),
                                    change, now)
            return entries
        status_only = subresource == "status"
        change = fm.compare(class_name, old_view, new_view, status_only=status_only,
                            ignore_status=has_status and not status_only)
        return fm.update(entries, fm.Writer(manager, rtype.api_version, subresource=subresource), change, now)

    # -- get -------------------------------------------------------------------------------------

    def get_obj(self, rtype: ResourceType, namespace: str | None, name: str) -> Obj:
        """GET one stored object; 404 with the resource's name (spec §6)."""
        found = self.store.bucket(rtype.store_name).objects.get(self._key(rtype, namespace, name))
        if found is None:
            raise st.not_found(rtype.group_resource, rtype.group, rtype.plural, name)
        return found

    # -- update / patch ----------------------------------------------------------------------------

    def update_obj(self, rtype: ResourceType, namespace: str | None, name: str, body: Any,
                   *, subresource: str | None = "all", manager: str | None = IN_PROCESS,
                   dry_run: bool = False) -> tuple[Obj, bool]:
        """PUT: optimistic concurrency (409), Lease rules (spec §7); returns (object, created).

        ``subresource``: None for the main resource over HTTP (status is kept), "status" for
        /status (only status changes), "all" for in-process writers such as the workload.
        """
        new = self._from_view(rtype, _clone(self._check_type(rtype, body)))
        meta = dict(new.get("metadata") or {})
        if meta.get("name") and meta["name"] != name:
            raise st.bad_request(f"the name of the object ({meta['name']}) does not match the name on the URL ({name})")
        if rtype.namespaced and meta.get("namespace") and meta["namespace"] != namespace:
            raise st.bad_request("the namespace of the provided object does not match the namespace sent on the request")
        key = self._key(rtype, namespace, name)
        with self.store.lock:
            current = self.store.bucket(rtype.store_name).objects.get(key)
            if current is None:
                if rtype.kind != "Lease":  # spec §7: only AllowCreateOnUpdate stores create on PUT
                    raise st.not_found(rtype.group_resource, rtype.group, rtype.plural, name)
                meta["name"] = name
                new["metadata"] = meta
                return self.create_obj(rtype, namespace, self.view(rtype, new), manager=manager, dry_run=dry_run), True
            body_rv = meta.get("resourceVersion")
            if not body_rv:
                if rtype.kind == "Lease":  # spec §7: AllowUnconditionalUpdate false → 422
                    raise st.invalid(rtype.group_resource, rtype.group, rtype.plural, name, [
                        st.field_error("Invalid", "metadata.resourceVersion", _LEASE_RV_REQUIRED, "0x0")])
            elif str(body_rv) != current["metadata"]["resourceVersion"]:
                raise st.conflict(rtype.group_resource, rtype.group, rtype.plural, name)
            new["metadata"] = meta
            merged = self._merge_update(rtype, current, new, subresource, manager)
            if dry_run:
                return merged, False
            self._commit_update(rtype, key, current, merged)
        self.store.notify()
        self._after_write(rtype, key)
        return self.get_obj(rtype, namespace, name), False

    def _merge_update(self, rtype: ResourceType, current: Obj, new: Obj, subresource: str | None,
                      manager: str | None) -> Obj:
        """The object an update stores: server-owned metadata kept, generation, status rules,
        validation (422) and managedFields."""
        cur_meta = current["metadata"]
        requested = fm.valid_entries(new["metadata"].get("managedFields")) or cur_meta.get("managedFields") or []
        if subresource == "status":
            merged = {**current, "status": new.get("status", current.get("status"))}
        else:
            merged = dict(new)
            meta = dict(new["metadata"])
            for field in _SERVER_META:  # immutable or server-owned metadata survives PUT
                if field in cur_meta:
                    meta[field] = cur_meta[field]
                else:
                    meta.pop(field, None)
            meta["name"] = cur_meta["name"]
            if rtype.namespaced:
                meta["namespace"] = cur_meta["namespace"]
            if "generation" in cur_meta:
                meta["generation"] = cur_meta["generation"]
                if new.get("spec") != current.get("spec"):
                    meta["generation"] = int(cur_meta["generation"]) + 1
            merged["metadata"] = _ordered_meta(meta)
            if subresource is None and "status" in rtype.subresources:
                # Main-resource writes keep the old status (PrepareForUpdate in the strategies).
                if "status" in current:
                    merged["status"] = current["status"]
                else:
                    merged.pop("status", None)
        if subresource != "status":
            if rtype.kind in DEFAULTED_KINDS:
                merged = _clone(merged)  # patched subtrees may be shared with the stored object
                scheme_defaults(rtype, merged)
            rules.raise_invalid(rtype, cur_meta["name"],
                                rules.update_causes(rtype, current, merged, main=subresource is None))
        normalize_times(rtype.kind, merged)
        tracked = self._track(rtype, self.item_view(rtype, current), merged, list(requested), manager,
                              "status" if subresource == "status" else None)
        meta = {k: v for k, v in merged["metadata"].items() if k != "managedFields"}
        if tracked:
            meta["managedFields"] = tracked
        merged["metadata"] = _ordered_meta(meta)
        return merged

    def _commit_update(self, rtype: ResourceType, key: str, current: Obj, merged: Obj) -> None:
        merged["metadata"] = {**merged["metadata"], "resourceVersion": current["metadata"]["resourceVersion"]}
        if merged == current:
            return  # a no-op write does not bump the revision (GuaranteedUpdate compares bytes)
        meta = merged["metadata"]
        if meta.get("deletionTimestamp") and not meta.get("finalizers") and current["metadata"].get("finalizers") \
                and rtype.kind != "Pod":
            # store.go: an update removing the last finalizer of a deleted object deletes it.
            self.store.commit(rtype.store_name, MODIFIED, key, merged)
            self.store.commit(rtype.store_name, DELETED, key, None)
            return
        self.store.commit(rtype.store_name, MODIFIED, key, merged)

    def patch_obj(self, rtype: ResourceType, namespace: str | None, name: str, content_type: str,
                  patch: Any, *, subresource: str | None = "all", manager: str | None = IN_PROCESS,
                  dry_run: bool = False) -> Obj:
        """PATCH with merge, strategic-merge or JSON patch; a resourceVersion in the patch is a
        precondition (409 when stale)."""
        key = self._key(rtype, namespace, name)
        with self.store.lock:
            current = self.get_obj(rtype, namespace, name)
            patched = apply_patch(content_type, self.view(rtype, current), patch)
            patched = self._from_view(rtype, self._check_type(rtype, patched))
            meta = patched.get("metadata")
            if not isinstance(meta, dict):
                raise st.bad_request("metadata must be an object")
            if str(meta.get("resourceVersion")) != current["metadata"]["resourceVersion"]:
                raise st.conflict(rtype.group_resource, rtype.group, rtype.plural, name)
            if meta.get("name") != name:
                raise st.bad_request(f"the name of the object ({meta.get('name')}) does not match the name on the URL ({name})")
            merged = self._merge_update(rtype, current, patched, subresource, manager)
            if dry_run:
                return merged
            self._commit_update(rtype, key, current, merged)
        self.store.notify()
        self._after_write(rtype, key)
        return self.get_obj(rtype, namespace, name)

    # -- delete ----------------------------------------------------------------------------------

    def delete_obj(self, rtype: ResourceType, namespace: str | None, name: str, *,
                   grace_period_s: float | None = None,
                   preconditions: dict[str, Any] | None = None, propagation: str | None = None,
                   http: bool = False, dry_run: bool = False) -> tuple[Obj, bool]:
        """DELETE; returns (the object as deleted or marked, deleted-now?) (spec §9.43).

        Pods on a node that are not terminal are deleted gracefully: MODIFIED with
        deletionTimestamp, then DELETED after the grace period: the request's, else (over HTTP)
        the pod's ``terminationGracePeriodSeconds`` (pod strategy CheckGracefulDelete). An
        object with finalizers is only marked. ``propagation`` (HTTP; default per kind:
        ``Orphan`` for batch/v1 Jobs, else ``Background``) adds the ``orphan`` or
        ``foregroundDeletion`` finalizer, which the simulated garbage collector then honours
        (dependents found by ownerReferences uid). In-process deletes without ``propagation``
        stand for controllers that clean up after themselves: no garbage collection."""
        key = self._key(rtype, namespace, name)
        if propagation is None and http:
            propagation = "Orphan" if rtype.kind == "Job" else "Background"
        if propagation not in (None, "Orphan", "Background", "Foreground"):
            raise st.bad_request(f'propagationPolicy: Unsupported value: "{propagation}": supported values: '
                                 '"Foreground", "Background", "Orphan"')
        with self.store.lock:
            current = self.get_obj(rtype, namespace, name)
            self._check_preconditions(rtype, current, preconditions or {})
            finalizer = {"Orphan": "orphan", "Foreground": "foregroundDeletion"}.get(propagation or "")
            finalizers = list(current["metadata"].get("finalizers") or [])
            if finalizer and finalizer not in finalizers and self._has_dependents_kind(rtype):
                finalizers.append(finalizer)
            grace = self._pod_grace(rtype, current, grace_period_s, http)
            if dry_run:
                return current, False
            if finalizers:
                marked = self._mark_finalizing(rtype, key, current, finalizers)
            elif grace > 0:
                marked = self._mark_terminating(rtype, key, current, grace)
            else:
                change = self.store.commit(rtype.store_name, DELETED, key, None)
                marked = None
        self.store.notify()
        uid = current["metadata"]["uid"]
        if propagation is not None and self._has_dependents_kind(rtype):
            self._timers.call_later(0.05, lambda: self._collect(rtype, key, uid, propagation or "Background"))
        if marked is not None:
            return marked, False
        return change.obj, True

    @staticmethod
    def _has_dependents_kind(rtype: ResourceType) -> bool:
        return rtype.kind in ("Deployment", "ReplicaSet", "StatefulSet", "DaemonSet", "Job", "CronJob")

    def _mark_finalizing(self, rtype: ResourceType, key: str, current: Obj, finalizers: list[str]) -> Obj:
        # rest/delete.go BeforeDelete: deletionTimestamp now, grace 0, generation + 1; the object
        # stays until its finalizers are removed.
        meta = current["metadata"]
        if "deletionTimestamp" in meta and meta.get("finalizers") == finalizers:
            return current
        new_meta = {**meta, "deletionTimestamp": meta.get("deletionTimestamp") or rfc3339(),
                    "deletionGracePeriodSeconds": 0, "finalizers": finalizers}
        if "generation" in meta and "deletionTimestamp" not in meta:
            new_meta["generation"] = int(meta["generation"]) + 1
        marked = {**current, "metadata": _ordered_meta(new_meta)}
        self.store.commit(rtype.store_name, MODIFIED, key, marked)
        return marked

    def _dependents(self, owner_uid: str) -> list[tuple[ResourceType, str, Obj]]:
        found = []
        for plural, group in (("pods", ""), ("replicasets", "apps"), ("jobs", "batch")):
            dep_type = self.rtype(plural, group)
            for dep_key, obj in self.store.bucket(dep_type.store_name).objects.items():
                if any(ref.get("uid") == owner_uid for ref in obj["metadata"].get("ownerReferences") or []):
                    found.append((dep_type, dep_key, obj))
        return found

    def _collect(self, rtype: ResourceType, key: str, uid: str, propagation: str) -> None:
        """The garbage collector for one deleted owner: orphan (drop the ownerReferences) or
        delete its dependents, then remove the owner's GC finalizer."""
        with self.store.lock:
            dependents = self._dependents(uid)
            for dep_type, dep_key, obj in dependents:
                if propagation == "Orphan":
                    refs = [r for r in obj["metadata"].get("ownerReferences") or [] if r.get("uid") != uid]
                    meta = {k: v for k, v in obj["metadata"].items() if k != "ownerReferences"}
                    if refs:
                        meta["ownerReferences"] = refs
                    self.store.commit(dep_type.store_name, MODIFIED, dep_key, {**obj, "metadata": meta})
            owner = self.store.bucket(rtype.store_name).objects.get(key)
            if owner is not None and owner["metadata"].get("uid") == uid:
                left = [f for f in owner["metadata"].get("finalizers") or [] if f not in ("orphan", "foregroundDeletion")]
                if not left:
                    self.store.commit(rtype.store_name, DELETED, key, None)
                else:
                    self.store.commit(rtype.store_name, MODIFIED, key,
                                      {**owner, "metadata": {**owner["metadata"], "finalizers": left}})
        self.store.notify()
        if propagation != "Orphan":
            for dep_type, _, obj in dependents:
                meta = obj["metadata"]
                try:
                    self.delete_obj(dep_type, meta.get("namespace"), meta["name"], propagation="Background",
                                    http=True)
                except SimApiError:
                    continue  # already gone

    def _check_preconditions(self, rtype: ResourceType, current: Obj, pre: dict[str, Any]) -> None:
        meta = current["metadata"]
        for field, label in (("uid", "UID"), ("resourceVersion", "ResourceVersion")):
            want = pre.get(field)
            if want and str(want) != str(meta.get(field)):
                message = (f'Operation cannot be fulfilled on {rtype.group_resource} "{meta["name"]}": '
                           f"Precondition failed: {label} in precondition: {want}, {label} in object meta: {meta.get(field)}")
                raise SimApiError(st.failure(409, "Conflict", message, {"name": meta["name"], "group": rtype.group,
                                                                         "kind": rtype.plural} if rtype.group else
                                             {"name": meta["name"], "kind": rtype.plural}))

    def _pod_grace(self, rtype: ResourceType, current: Obj, requested: float | None, http: bool) -> float:
        if rtype.kind != "Pod":
            return 0.0
        if not (current.get("spec") or {}).get("nodeName"):
            return 0.0
        if (current.get("status") or {}).get("phase") in ("Succeeded", "Failed"):
            return 0.0
        if requested is None:
            own = (current.get("spec") or {}).get("terminationGracePeriodSeconds")
            requested = float(own) if http and isinstance(own, int) else self.config.pod_grace_s
        return max(0.0, float(requested))

    def _mark_terminating(self, rtype: ResourceType, key: str, current: Obj, grace: float) -> Obj:
        meta = current["metadata"]
        seconds = math.ceil(grace)
        if "deletionTimestamp" in meta and int(meta.get("deletionGracePeriodSeconds", 0)) <= seconds:
            return current  # already terminating at least as soon: nothing to change
        new_meta = _ordered_meta({**meta, "deletionTimestamp": rfc3339(time.time() + grace),
                                  "deletionGracePeriodSeconds": seconds})
        if "generation" in meta and "deletionTimestamp" not in meta:
            new_meta["generation"] = int(meta["generation"]) + 1  # rest/delete.go BeforeDelete
        marked = {**current, "metadata": new_meta}
        self.store.commit(rtype.store_name, MODIFIED, key, marked)
        uid = meta["uid"]
        self._timers.call_later(grace, lambda: self._finish_graceful_delete(rtype, key, uid))
        return marked

    def _finish_graceful_delete(self, rtype: ResourceType, key: str, uid: str) -> None:
        with self.store.lock:
            current = self.store.bucket(rtype.store_name).objects.get(key)
            if current is None or current["metadata"].get("uid") != uid:
                return
            self.store.commit(rtype.store_name, DELETED, key, None)
        self.store.notify()

    # -- event TTL -------------------------------------------------------------------------------

    def _after_write(self, rtype: ResourceType, key: str) -> None:
        if rtype.store_name != "events":
            return
        # spec §5 TTL: each write of an event refreshes its etcd lease (--event-ttl, default 1h).
        deadline = time.monotonic() + self.config.event_ttl_s
        first = key not in self._ttl_deadlines
        self._ttl_deadlines[key] = deadline
        if first:
            self._timers.call_at(deadline, lambda: self._expire_event(key))

    def _expire_event(self, key: str) -> None:
        deadline = self._ttl_deadlines.get(key)
        if deadline is None:
            return
        now = time.monotonic()
        if deadline > now + 0.001:
            self._timers.call_at(deadline, lambda: self._expire_event(key))
            return
        del self._ttl_deadlines[key]
        with self.store.lock:
            if key not in self.store.bucket("events").objects:
                return
            self.store.commit("events", DELETED, key, None)
        self.store.notify()

    # -- list ------------------------------------------------------------------------------------

    def list_page(self, rtype: ResourceType, flt: Filter, *, rv: int | None = None, exact: bool = False,
                  limit: int | None = None, continue_token: str | None = None) -> ListPage:
        """One LIST page (spec §1). ``rv`` None reads the latest state; ``exact`` reads at ``rv``
        (410 if compacted). Waiting for a too-new RV is the caller's job (it must not block here)."""
        start = ""
        if continue_token:
            try:
                start, token_rv = decode_continue(continue_token)
            except InvalidToken as exc:
                raise st.bad_request(f"invalid continue token: {exc}") from exc
            read_rv: int | None = None if token_rv < 0 else token_rv
            if read_rv is not None and self._token_expired(read_rv):
                raise st.expired(st.INCONSISTENT_CONTINUE, encode_continue(start.rstrip("\x00"), -1))
            try:
                objects, keys, list_rv = self.store.snapshot(rtype.store_name, read_rv)
            except HistoryExpired as exc:
                # spec §1: a compacted paginated list gets 410 with a fresh "latest" token.
                raise st.expired(st.INCONSISTENT_CONTINUE, encode_continue(start.rstrip("\x00"), -1)) from exc
        else:
            if rv is not None and rv > self.store.rv:
                raise st.too_large_resource_version(rv, self.store.rv)
            try:
                objects, keys, list_rv = self.store.snapshot(rtype.store_name, rv if exact else None)
            except HistoryExpired as exc:
                raise st.expired(st.LIST_EXPIRED) from exc
        if keys is None:
            keys = sorted(objects)
        return self._paginate(rtype, flt, objects, keys, list_rv, start, limit)

    def _paginate(self, rtype: ResourceType, flt: Filter, objects: dict[str, Obj], keys: list[str],
                  list_rv: int, start: str, limit: int | None) -> ListPage:
        prefix = f"{flt.namespace}/" if rtype.namespaced and flt.namespace else ""
        lo = bisect.bisect_left(keys, prefix + start) if (prefix or start) else 0
        hi = bisect.bisect_left(keys, prefix[:-1] + "0") if prefix else len(keys)  # "0" sorts after "/"
        items: list[Obj] = []
        index = lo
        while index < hi:
            obj = objects[keys[index]]
            index += 1
            if flt.matches(obj):
                items.append(obj)
                if limit and len(items) >= limit:
                    break
        page = ListPage(items, list_rv)
        if limit and len(items) >= limit and index < hi:
            last = keys[index - 1][len(prefix):]
            page.continue_token = encode_continue(last, list_rv)
            self._token_issued.setdefault(list_rv, time.monotonic())
            if len(self._token_issued) > 10000:
                for old in sorted(self._token_issued)[:5000]:
                    del self._token_issued[old]
            if not flt.has_selectors:
                page.remaining = hi - index
        return page

    def _token_expired(self, rv: int) -> bool:
        issued = self._token_issued.get(rv)
        return issued is not None and time.monotonic() - issued > self.config.continue_ttl_s

    # -- compaction --------------------------------------------------------------------------------

    def compact(self, rv: int | None = None) -> None:
        """Forget history up to ``rv`` (default: now): older watches and exact lists get 410."""
        # Continue tokens at older RVs now fail too: their snapshot needs the dropped history.
        self.store.compact(rv)

    def _schedule_compaction(self, previous_rv: int | None) -> None:
        interval = self.config.compaction_interval_s
        assert interval
        self._timers.call_later(interval, lambda: self._compaction_tick(previous_rv))

    def _compaction_tick(self, previous_rv: int | None) -> None:
        # etcd3/compact.go: each interval compacts to the revision recorded at the previous one,
        # so history lives between one and two intervals. Only etcd-served (uncached) stores
        # feel it: the watch cache keeps its own window.
        if previous_rv is not None:
            self.store.compact(previous_rv, uncached_only=True)
            self.compactions += 1
        self._schedule_compaction(self.store.rv)

    # -- public, plural-based API ------------------------------------------------------------------

    def create(self, plural: str, obj: dict[str, Any], *, group: str = "", version: str = "v1") -> dict[str, Any]:
        """Create an object (namespace from its metadata); returns it as the API would."""
        rtype = self.rtype(plural, group, version)
        namespace = (obj.get("metadata") or {}).get("namespace") if rtype.namespaced else None
        if rtype.namespaced and not namespace:
            namespace = "default"
        return _clone(self.view(rtype, self.create_obj(rtype, namespace, obj)))

    def get(self, plural: str, namespace: str | None, name: str, *, group: str = "",
            version: str = "v1") -> dict[str, Any]:
        """Read one object."""
        rtype = self.rtype(plural, group, version)
        return _clone(self.view(rtype, self.get_obj(rtype, namespace, name)))

    def list(self, plural: str, namespace: str | None = None, *, group: str = "", version: str = "v1",
             label_selector: str | None = None, field_selector: str | None = None) -> list[dict[str, Any]]:
        """All matching objects at the current revision, in etcd key order (with kind/apiVersion)."""
        rtype = self.rtype(plural, group, version)
        flt = make_filter(rtype, namespace if rtype.namespaced else None, label_selector, field_selector)
        page = self.list_page(rtype, flt)
        return _clone([self.view(rtype, o) for o in page.items])

    def update(self, plural: str, obj: dict[str, Any], *, group: str = "", version: str = "v1") -> dict[str, Any]:
        """Replace an object (spec, status and metadata at once; RV, if set, must be current)."""
        rtype = self.rtype(plural, group, version)
        meta = obj.get("metadata") or {}
        namespace = (meta.get("namespace") or "default") if rtype.namespaced else None
        updated, _ = self.update_obj(rtype, namespace, str(meta.get("name", "")), obj, subresource="all")
        return _clone(self.view(rtype, updated))

    def patch(self, plural: str, namespace: str | None, name: str, patch: dict[str, Any], *,
              patch_type: Literal["strategic", "merge"] = "strategic", group: str = "",
              version: str = "v1") -> dict[str, Any]:
        """Patch an object (spec and status at once) with a strategic-merge or merge patch."""
        rtype = self.rtype(plural, group, version)
        content_type = STRATEGIC if patch_type == "strategic" else MERGE
        return _clone(self.view(rtype, self.patch_obj(rtype, namespace, name, content_type, patch, subresource="all")))

    def delete(self, plural: str, namespace: str | None, name: str, *, group: str = "", version: str = "v1",
               grace_period_s: float | None = None) -> dict[str, Any]:
        """Delete an object (pods on a node gracefully); returns the object as deleted/marked."""
        rtype = self.rtype(plural, group, version)
        obj, _ = self.delete_obj(rtype, namespace, name, grace_period_s=grace_period_s)
        return _clone(self.view(rtype, obj))

