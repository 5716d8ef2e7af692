"""The ``paths`` of an OpenAPI v3 group-version document: one entry per served URL.

Operation ids, tags and ``x-kubernetes-action`` follow the upstream naming scheme
(``patchCoreV1NamespacedPod``, tag ``core_v1``); every mutating operation lists the
``fieldValidation`` query parameter, which is what kubectl probes before relying on
server-side validation.
"""

from __future__ import annotations

from typing import Any

from kubestream.sim.storage.resources import ResourceType
from kubestream.sim.storage.schemas import component_name, model_class_name

_PATCH_TYPES = (
    "application/apply-patch+yaml",
    "application/json-patch+json",
    "application/merge-patch+json",
    "application/strategic-merge-patch+json",
)
_RESPONSE_TYPES = ("application/json", "application/yaml", "application/vnd.kubernetes.protobuf")
_PATCH_REF = "#/components/schemas/io.k8s.apimachinery.pkg.apis.meta.v1.Patch"
_STATUS_CLASS = "V1Status"
_DELETE_OPTIONS_CLASS = "V1DeleteOptions"


def _query(name: str, type_: str, description: str) -> dict[str, Any]:
    return {"name": name, "in": "query", "description": description, "schema": {"type": type_,
                                                                                 "uniqueItems": True}}


_DRY_RUN = _query("dryRun", "string", "When present, the request is validated and processed but "
                  "nothing is persisted. The only valid value is All.")
_FIELD_MANAGER = _query("fieldManager", "string", "Name of the actor making the change, recorded "
                        "in managedFields.")
_FIELD_VALIDATION = _query(
    "fieldValidation", "string",
    "How the server treats unknown or duplicate fields in the request body: Ignore drops them "
    "silently, Warn drops them and returns a Warning header per field, Strict rejects the "
    "request with a BadRequest naming every such field.",
)
_FORCE = _query("force", "boolean", "Apply requests only: take ownership of conflicting fields.")
_PRETTY = _query("pretty", "string", "If 'true', the output is pretty printed.")
_LIST_PARAMS = [
    _query("allowWatchBookmarks", "boolean", "Ask for BOOKMARK events on watches."),
    _query("continue", "string", "Token from a previous page of the same list."),
    _query("fieldSelector", "string", "Restrict the returned objects by their fields."),
    _query("labelSelector", "string", "Restrict the returned objects by their labels."),
    _query("limit", "integer", "Largest number of items in one page."),
    _query("resourceVersion", "string", "Which resource version the list must reflect."),
    _query("resourceVersionMatch", "string", "How resourceVersion is matched."),
    _query("sendInitialEvents", "boolean", "Start a watch with the current state as events."),
    _query("timeoutSeconds", "integer", "Time limit of the list or watch call."),
    _query("watch", "boolean", "Stream changes instead of listing."),
]


def _path_param(name: str, description: str) -> dict[str, Any]:
    return {"name": name, "in": "path", "description": description, "required": True,
            "schema": {"type": "string", "uniqueItems": True}}


def _ref(class_name: str) -> dict[str, str]:
    return {"$ref": f"#/components/schemas/{component_name(class_name)}"}


def _content(schema: dict[str, Any]) -> dict[str, Any]:
    return {mime: {"schema": schema} for mime in _RESPONSE_TYPES}


def _responses(class_name: str, *codes: str) -> dict[str, Any]:
    out: dict[str, Any] = {code: {"description": "OK" if code == "200" else
                                  "Created" if code == "201" else "Accepted",
                                  "content": _content(_ref(class_name))} for code in codes}
    out["401"] = {"description": "Unauthorized"}
    return out


