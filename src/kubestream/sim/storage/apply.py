"""Server-side apply (``PATCH`` with ``application/apply-patch+yaml``, spec §11).

kube-apiserver hands an apply to its field manager (apimachinery ``util/managedfields``, which
runs structured-merge-diff's ``merge.Updater.Apply``):

1. The configuration is merged into the live object (the kind's zero value when it does not
   exist: apply creates, ``handlers/patch.go`` sets ``forceAllowCreate``): structs and granular
   maps merge, keyed lists merge by key, sets unite, everything else is replaced.
2. Every field that merge added or changed and another manager owns is a conflict
   (``Updater.update``); without ``force`` the request fails with 409 and one
   ``FieldManagerConflict`` cause per field (``internal/conflict.go``); with ``force`` the others
   lose those fields. Setting a field to the value it already has is no conflict: the field is
   then shared.
3. The applier owns exactly the fields of its configuration (``ToFieldSet``), in an entry with
   operation ``Apply``.
4. Fields the applier owned before, left out of this configuration and owned by nobody else are
   removed from the object (``Updater.prune``).

Not modelled: the ``before-first-apply`` manager for objects without managedFields (every object
the simulator stores has managedFields), the ``last-applied-configuration`` annotation upkeep of
``lastAppliedUpdater``, and list order (new items of a keyed list are appended).
"""

from __future__ import annotations

import copy
import json
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from kubestream.sim.storage import fieldmanager as fm
from kubestream.sim.storage import status as st
from kubestream.sim.storage.keyspace import ADDED, Obj
from kubestream.sim.storage.meta import rfc3339
from kubestream.sim.storage.resources import ResourceType
from kubestream.sim.storage.schemas import fields_of, model_class_name

if TYPE_CHECKING:
    from kubestream.sim.storage.cluster import SimCluster


@dataclass(slots=True)
class ApplyRequest:
    """One apply: the configuration (API form) and the PatchOptions that matter."""

    config: dict[str, Any]
    manager: str
    force: bool = False
    subresource: str | None = None
    """None for the main resource, "status" for ``/status``."""
    dry_run: bool = False


# -- merge ---------------------------------------------------------------------------------------

def _merge(node: tuple[Any, ...], live: Any, config: Any) -> Any:
    kind = node[0]
    if kind == "struct" and isinstance(live, dict) and isinstance(config, dict):
        fields = fields_of(node[1])
        out = dict(live)
        for key, value in config.items():
            spec = fields.get(key)
            if value is None:
                out.pop(key, None)
            elif spec is None or key not in out:
                out[key] = copy.deepcopy(value)
            else:
                out[key] = _merge(fm.node_of(node[1], key, spec.type), out[key], value)
        return out
    if kind == "map" and isinstance(live, dict) and isinstance(config, dict):
        out = dict(live)
        for key, value in config.items():
            out[key] = copy.deepcopy(value) if key not in out or value is None else _merge(node[1], out[key], value)
        return out
    if kind == "keyed" and isinstance(live, list) and isinstance(config, list):
        keys, item_node = node[1], node[2]
        merged = list(live)
        index = {fm.item_element(keys, item): i for i, item in enumerate(merged) if isinstance(item, dict)}
        for item in config:
            element = fm.item_element(keys, item)
            if element in index:
                merged[index[element]] = _merge(item_node, merged[index[element]], item)
            else:
                index[element] = len(merged)
                merged.append(copy.deepcopy(item))
        return merged
    if kind == "set" and isinstance(live, list) and isinstance(config, list):
        return list(live) + [copy.deepcopy(v) for v in config if v not in live]
    return copy.deepcopy(config)


def merge_config(class_name: str, live: dict[str, Any], config: dict[str, Any], *, status_only: bool,
                 ignore_status: bool) -> dict[str, Any]:
    """The live object (API form) with the configuration merged in; the fields the strategy
    resets (status on the main resource, all but status on /status) are left as they are."""
    if status_only:
        keep = {"status"}
    else:
        keep = {k for k in config if k not in ("apiVersion", "kind") and not (ignore_status and k == "status")}
    part = {k: v for k, v in config.items() if k in keep}
    return dict(_merge(("struct", class_name), live, part))


# -- prune ---------------------------------------------------------------------------------------

