"""PATCH bodies: JSON merge patch (RFC 7386), a strategic merge patch good enough for built-in
kinds, and JSON patch (RFC 6902)."""

from __future__ import annotations

import copy
from typing import Any

from kubestream.sim.storage.status import SimApiError, bad_request, failure, unsupported_media_type

MERGE = "application/merge-patch+json"
STRATEGIC = "application/strategic-merge-patch+json"
JSON_PATCH = "application/json-patch+json"
APPLY = "application/apply-patch+yaml"
SUPPORTED = [JSON_PATCH, MERGE, STRATEGIC]
"""The patch types ``apply_patch`` computes."""
PATCH_TYPES = [JSON_PATCH, MERGE, STRATEGIC, APPLY]
"""What a PATCH accepts, in handlers/patch.go order (``application/apply-patch+cbor`` only with the
CBOR feature gate, off by default: 415 like any unsupported type)."""

# patchMergeKey of list fields in core/apps/batch types (k8s.io/api struct tags). Field names
# are unique enough across these kinds that a name-only table suffices here.
_MERGE_KEYS: dict[str, str] = {
    "containers": "name",
    "initContainers": "name",
    "ephemeralContainers": "name",
    "volumes": "name",
    "env": "name",
    "imagePullSecrets": "name",
    "conditions": "type",
    "ports": "containerPort",
    "volumeMounts": "mountPath",
    "volumeDevices": "devicePath",
    "ownerReferences": "uid",
    "hostAliases": "ip",
    "topologySpreadConstraints": "topologyKey",
    "resourceClaims": "name",
}
_PRIMITIVE_MERGE = {"finalizers"}


def merge_patch(target: Any, patch: Any) -> Any:
    """RFC 7386: objects merge recursively, null deletes, anything else replaces."""
    if not isinstance(patch, dict):
        return copy.deepcopy(patch)
    result = dict(target) if isinstance(target, dict) else {}
    for key, value in patch.items():
        if value is None:
            result.pop(key, None)
        else:
            result[key] = merge_patch(result.get(key), value)
    return result


def strategic_merge_patch(target: Any, patch: Any) -> Any:
    """Strategic merge: like merge patch, but lists with a patchMergeKey merge element-wise and
    the ``$patch``/``$setElementOrder``/``$retainKeys``/``$deleteFromPrimitiveList`` directives work."""
    if not isinstance(patch, dict):
        return copy.deepcopy(patch)
    if patch.get("$patch") == "replace":
        return {k: copy.deepcopy(v) for k, v in patch.items() if k != "$patch"}
    if patch.get("$patch") == "delete":
        return None
    result = dict(target) if isinstance(target, dict) else {}
    for key, value in patch.items():
        if key.startswith(("$setElementOrder/", "$retainKeys", "$patch")):
            continue
        if key.startswith("$deleteFromPrimitiveList/"):
            field = key.split("/", 1)[1]
            result[field] = [v for v in result.get(field) or [] if v not in (value or [])]
            continue
        if value is None:
            result.pop(key, None)
        elif isinstance(value, list) and key in _MERGE_KEYS and isinstance(result.get(key), list):
            result[key] = _merge_list(result[key], value, _MERGE_KEYS[key])
        elif isinstance(value, list) and key in _PRIMITIVE_MERGE and isinstance(result.get(key), list):
            result[key] = list(result[key]) + [v for v in value if v not in result[key]]
        elif isinstance(value, dict):
            merged = strategic_merge_patch(result.get(key), value)
            if merged is None:
                result.pop(key, None)
            else:
                result[key] = merged
        else:
            result[key] = copy.deepcopy(value)
    return result


