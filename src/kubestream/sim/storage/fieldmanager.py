"""``metadata.managedFields``: which field manager wrote which fields (spec §9.40).

kube-apiserver records every write's fields per manager (apimachinery
``util/managedfields/internal``, structured-merge-diff v4). This module reproduces the parts a
client can see:

- The manager is the request's ``fieldManager`` parameter, else the User-Agent up to its first
  ``/`` (handlers/create.go ``managerOrUserAgent``/``prefixFromUserAgent``).
- An entry is keyed by manager, operation (``Update``/``Apply``), apiVersion and subresource
  (managedfields.go ``BuildManagerIdentifier``; appliers without apiVersion), and entries are sorted
  by operation, time (seconds), manager, apiVersion, subresource (``sortEncodedManagedFields``).
- An Update compares the live object with the new one (typed/compare.go): a leaf that appears or
  changes, and a non-leaf node that appears (absent before: the ``"."`` member), go to the writer;
  removed fields leave every manager, fields the writer changed leave the others (updates are
  forced); a manager left with nothing is dropped; the writer's ``time`` moves only when it gained
  fields (managedfieldsupdater.go).
- On create the live object is the kind's Go zero value, so nodes a zero object already carries
  (a Deployment's ``spec.template``, ``spec.strategy``) never get ``"."``.
- Never tracked: apiVersion, kind and the server-owned metadata (stripmeta.go), the fields the
  strategy resets (``status`` on the main resource, everything but ``status`` on ``/status``:
  ``GetResetFields``), and what the strategy and admission add after the field manager ran (a
  Job's selector and labels, a pod's service account, volumes, tolerations and priority).

Field paths are tuples of path elements in the FieldsV1 spelling: ``f:name``, ``k:{"name":"app"}``
for an item of a keyed list, ``v:"x"`` for a set member. A list is keyed, a set or atomic (one leaf)
as its ``x-kubernetes-list-type``/``patchMergeKey`` says in k8s.io/api (tables below); a struct or
map marked ``+structType=atomic``/``+mapType=atomic`` is one leaf.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from kubestream.sim.storage.schemas import FieldType, fields_of

Path = tuple[str, ...]
FieldSet = set[Path]

_KEYED: dict[tuple[str, str], tuple[str, ...]] = {
    # k8s.io/api core/v1 types.go +listType=map/+listMapKey and patchMergeKey of the served kinds.
    ("V1PodSpec", "containers"): ("name",), ("V1PodSpec", "initContainers"): ("name",),
    ("V1PodSpec", "ephemeralContainers"): ("name",), ("V1PodSpec", "volumes"): ("name",),
    ("V1PodSpec", "imagePullSecrets"): ("name",), ("V1PodSpec", "hostAliases"): ("ip",),
    ("V1PodSpec", "topologySpreadConstraints"): ("topologyKey", "whenUnsatisfiable"),
    ("V1PodSpec", "resourceClaims"): ("name",), ("V1PodSpec", "schedulingGates"): ("name",),
    ("V1Container", "ports"): ("containerPort", "protocol"), ("V1Container", "env"): ("name",),
    ("V1Container", "volumeMounts"): ("mountPath",), ("V1Container", "volumeDevices"): ("devicePath",),
    ("V1EphemeralContainer", "ports"): ("containerPort", "protocol"), ("V1EphemeralContainer", "env"): ("name",),
    ("V1EphemeralContainer", "volumeMounts"): ("mountPath",),
    ("V1EphemeralContainer", "volumeDevices"): ("devicePath",),
    ("V1PodStatus", "conditions"): ("type",), ("V1PodStatus", "podIPs"): ("ip",),
    ("V1PodStatus", "resourceClaimStatuses"): ("name",),
    ("V1ObjectMeta", "ownerReferences"): ("uid",),
    ("V1ServiceSpec", "ports"): ("port", "protocol"),
    ("V1NodeStatus", "addresses"): ("type",), ("V1NodeStatus", "conditions"): ("type",),
    ("V1NamespaceStatus", "conditions"): ("type",),
    ("V1DeploymentStatus", "conditions"): ("type",), ("V1ReplicaSetStatus", "conditions"): ("type",),
    ("V1StatefulSetStatus", "conditions"): ("type",), ("V1DaemonSetStatus", "conditions"): ("type",),
    ("V1PodDisruptionBudgetStatus", "conditions"): ("type",),
}
_SETS = frozenset({("V1ObjectMeta", "finalizers"), ("V1NodeSpec", "podCIDRs")})
"""``+listType=set`` lists of scalars: each member is ``v:<json>``."""
_ATOMIC_MODELS = frozenset({
    # +structType=atomic (metav1 and core/v1): the whole value is one leaf.
    "V1LabelSelector", "V1OwnerReference", "V1ObjectReference", "V1LocalObjectReference",
    "V1TypedLocalObjectReference", "V1NodeSelector", "V1ConfigMapKeySelector", "V1SecretKeySelector",
    "V1ObjectFieldSelector", "V1ResourceFieldSelector", "V1TopologySelectorTerm",
})
_ATOMIC_MAPS = frozenset({("V1PodSpec", "nodeSelector")})
"""``+mapType=atomic`` maps."""
_STRIPPED_META = frozenset({"name", "namespace", "creationTimestamp", "selfLink", "uid", "clusterName",
                            "generation", "managedFields", "resourceVersion"})
"""stripmeta.go: server-owned metadata is never anyone's field."""


