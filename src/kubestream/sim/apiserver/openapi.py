"""OpenAPI v3: the /openapi/v3 index and per group-version documents (spec §6, `create -f`).

kubectl needs two things from these documents (cli-runtime ``query_param_verifier_v3.go``):
a PATCH operation tagged ``x-kubernetes-group-version-kind`` for the object's kind, whose
parameters include the ``fieldValidation`` query parameter. Finding it, kubectl leaves
validation to the server and sends ``fieldValidation=Strict``; without it kubectl falls back
to OpenAPI v2 and client-side validation. ``kubectl explain`` reads the component schemas,
which are generated from the official client's models (schemas.py), not written by hand.

Documents are built once per process and cached; callers must treat them as read-only.
"""

from __future__ import annotations

import functools
import hashlib
import json
from typing import Any

from kubestream.sim.apiserver.discovery_docs import GIT_VERSION
from kubestream.sim.apiserver.openapi_paths import paths_for
from kubestream.sim.storage.resources import RESOURCES, ResourceType, group_versions
from kubestream.sim.storage.schemas import (
    FieldType,
    class_description,
    closure,
    component_name,
    fields_of,
    model_class_name,
)

_SCALAR_SCHEMAS: dict[str, dict[str, str]] = {
    "str": {"type": "string"},
    "int": {"type": "integer"},
    "bool": {"type": "boolean"},
    "float": {"type": "number", "format": "double"},
    "datetime": {"type": "string", "format": "date-time"},
    "date": {"type": "string", "format": "date"},
    "bytes": {"type": "string", "format": "byte"},
}

# Operation bodies refer to these meta types besides the kinds themselves.
_OPERATION_MODELS = ("V1Status", "V1DeleteOptions")
_PATCH_SCHEMA = "io.k8s.apimachinery.pkg.apis.meta.v1.Patch"


def gv_path(group: str, version: str) -> str:
    """Index key of a group version: ``api/v1`` or ``apis/apps/v1``."""
    return f"apis/{group}/{version}" if group else f"api/{version}"


def v3_index() -> dict[str, Any]:
    """{"paths": {"api/v1": {"serverRelativeURL": "/openapi/v3/api/v1?hash=..."}, ...}}."""
    paths = {}
    for group, version in group_versions():
        path = gv_path(group, version)
        paths[path] = {"serverRelativeURL": f"/openapi/v3/{path}?hash={document_hash(path)}"}
    return {"paths": paths}


def v3_document(gv_path: str) -> dict[str, Any] | None:
    """The document for "api/v1" or "apis/apps/v1"; None if not served. Read-only."""
    return _documents().get(gv_path.strip("/"))


def document_hash(gv_path: str) -> str:
    """Content hash used in ``serverRelativeURL`` (upper-case hex SHA-512, like the real etag).

    It changes exactly when the document's content does, so clients may cache by URL.
    """
    return _hashes()[gv_path.strip("/")]


@functools.cache
def _documents() -> dict[str, dict[str, Any]]:
    return {gv_path(g, v): _build_document(g, v) for g, v in group_versions()}


@functools.cache
def _hashes() -> dict[str, str]:
    out = {}
    for path, doc in _documents().items():
        canonical = json.dumps(doc, sort_keys=True, separators=(",", ":")).encode()
        out[path] = hashlib.sha512(canonical).hexdigest().upper()
    return out


def _build_document(group: str, version: str) -> dict[str, Any]:
    served = [r for r in RESOURCES if r.group == group and r.version == version]
    paths: dict[str, Any] = {}
    for rtype in served:
        paths.update(paths_for(rtype))
    return {
        "openapi": "3.0.0",
        "info": {"title": "Kubernetes", "version": GIT_VERSION.split("-")[0]},
        "paths": paths,
        "components": {"schemas": _schemas_for(served)},
    }


def list_class_name(rtype: ResourceType) -> str:
    """Generated class of the list kind: ``V1PodList``, ``CoreV1EventList``."""
    return f"{model_class_name(rtype)}List"