def _merge_list(current: list[Any], patch: list[Any], key: str) -> list[Any]:
    merged = list(current)
    for item in patch:
        if not isinstance(item, dict) or key not in item:
            if isinstance(item, dict) and item.get("$patch") == "replace":
                return [copy.deepcopy(i) for i in patch if i is not item]
            merged.append(copy.deepcopy(item))
            continue
        index = next((i for i, c in enumerate(merged) if isinstance(c, dict) and c.get(key) == item[key]), None)
        if item.get("$patch") == "delete":
            if index is not None:
                merged.pop(index)
        elif index is None:
            merged.append({k: copy.deepcopy(v) for k, v in item.items() if k != "$patch"})
        else:
            merged[index] = strategic_merge_patch(merged[index], item)
    return merged


def _pointer(path: str) -> list[str]:
    if path == "":
        return []
    if not path.startswith("/"):
        raise bad_request(f"the server rejected our request due to an error in our request: invalid JSON pointer {path!r}")
    return [p.replace("~1", "/").replace("~0", "~") for p in path[1:].split("/")]


def _parent(doc: Any, parts: list[str]) -> tuple[Any, str]:
    node = doc
    for part in parts[:-1]:
        node = node[int(part)] if isinstance(node, list) else node[part]
    return node, parts[-1]


def _json_patch_op(doc: Any, op: dict[str, Any]) -> Any:
    kind = op.get("op")
    parts = _pointer(str(op.get("path", "")))
    if kind in ("move", "copy"):
        src_parent, src_key = _parent(doc, _pointer(str(op.get("from", ""))))
        value = src_parent[int(src_key)] if isinstance(src_parent, list) else src_parent[src_key]
        if kind == "move":
            doc = _json_patch_op(doc, {"op": "remove", "path": op["from"]})
        return _json_patch_op(doc, {"op": "add", "path": op["path"], "value": copy.deepcopy(value)})
    if not parts:
        return copy.deepcopy(op.get("value")) if kind in ("add", "replace") else doc
    parent, key = _parent(doc, parts)
    if kind == "test":
        actual = parent[int(key)] if isinstance(parent, list) else parent.get(key)
        if actual != op.get("value"):
            raise SimApiError(failure(422, "Invalid", f"the server rejected our request due to an error in our request: testing value {op.get('path')} failed"))
    elif kind == "remove":
        if isinstance(parent, list):
            parent.pop(int(key))
        else:
            del parent[key]
    elif kind in ("add", "replace"):
        value = copy.deepcopy(op.get("value"))
        if isinstance(parent, list):
            if key == "-":
                parent.append(value)
            elif kind == "add":
                parent.insert(int(key), value)
            else:
                parent[int(key)] = value
        else:
            if kind == "replace" and key not in parent:
                raise KeyError(key)
            parent[key] = value
    else:
        raise bad_request(f"the server rejected our request due to an error in our request: unexpected kind: {kind}")
    return doc


def json_patch(target: Any, ops: Any) -> Any:
    """RFC 6902 JSON patch; a failing operation is a 422 like jsonpatch errors are."""
    if not isinstance(ops, list):
        raise bad_request("the server rejected our request due to an error in our request: json: cannot unmarshal object into Go value of type jsonpatch.Patch")
    doc = copy.deepcopy(target)
    for op in ops:
        try:
            doc = _json_patch_op(doc, op if isinstance(op, dict) else {})
        except (KeyError, IndexError, ValueError, TypeError) as exc:
            raise SimApiError(failure(422, "Invalid", f"the server rejected our request due to an error in our request: {exc!r}")) from exc
    return doc


def apply_patch(content_type: str, target: dict[str, Any], body: Any) -> dict[str, Any]:
    """Apply a PATCH body of the given content type to ``target`` (not modified)."""
    if content_type == JSON_PATCH:
        result = json_patch(target, body)
    elif content_type == MERGE:
        result = merge_patch(target, body)
    elif content_type == STRATEGIC:
        result = strategic_merge_patch(target, body)
    else:
        raise unsupported_media_type(content_type, SUPPORTED)
    if not isinstance(result, dict):
        raise bad_request("the server rejected our request due to an error in our request: patch did not produce an object")
    return result