def _remove(obj: Any, path: fm.Path) -> None:
    """Remove the value at a FieldsV1 path from a JSON object (in place), if it is there."""
    if not path:
        return
    node = obj
    for element in path[:-1]:
        node = _child(node, element)
        if node is None:
            return
    last = path[-1]
    if isinstance(node, dict) and last.startswith("f:"):
        node.pop(last[2:], None)
    elif isinstance(node, list):
        kept = [item for item in node if not _is_element(item, last)]
        node[:] = kept


def _child(node: Any, element: str) -> Any:
    if isinstance(node, dict) and element.startswith("f:"):
        return node.get(element[2:])
    if isinstance(node, list):
        return next((item for item in node if _is_element(item, element)), None)
    return None


def _is_element(item: Any, element: str) -> bool:
    if element.startswith("k:") and isinstance(item, dict):
        keys = tuple(json.loads(element[2:]))
        return fm.item_element(keys, item) == element
    if element.startswith("v:"):
        return fm.set_element(item) == element
    return False


def prune(obj: dict[str, Any], previous: fm.FieldSet, owned: fm.FieldSet) -> dict[str, Any]:
    """``Updater.prune``: drop what the applier owned before and nobody owns now; a field under
    which someone still owns something stays."""
    gone = previous - owned
    if not gone:
        return obj
    out = copy.deepcopy(obj)
    for path in sorted(gone, key=len, reverse=True):
        if any(len(p) > len(path) and p[: len(path)] == path for p in owned):
            continue
        _remove(out, path)
    return out


# -- ownership -----------------------------------------------------------------------------------

def _conflict_error(conflicts: list[tuple[dict[str, Any], fm.Path]]) -> st.SimApiError:
    """internal/conflict.go ``NewConflictError`` → errors.go ``NewApplyConflict``."""
    named = sorted(((fm.entry_identity(e), fm.path_string(p)) for e, p in conflicts))
    causes = [{"type": "FieldManagerConflict", "message": f"conflict with {who}", "field": where}
              for who, where in named]
    if len(named) == 1:
        message = f"Apply failed with 1 conflict: conflict with {named[0][0]}: {named[0][1]}"
    else:
        lines: list[str] = []
        for who in sorted({w for w, _ in named}):
            lines.append(f"conflicts with {who}:")
            lines.extend(f"- {where}" for w, where in named if w == who)
        message = f"Apply failed with {len(named)} conflicts: " + "\n".join(lines)
    return st.SimApiError(st.failure(409, "Conflict", message, {"causes": causes}))


def apply_entries(entries: list[dict[str, Any]], writer: fm.Writer, claimed: fm.FieldSet, change: fm.Comparison,
                  *, force: bool, now: str) -> list[dict[str, Any]]:
    """managedFields after an apply claiming ``claimed`` that changed ``change``; 409 on a conflict
    unless ``force`` (then the other managers lose the conflicting fields)."""
    changed = change.added | change.modified
    others: list[dict[str, Any]] = []
    own: dict[str, Any] | None = None
    conflicts: list[tuple[dict[str, Any], fm.Path]] = []
    for entry in entries:
        if writer.identifies(entry):
            own = entry
            continue
        taken = fm.from_fields_v1(entry.get("fieldsV1")) & changed
        conflicts.extend((entry, p) for p in taken)
        others.append(entry)
    if conflicts and not force:
        raise _conflict_error(conflicts)
    out: list[dict[str, Any]] = []
    for entry in others:
        paths = fm.from_fields_v1(entry.get("fieldsV1"))
        kept = paths - changed if force else paths
        if not kept:
            continue  # a manager left with nothing is dropped
        out.append(entry if kept == paths else {**entry, "fieldsV1": fm.to_fields_v1(kept)})
    if claimed:
        fields_v1 = fm.to_fields_v1(claimed)
        unchanged = own is not None and own.get("fieldsV1") == fields_v1 and change.empty()
        entry = {"manager": writer.manager, "operation": "Apply", "apiVersion": writer.api_version,
                 "time": own.get("time", now) if unchanged and own is not None else now,
                 "fieldsType": "FieldsV1", "fieldsV1": fields_v1}
        if writer.subresource:
            entry["subresource"] = writer.subresource
        out.append(entry)
    return fm.sort_entries(out)


# -- the request ---------------------------------------------------------------------------------