@dataclass(slots=True)
class Comparison:
    """typed/compare.go ``Comparison``: paths added, modified and removed by a write."""

    added: FieldSet = field(default_factory=set)
    modified: FieldSet = field(default_factory=set)
    removed: FieldSet = field(default_factory=set)

    def empty(self) -> bool:
        """True when the write changed no tracked field."""
        return not (self.added or self.modified or self.removed)


# -- typed comparison ----------------------------------------------------------------------------

_LEAF = ("leaf",)


def _node(owner: str, name: str, ftype: FieldType) -> tuple[Any, ...]:
    """How a field is walked: leaf, struct, granular map, keyed list or set."""
    if ftype.shape == "model":
        return _LEAF if ftype.name in _ATOMIC_MODELS else ("struct", ftype.name)
    if ftype.shape == "map":
        if (owner, name) in _ATOMIC_MAPS or ftype.item is None:
            return _LEAF
        return ("map", _node(owner, "", ftype.item))
    if ftype.shape == "list" and ftype.item is not None:
        keys = _KEYED.get((owner, name))
        if keys is not None and ftype.item.shape == "model":
            return ("keyed", keys, _node(owner, "", ftype.item))
        if (owner, name) in _SETS:
            return ("set",)
    return _LEAF  # scalars, IntOrString/RawExtension, atomic lists


def item_element(keys: tuple[str, ...], item: Any) -> str:
    """``k:{"containerPort":53,"protocol":"TCP"}``: the key fields, sorted, as compact JSON."""
    values = {k: item[k] for k in sorted(keys) if isinstance(item, dict) and k in item}
    return "k:" + json.dumps(values, separators=(",", ":"), ensure_ascii=False)


def _set_element(value: Any) -> str:
    return "v:" + json.dumps(value, separators=(",", ":"), ensure_ascii=False)