class _Ops:
    """Builds the operations of one resource type."""

    def __init__(self, rtype: ResourceType) -> None:
        self.rtype = rtype
        self.kind_class = model_class_name(rtype)
        self.list_class = f"{self.kind_class}List"
        group_token = rtype.group.split(".")[0].capitalize() if rtype.group else "Core"
        self.prefix = f"{group_token}{rtype.version.capitalize()}"
        self.tag = f"{rtype.group.split('.')[0] if rtype.group else 'core'}_{rtype.version}"
        self.scope = "Namespaced" if rtype.namespaced else ""

    def op(self, verb: str, action: str, op_name: str, description: str,
           responses: dict[str, Any], params: list[dict[str, Any]],
           body: dict[str, Any] | None = None) -> dict[str, Any]:
        operation: dict[str, Any] = {
            "tags": [self.tag],
            "description": description,
            "operationId": f"{verb}{self.prefix}{op_name}",
            "parameters": params,
            "responses": responses,
            "x-kubernetes-action": action,
            "x-kubernetes-group-version-kind": {
                "group": self.rtype.group, "version": self.rtype.version, "kind": self.rtype.kind,
            },
        }
        if body is not None:
            operation["requestBody"] = {"content": body, "required": True}
        return operation

    def write_ops(self, name: str, what: str) -> dict[str, Any]:
        """get/put/patch of the object (or of a subresource: ``name`` = ``NamespacedPodStatus``)."""
        kind_body = {"*/*": {"schema": _ref(self.kind_class)}}
        patch_body = {mime: {"schema": {"$ref": _PATCH_REF}} for mime in _PATCH_TYPES}
        writes = [_DRY_RUN, _FIELD_MANAGER, _FIELD_VALIDATION]
        return {
            "get": self.op("read", "get", name, f"read {what}",
                           _responses(self.kind_class, "200"), []),
            "put": self.op("replace", "put", name, f"replace {what}",
                           _responses(self.kind_class, "200", "201"), writes, kind_body),
            "patch": self.op("patch", "patch", name, f"partially update {what}",
                             _responses(self.kind_class, "200", "201"), [*writes, _FORCE],
                             patch_body),
        }


def paths_for(rtype: ResourceType) -> dict[str, Any]:
    """Every path of one resource type: collection, object, all-namespaces list, subresources."""
    ops = _Ops(rtype)
    base = f"/apis/{rtype.group}/{rtype.version}" if rtype.group else f"/api/{rtype.version}"
    scoped = f"{base}/namespaces/{{namespace}}/{rtype.plural}" if rtype.namespaced else \
        f"{base}/{rtype.plural}"
    common = [_path_param("namespace", "object name and auth scope")] if rtype.namespaced else []
    name_param = _path_param("name", f"name of the {rtype.kind}")
    kind_name = f"{ops.scope}{rtype.kind}"
    delete_body = {"*/*": {"schema": _ref(_DELETE_OPTIONS_CLASS)}}
    paths: dict[str, Any] = {
        scoped: {
            "get": ops.op("list", "list", kind_name, f"list or watch objects of kind {rtype.kind}",
                          _responses(ops.list_class, "200"), _LIST_PARAMS),
            "post": ops.op("create", "post", kind_name, f"create a {rtype.kind}",
                           _responses(ops.kind_class, "200", "201", "202"),
                           [_DRY_RUN, _FIELD_MANAGER, _FIELD_VALIDATION],
                           {"*/*": {"schema": _ref(ops.kind_class)}}),
            "delete": ops.op("delete", "deletecollection", f"Collection{kind_name}",
                             f"delete collection of {rtype.kind}",
                             _responses(_STATUS_CLASS, "200"), [_DRY_RUN, *_LIST_PARAMS],
                             delete_body),
            "parameters": [*common, _PRETTY],
        },
        f"{scoped}/{{name}}": {
            **ops.write_ops(kind_name, f"the specified {rtype.kind}"),
            "delete": ops.op("delete", "delete", kind_name, f"delete a {rtype.kind}",
                             _responses(ops.kind_class, "200", "202"), [_DRY_RUN], delete_body),
            "parameters": [name_param, *common, _PRETTY],
        },
    }
    if rtype.namespaced:
        paths[f"{base}/{rtype.plural}"] = {
            "get": ops.op("list", "list", f"{rtype.kind}ForAllNamespaces",
                          f"list or watch objects of kind {rtype.kind}",
                          _responses(ops.list_class, "200"), _LIST_PARAMS),
            "parameters": [_PRETTY],
        }
    if "status" in rtype.subresources:
        paths[f"{scoped}/{{name}}/status"] = {
            **ops.write_ops(f"{kind_name}Status", f"status of the specified {rtype.kind}"),
            "parameters": [name_param, *common, _PRETTY],
        }
    return paths
