"""Type schemas of the served kinds, derived from the official Python client's generated models.

The ``kubernetes`` package (the pinned 37.0.2) is generated from the upstream OpenAPI document;
every model class keeps that document's shape in ``openapi_types`` (python attribute → type
expression such as ``List[V1Container]``), ``attribute_map`` (python attribute → JSON key) and
pydantic ``model_fields`` (description, required). Walking those gives field-accurate schemas
for OpenAPI (apiserver/openapi.py) and strict field validation (apiserver/field_validation.py)
from one source, instead of a hand-written copy that would drift.

What the generated client does not keep, and how it is approximated here:
- Go package names: components are named ``io.k8s.api.<group>.<version>.<Kind>`` by the first
  served (or well-known core) kind that reaches the type, meta types by a fixed list.
- ``IntOrString``, ``FieldsV1`` and ``RawExtension`` all collapse to ``object``: they become
  untyped schemas, and validation does not descend into them (the real server doesn't either
  for FieldsV1/RawExtension).
"""

from __future__ import annotations

import functools
import re
from collections import deque
from dataclasses import dataclass
from typing import Any, Literal

from kubernetes.client import models as k8s_models

from kubestream.sim.storage.resources import RESOURCES, ResourceType

_SCALARS = frozenset({"str", "int", "bool", "float", "datetime", "date", "bytes"})
_LIST = re.compile(r"^List\[(?P<inner>.+)\]$")
_MAP = re.compile(r"^Dict\[str, (?P<inner>.+)\]$")
# "CoreV1EventSeries" → "EventSeries", "V1PodSpec" → "PodSpec", "V1beta1X" → "X".
_CLASS_PREFIX = re.compile(r"^(?:[A-Z][a-z]+)*V\d+(?:(?:alpha|beta)\d+)?(?=[A-Z])")

_META_KINDS = frozenset({
    "ObjectMeta", "ListMeta", "LabelSelector", "LabelSelectorRequirement", "OwnerReference",
    "ManagedFieldsEntry", "Status", "StatusDetails", "StatusCause", "DeleteOptions",
    "Preconditions", "Condition", "APIResource", "APIResourceList", "WatchEvent", "Patch",
})
_META_PACKAGE = "io.k8s.apimachinery.pkg.apis.meta.v1"

# Core types that only non-core kinds reach (pod templates of workloads, claim templates of
# StatefulSets); walking them first files their dependencies under core/v1 as upstream does.
_EXTRA_CORE_ROOTS = ("V1PodTemplate", "V1PersistentVolumeClaim", "V1Endpoints")

# kinds whose Python class is not plain "V1<Kind>" because two groups share the kind name.
_CLASS_OVERRIDES = {("", "Event"): "CoreV1Event", ("events.k8s.io", "Event"): "EventsV1Event"}


@dataclass(frozen=True, slots=True)
class FieldType:
    """One parsed ``openapi_types`` expression."""

    shape: Literal["scalar", "model", "list", "map", "any"]
    name: str = ""
    """The scalar (``str``, ``int``, …) or model class name; empty for list/map/any."""
    item: FieldType | None = None
    """Element type of a list or value type of a map."""


@dataclass(frozen=True, slots=True)
class Field:
    """One property of a model: its JSON key, type, doc and whether it is required."""

    json_name: str
    type: FieldType
    description: str
    required: bool


def parse_type(expr: str) -> FieldType:
    """Parse a generated type expression (``List[Dict[str, V1X]]``, ``object``, ``str``)."""
    if expr in _SCALARS:
        return FieldType("scalar", expr)
    if expr == "object":
        return FieldType("any")
    if (m := _LIST.match(expr)) is not None:
        return FieldType("list", item=parse_type(m["inner"]))
    if (m := _MAP.match(expr)) is not None:
        return FieldType("map", item=parse_type(m["inner"]))
    return FieldType("model", expr)


def model_class_name(rtype: ResourceType) -> str:
    """The generated Python class of a served kind, e.g. ``V1Pod`` or ``EventsV1Event``."""
    return _CLASS_OVERRIDES.get((rtype.group, rtype.kind), f"V1{rtype.kind}")


def _model(name: str) -> Any:
    cls = getattr(k8s_models, name, None)
    if cls is None or not isinstance(getattr(cls, "openapi_types", None), dict):
        raise KeyError(f"no generated model {name!r} in kubernetes.client.models")
    return cls


@functools.cache
def fields_of(class_name: str) -> dict[str, Field]:
    """The model's properties keyed by JSON name, in the generator's (alphabetical) order."""
    cls = _model(class_name)
    out: dict[str, Field] = {}
    for attr, expr in cls.openapi_types.items():
        json_name = cls.attribute_map[attr]
        info = cls.model_fields.get(attr)
        out[json_name] = Field(
            json_name=json_name,
            type=parse_type(expr),
            description=(info.description or "") if info is not None else "",
            required=bool(info is not None and info.is_required()),
        )
    return out


def class_description(class_name: str) -> str:
    """The type's own doc (first paragraph of the generated class docstring)."""
    doc = _model(class_name).__doc__ or ""
    return doc.strip().split("\n\n")[0].strip()


def referenced_models(class_name: str) -> list[str]:
    """Model classes a model's fields refer to directly (through lists and maps too)."""
    refs: list[str] = []
    for f in fields_of(class_name).values():
        t: FieldType | None = f.type
        while t is not None and t.shape in ("list", "map"):
            t = t.item
        if t is not None and t.shape == "model" and t.name not in refs:
            refs.append(t.name)
    return refs


def closure(roots: list[str]) -> list[str]:
    """Every model reachable from ``roots`` (roots included), breadth first."""
    seen: dict[str, None] = {}
    queue = deque(roots)
    while queue:
        name = queue.popleft()
        if name in seen:
            continue
        seen[name] = None
        queue.extend(referenced_models(name))
    return list(seen)


def short_kind(class_name: str) -> str:
    """``CoreV1EventSeries`` → ``EventSeries``."""
    return _CLASS_PREFIX.sub("", class_name, count=1)


def _package(group: str, version: str) -> str:
    # Go packages are named after the group's first DNS label ("events.k8s.io" → events).
    return f"io.k8s.api.{group.split('.')[0] if group else 'core'}.{version}"


@functools.cache
def _component_names() -> dict[str, str]:
    names: dict[str, str] = {}
    ordered = sorted(RESOURCES, key=lambda r: r.group != "")  # core first, stable otherwise
    roots: list[tuple[str, str]] = [(model_class_name(r), _package(r.group, r.version)) for r in ordered]
    core_count = sum(1 for r in RESOURCES if r.group == "")
    for extra in reversed(_EXTRA_CORE_ROOTS):
        roots.insert(core_count, (extra, _package("", "v1")))
    for root, package in roots:
        for name in closure([root]):
            if name in names:
                continue
            kind = short_kind(name)
            names[name] = f"{_META_PACKAGE}.{kind}" if kind in _META_KINDS else f"{package}.{kind}"
    return names


def component_name(class_name: str) -> str:
    """Upstream-style schema name, e.g. ``V1PodSpec`` → ``io.k8s.api.core.v1.PodSpec``."""
    names = _component_names()
    if class_name in names:
        return names[class_name]
    kind = short_kind(class_name)
    return f"{_META_PACKAGE}.{kind}" if kind in _META_KINDS else f"io.k8s.api.core.v1.{kind}"