class _Walker:
    def __init__(self, out: Comparison) -> None:
        self.out = out

    def walk(self, node: tuple[Any, ...], old: Any, new: Any, path: Path, has_old: bool, has_new: bool) -> None:
        if has_old and has_new and old == new:
            return  # nothing below changed (the common case on an update: stop at once)
        kind = node[0]
        if kind == "leaf":
            if not has_old:
                self.out.added.add(path)
            elif not has_new:
                self.out.removed.add(path)
            else:
                self.out.modified.add(path)
            return
        if kind == "struct":
            self._struct(node[1], old, new, path)
        elif kind == "map":
            self._map(node[1], old, new, path)
        elif kind == "keyed":
            self._keyed(node[1], node[2], old, new, path)
        else:
            self._set(old, new, path)
        if path:
            if not has_old and has_new:
                self.out.added.add(path)
            elif has_old and not has_new:
                self.out.removed.add(path)

    def _struct(self, class_name: str, old: Any, new: Any, path: Path, skip: Iterable[str] = ()) -> None:
        fields = fields_of(class_name)
        old_d = old if isinstance(old, dict) else {}
        new_d = new if isinstance(new, dict) else {}
        skipped = set(skip)
        for key in {**old_d, **new_d}:
            spec = fields.get(key)
            if spec is None or key in skipped:
                continue  # unknown fields are dropped by the decoder; skipped ones are not tracked
            self.walk(_node(class_name, key, spec.type), old_d.get(key), new_d.get(key), (*path, f"f:{key}"),
                      key in old_d, key in new_d)

    def _map(self, item: tuple[Any, ...], old: Any, new: Any, path: Path) -> None:
        old_d = old if isinstance(old, dict) else {}
        new_d = new if isinstance(new, dict) else {}
        for key in {**old_d, **new_d}:
            self.walk(item, old_d.get(key), new_d.get(key), (*path, f"f:{key}"), key in old_d, key in new_d)

    def _keyed(self, keys: tuple[str, ...], item: tuple[Any, ...], old: Any, new: Any, path: Path) -> None:
        old_items = {item_element(keys, i): i for i in old or [] if isinstance(i, dict)}
        new_items = {item_element(keys, i): i for i in new or [] if isinstance(i, dict)}
        for element in {**old_items, **new_items}:
            self.walk(item, old_items.get(element), new_items.get(element), (*path, element),
                      element in old_items, element in new_items)

    def _set(self, old: Any, new: Any, path: Path) -> None:
        old_s = {_set_element(v) for v in old or []}
        new_s = {_set_element(v) for v in new or []}
        self.out.added.update((*path, e) for e in new_s - old_s)
        self.out.removed.update((*path, e) for e in old_s - new_s)


def compare(class_name: str, old: dict[str, Any], new: dict[str, Any], *, status_only: bool,
            ignore_status: bool) -> Comparison:
    """What a write from ``old`` to ``new`` (API views of kind ``class_name``) changed, without the
    fields nobody manages; ``status_only`` for /status writes, ``ignore_status`` for main-resource
    writes of kinds with a status subresource (the strategies' reset fields)."""
    out = Comparison()
    walker = _Walker(out)
    fields = fields_of(class_name)
    if status_only:
        if "status" in fields:
            walker.walk(_node(class_name, "status", fields["status"].type), old.get("status"), new.get("status"),
                        ("f:status",), "status" in old, "status" in new)
        return out
    skip = ["apiVersion", "kind", "metadata"] + (["status"] if ignore_status else [])
    walker._struct(class_name, old, new, (), skip)
    meta_old, meta_new = old.get("metadata") or {}, new.get("metadata") or {}
    if meta_old != meta_new:
        walker._struct("V1ObjectMeta", meta_old, meta_new, ("f:metadata",), _STRIPPED_META)
    return out


# -- FieldsV1 encoding ---------------------------------------------------------------------------

def _order(element: str) -> tuple[Any, ...]:
    # fieldpath PathElement ordering: "." first; keys by their values (numbers as numbers).
    if element == ".":
        return (0,)
    prefix, body = element[:2], element[2:]
    if prefix == "k:":
        try:
            decoded = json.loads(body)
        except ValueError:
            return (2, body)
        return (2, tuple((k, (0, v, "") if isinstance(v, int | float) else (1, 0, str(v))) for k, v in decoded.items()))
    return (1 if prefix == "f:" else 3, body)


def to_fields_v1(paths: FieldSet) -> dict[str, Any]:
    """A set of paths as the FieldsV1 tree (members with children carry ``"."``)."""
    tree: dict[str, Any] = {}
    members: set[Path] = set(paths)
    for path in sorted(paths, key=len):
        node = tree
        for element in path:
            node = node.setdefault(element, {})
    return _sorted_tree(tree, (), members)


