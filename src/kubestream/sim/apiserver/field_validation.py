"""Field validation for create/update/patch with ``fieldValidation=Strict|Warn|Ignore``.

The real server decodes the body with a strict, case-sensitive JSON decoder
(sigs.k8s.io/json) and names each unknown field by its path from the object root:
``spec.foo``, ``spec.containers[0].foo``, ``metadata.labels`` values are free-form. The known
fields come from schemas.py (the official client's generated models), the same source as the
OpenAPI documents, so what ``kubectl explain`` shows is exactly what Strict accepts.
"""

from __future__ import annotations

from typing import Any

from kubestream.sim.storage.resources import ResourceType
from kubestream.sim.storage.schemas import FieldType, fields_of, model_class_name


def unknown_fields(rtype: ResourceType, obj: dict[str, Any]) -> list[str]:
    """Dotted paths of fields the type's schema does not know, e.g. ["spec.foo"].

    In document order (the order the decoder meets them); values of the wrong JSON type are
    not this function's business (the real decoder fails on them with a different message).
    """
    found: list[str] = []
    _walk_model(model_class_name(rtype), obj, "", found)
    return found


def _walk_model(class_name: str, value: dict[str, Any], path: str, found: list[str]) -> None:
    fields = fields_of(class_name)
    for key, child in value.items():
        child_path = f"{path}.{key}" if path else key
        field = fields.get(key)
        if field is None:
            found.append(child_path)
            continue
        _walk_value(field.type, child, child_path, found)


def _walk_value(ftype: FieldType, value: Any, path: str, found: list[str]) -> None:
    if ftype.shape == "model" and isinstance(value, dict):
        _walk_model(ftype.name, value, path, found)
    elif ftype.shape == "list" and isinstance(value, list) and ftype.item is not None:
        for index, item in enumerate(value):
            _walk_value(ftype.item, item, f"{path}[{index}]", found)
    elif ftype.shape == "map" and isinstance(value, dict) and ftype.item is not None:
        for key, item in value.items():
            _walk_value(ftype.item, item, f"{path}.{key}", found)
    # scalars and untyped ("object": IntOrString, RawExtension, FieldsV1) end the walk.