def _schemas_for(served: list[ResourceType]) -> dict[str, Any]:
    kinds: dict[str, ResourceType] = {}
    for rtype in served:
        kinds[model_class_name(rtype)] = rtype
        kinds[list_class_name(rtype)] = rtype
    schemas: dict[str, Any] = {}
    for class_name in closure([*kinds, *_OPERATION_MODELS]):
        schema = _object_schema(class_name)
        owner = kinds.get(class_name)
        if owner is not None:
            kind = owner.list_kind if class_name.endswith("List") else owner.kind
            schema["x-kubernetes-group-version-kind"] = [
                {"group": owner.group, "kind": kind, "version": owner.version}
            ]
        schemas[component_name(class_name)] = schema
    schemas[_PATCH_SCHEMA] = {
        "description": "Patch is provided to give a concrete name and type to the Kubernetes "
                       "PATCH request body.",
        "type": "object",
    }
    return dict(sorted(schemas.items()))


# Strategic-merge metadata of list fields, from the struct tags of k8s.io/api core/v1 types.go
# (`patchStrategy:"merge" patchMergeKey:"name"` …), which the real documents publish as
# x-kubernetes-patch-strategy / x-kubernetes-patch-merge-key. kubectl's client-side apply reads them
# from /openapi/v3: without them it treats these lists as atomic and re-sends a whole container
# list whenever the server defaulted a field inside it.
_PATCH_MERGE_KEYS: dict[tuple[str, str], str] = {
    ("V1PodSpec", "containers"): "name",
    ("V1PodSpec", "initContainers"): "name",
    ("V1PodSpec", "ephemeralContainers"): "name",
    ("V1PodSpec", "volumes"): "name",
    ("V1PodSpec", "imagePullSecrets"): "name",
    ("V1PodSpec", "hostAliases"): "ip",
    ("V1Container", "env"): "name",
    ("V1Container", "ports"): "containerPort",
    ("V1Container", "volumeMounts"): "mountPath",
    ("V1Container", "volumeDevices"): "devicePath",
    ("V1EphemeralContainer", "env"): "name",
    ("V1EphemeralContainer", "ports"): "containerPort",
    ("V1EphemeralContainer", "volumeMounts"): "mountPath",
    ("V1ObjectMeta", "ownerReferences"): "uid",
    ("V1PodStatus", "conditions"): "type",
    ("V1NodeStatus", "conditions"): "type",
    ("V1NodeStatus", "addresses"): "type",
}


def _object_schema(class_name: str) -> dict[str, Any]:
    fields = fields_of(class_name)
    schema: dict[str, Any] = {"description": class_description(class_name), "type": "object"}
    required = sorted(f.json_name for f in fields.values() if f.required)
    if required:
        schema["required"] = required
    schema["properties"] = {
        name: _property_schema(f.type, f.description) for name, f in fields.items()
    }
    for name, prop in schema["properties"].items():
        if (key := _PATCH_MERGE_KEYS.get((class_name, name))) is not None:
            prop["x-kubernetes-patch-merge-key"] = key
            prop["x-kubernetes-patch-strategy"] = "merge"
    return schema


def _property_schema(ftype: FieldType, description: str) -> dict[str, Any]:
    schema = _type_schema(ftype)
    if description:
        schema["description"] = description
    return schema


def _type_schema(ftype: FieldType) -> dict[str, Any]:
    if ftype.shape == "scalar":
        return dict(_SCALAR_SCHEMAS[ftype.name])
    if ftype.shape == "model":
        # allOf-wrapped refs, as the real v3 documents write them (a bare $ref can't carry a
        # description next to it in OpenAPI 3.0). The real documents also add "default": {},
        # which fails OpenAPI validation where the target has required fields; left out.
        return {"allOf": [{"$ref": f"#/components/schemas/{component_name(ftype.name)}"}]}
    if ftype.shape == "list" and ftype.item is not None:
        return {"type": "array", "items": _type_schema(ftype.item)}
    if ftype.shape == "map" and ftype.item is not None:
        return {"type": "object", "additionalProperties": _type_schema(ftype.item)}
    # "object" in the generated client: IntOrString, RawExtension or FieldsV1 (see schemas.py).
    return {}