def _sorted_tree(node: dict[str, Any], path: Path, members: set[Path]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    if node and path in members:
        out["."] = {}
    for element in sorted(node, key=_order):
        out[element] = _sorted_tree(node[element], (*path, element), members)
    return out


def from_fields_v1(tree: Any, prefix: Path = ()) -> FieldSet:
    """The set of paths a FieldsV1 tree names (a leaf or a ``"."`` child is a member)."""
    out: FieldSet = set()
    if not isinstance(tree, dict):
        return out
    for element, child in tree.items():
        if element == ".":
            if prefix:
                out.add(prefix)
            continue
        path = (*prefix, element)
        if not child:
            out.add(path)
        else:
            out |= from_fields_v1(child, path)
    return out


# -- the managed state ---------------------------------------------------------------------------

@dataclass(slots=True)
class Writer:
    """Who writes: manager name, operation, the apiVersion written and the subresource."""

    manager: str
    api_version: str
    operation: str = "Update"
    subresource: str | None = None

    def identifies(self, entry: dict[str, Any]) -> bool:
        """True when ``entry`` is this writer's (apply entries ignore the apiVersion)."""
        return (entry.get("manager") == self.manager and entry.get("operation") == self.operation
                and (self.operation == "Apply" or entry.get("apiVersion") == self.api_version)
                and (entry.get("subresource") or None) == self.subresource)


def _entry_key(entry: dict[str, Any]) -> tuple[Any, ...]:
    return (str(entry.get("operation", "")), str(entry.get("time", "")), str(entry.get("manager", "")),
            str(entry.get("apiVersion", "")), str(entry.get("subresource", "")))


def valid_entries(value: Any) -> list[dict[str, Any]] | None:
    """``value`` as managedFields entries if every one decodes (DecodeManagedFields), else None."""
    if not isinstance(value, list):
        return None
    for entry in value:
        if not isinstance(entry, dict) or entry.get("operation") not in ("Apply", "Update"):
            return None
        if not entry.get("apiVersion") or entry.get("fieldsType") != "FieldsV1":
            return None
        if not isinstance(entry.get("fieldsV1", {}), dict):
            return None
    return value


def update(entries: list[dict[str, Any]], writer: Writer, change: Comparison, now: str) -> list[dict[str, Any]]:
    """The managedFields after ``writer``'s write that changed ``change`` (managedfieldsupdater.go:
    forced update: the others lose what was removed or taken; the writer gains what it set)."""
    if change.empty():
        return entries
    taken = change.added | change.modified
    out: list[dict[str, Any]] = []
    own: dict[str, Any] | None = None
    for entry in entries:
        if writer.identifies(entry):
            own = entry
            continue
        fields = entry.get("fieldsV1") or {}
        if change.removed or taken:
            paths = from_fields_v1(fields)
            kept = paths - change.removed - taken
            if not kept:
                continue  # a manager left with nothing is dropped
            if kept != paths:
                entry = {**entry, "fieldsV1": to_fields_v1(kept)}
        out.append(entry)
    own_paths = from_fields_v1(own.get("fieldsV1")) if own is not None else set()
    new_paths = (own_paths - change.removed) | taken
    if new_paths:
        stamp = now if taken else (own or {}).get("time", now)
        entry = {"manager": writer.manager, "operation": writer.operation, "apiVersion": writer.api_version,
                 "time": stamp, "fieldsType": "FieldsV1", "fieldsV1": to_fields_v1(new_paths)}
        if writer.subresource:
            entry["subresource"] = writer.subresource
        out.append(entry)
    out.sort(key=_entry_key)
    return out


def manager_from_request(field_manager: str | None, user_agent: str | None) -> str:
    """handlers/create.go: the ``fieldManager`` parameter, else the User-Agent's first segment
    (printable characters, at most 128 bytes); the recorded requests sent without a User-Agent
    were filed as ``unknown``."""
    if field_manager:
        return field_manager
    prefix = "".join(ch for ch in (user_agent or "").split("/")[0] if ch.isprintable())
    while len(prefix.encode()) > 128:
        prefix = prefix[:-1]
    return prefix or "unknown"


# -- server-side apply: the applied configuration's fields ---------------------------------------

def node_of(owner: str, name: str, ftype: FieldType) -> tuple[Any, ...]:
    """How the field ``name`` of model ``owner`` is walked (leaf, struct, map, keyed list, set)."""
    return _node(owner, name, ftype)


def set_element(value: Any) -> str:
    """``v:"x"``: a member of a ``+listType=set`` list."""
    return _set_element(value)


def _config_fields(node: tuple[Any, ...], value: Any, path: Path, out: FieldSet) -> None:
    # structured-merge-diff typed/tofieldset.go: leaves are members; a list item always is (its
    # "." member when it has children); a struct field with children is not, a map key always is.
    kind = node[0]
    if kind == "leaf" or value is None:
        out.add(path)
    elif kind == "struct" and isinstance(value, dict):
        _struct_fields(node[1], value, path, out, ())
    elif kind == "map" and isinstance(value, dict):
        for key, child in value.items():
            _config_fields(node[1], child, (*path, f"f:{key}"), out)
            out.add((*path, f"f:{key}"))
    elif kind == "keyed" and isinstance(value, list):
        for item in value:
            element = (*path, item_element(node[1], item))
            _config_fields(node[2], item, element, out)
            out.add(element)
    elif kind == "set" and isinstance(value, list):
        out.update((*path, _set_element(v)) for v in value)
    else:
        out.add(path)


def _struct_fields(class_name: str, value: dict[str, Any], path: Path, out: FieldSet, skip: Iterable[str]) -> None:
    fields = fields_of(class_name)
    skipped = set(skip)
    for key, child in value.items():
        spec = fields.get(key)
        if spec is None or key in skipped:
            continue
        child_path = (*path, f"f:{key}")
        _config_fields(_node(class_name, key, spec.type), child, child_path, out)
        if child is None or child == {}:
            out.add(child_path)


def applied_fields(class_name: str, config: dict[str, Any], *, status_only: bool, ignore_status: bool) -> FieldSet:
    """The fields an apply configuration (API form) sets: its applier's whole claim (typed
    ``ToFieldSet``), without apiVersion/kind, server-owned metadata and the strategy's reset fields."""
    out: FieldSet = set()
    if status_only:
        if isinstance(config.get("status"), dict):
            _struct_fields(class_name, {"status": config["status"]}, (), out, ())
        return out
    skip = ["apiVersion", "kind", "metadata"] + (["status"] if ignore_status else [])
    _struct_fields(class_name, config, (), out, skip)
    meta = config.get("metadata")
    if isinstance(meta, dict):
        meta_fields: FieldSet = set()
        _struct_fields("V1ObjectMeta", meta, ("f:metadata",), meta_fields, _STRIPPED_META)
        out |= meta_fields
    return out


def path_string(path: Path) -> str:
    """fieldpath ``Path.String()``: ``.spec.containers[name="c"].image``, ``[="x"]`` for set members."""
    out: list[str] = []
    for element in path:
        prefix, body = element[:2], element[2:]
        if prefix == "f:":
            out.append("." + body)
        elif prefix == "k:":
            try:
                keys = json.loads(body)
            except ValueError:
                keys = {}
            out.append("[" + ",".join(f"{k}={json.dumps(v, ensure_ascii=False)}" for k, v in keys.items()) + "]")
        elif prefix == "v:":
            out.append(f"[={body}]")
    return "".join(out)


def entry_identity(entry: dict[str, Any]) -> str:
    """conflict.go ``printManager``: ``"m"`` for an applier, ``"m" using v1`` for an updater
    (``with subresource "status"`` between), the time left out as ``BuildManagerIdentifier`` does."""
    text = json.dumps(str(entry.get("manager", "")), ensure_ascii=False)
    if entry.get("subresource"):
        text += f" with subresource {json.dumps(entry['subresource'])}"
    if entry.get("operation") == "Update":
        text += f" using {entry.get('apiVersion', '')}"
    return text


def sort_entries(entries: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """managedFields in ``sortEncodedManagedFields`` order."""
    return sorted(entries, key=_entry_key)