def _check_config(rtype: ResourceType, name: str, config: Any) -> dict[str, Any]:
    if not isinstance(config, dict):
        raise st.bad_request("error decoding YAML: the apply configuration must be an object")
    gvk = (str(config.get("apiVersion") or ""), str(config.get("kind") or ""))
    if gvk != (rtype.api_version, rtype.kind):
        # versionCheckManager: the configuration's GroupVersionKind must be the endpoint's.
        group_version = gvk[0] if "/" in gvk[0] else f"/{gvk[0]}"
        raise st.bad_request(f"invalid object type: {group_version}, Kind={gvk[1]}")
    meta = config.get("metadata")
    if not isinstance(meta, dict):
        raise st.bad_request("metadata must be an object")
    if meta.get("managedFields") is not None:
        raise st.bad_request("metadata.managedFields must be nil")  # structuredmerge.go Apply
    if meta.get("name") != name:
        raise st.bad_request(f"the name of the object ({meta.get('name', '')}) does not match the name on the URL ({name})")
    return config


def apply_obj(cluster: SimCluster, rtype: ResourceType, namespace: str | None, name: str,
              request: ApplyRequest) -> tuple[Obj, bool]:
    """Apply ``request.config`` to the object ``name``: (stored or dry-run object, created)."""
    config = _check_config(rtype, name, request.config)
    status_only = request.subresource == "status"
    claimed = fm.applied_fields(model_class_name(rtype), config, status_only=status_only,
                                ignore_status="status" in rtype.subresources and not status_only)
    writer = fm.Writer(request.manager, rtype.api_version, "Apply", request.subresource)
    store = cluster.store
    key = f"{namespace}/{name}" if rtype.namespaced else name
    now = rfc3339()
    with store.lock:
        current = store.bucket(rtype.store_name).objects.get(key)
        if current is None:
            if status_only:
                raise st.not_found(rtype.group_resource, rtype.group, rtype.plural, name)
            obj = _create(cluster, rtype, namespace, key, config, writer, claimed, request, now)
            created = True
        else:
            obj = _update(cluster, rtype, key, current, config, writer, claimed, request, now)
            created = False
        if request.dry_run:
            return obj, created
    store.notify()
    cluster._after_write(rtype, key)
    return cluster.get_obj(rtype, namespace, name), created


def _update(cluster: SimCluster, rtype: ResourceType, key: str, current: Obj, config: dict[str, Any],
            writer: fm.Writer, claimed: fm.FieldSet, request: ApplyRequest, now: str) -> Obj:
    class_name = model_class_name(rtype)
    status_only = request.subresource == "status"
    ignore_status = "status" in rtype.subresources and not status_only
    live = cluster.view(rtype, current)
    merged = merge_config(class_name, live, config, status_only=status_only, ignore_status=ignore_status)
    change = fm.compare(class_name, live, merged, status_only=status_only, ignore_status=ignore_status)
    entries = list(current["metadata"].get("managedFields") or [])
    previous = next((fm.from_fields_v1(e.get("fieldsV1")) for e in entries if writer.identifies(e)), set())
    new_entries = apply_entries(entries, writer, claimed, change, force=request.force, now=now)
    owned = set().union(*(fm.from_fields_v1(e.get("fieldsV1")) for e in new_entries))
    merged = prune(merged, previous, owned)
    rv = (config.get("metadata") or {}).get("resourceVersion")
    if rv and str(rv) != current["metadata"]["resourceVersion"]:
        raise st.conflict(rtype.group_resource, rtype.group, rtype.plural, current["metadata"]["name"])
    patched = cluster._from_view(rtype, merged)
    stored = cluster._merge_update(rtype, current, patched, request.subresource, request.manager)
    meta = {k: v for k, v in stored["metadata"].items() if k != "managedFields"}
    stored["metadata"] = {**meta, "managedFields": new_entries} if new_entries else meta
    if not request.dry_run:
        cluster._commit_update(rtype, key, current, stored)
    return stored


def _create(cluster: SimCluster, rtype: ResourceType, namespace: str | None, key: str, config: dict[str, Any],
            writer: fm.Writer, claimed: fm.FieldSet, request: ApplyRequest, now: str) -> Obj:
    # The create path of a real apply: the zero object with the configuration merged in, then
    # the create strategy, admission and validation; the applier is the only manager.
    obj = cluster.create_obj(rtype, namespace, config, manager=request.manager, dry_run=True)
    entries = apply_entries([], writer, claimed, fm.Comparison(), force=False, now=now)
    meta = {k: v for k, v in obj["metadata"].items() if k != "managedFields"}
    if entries:
        meta["managedFields"] = entries
    obj["metadata"] = meta
    if not request.dry_run:
        cluster.store.commit(rtype.store_name, ADDED, key, obj)
    return obj
