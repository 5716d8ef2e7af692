"""meta.k8s.io/v1 Table responses when Accept asks for ``as=Table`` (spec §6, checklist 33).

kubectl asks for ``application/json;as=Table;v=v1;g=meta.k8s.io`` first and prints the
server's columns; a plain list would only give NAME/AGE. Rows carry the object as
``PartialObjectMetadata`` (the v1 default ``includeObject=Metadata``). In a watch, only the
first event's Table has column definitions; later ones send ``"columnDefinitions": null``
(Go's nil slice without omitempty), which is what ``include_headers=False`` produces.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from kubestream.sim.apiserver.negotiation import parse_accept
from kubestream.sim.printers.registry import printer_for
from kubestream.sim.storage.resources import ResourceType

TABLE_API_VERSION = "meta.k8s.io/v1"
_TABLE_VERSIONS = ("v1", "v1beta1")


def wants_table(accept: str) -> bool:
    """True when the Accept header lists ``as=Table`` (v1 or v1beta1) before plain JSON."""
    for media in parse_accept(accept):
        if media.mime == "application/json" and any(
            media.names("meta.k8s.io", v, "Table") for v in _TABLE_VERSIONS
        ):
            return True
        if media.is_plain_json:
            return False
    return False


def to_table(
    rtype: ResourceType,
    objects: list[dict[str, Any]],
    *,
    include_headers: bool,
    list_meta: dict[str, Any] | None,
    now: datetime | None = None,
) -> dict[str, Any]:
    """A Table of ``objects`` (rows carry PartialObjectMetadata); headers only if asked.

    ``list_meta`` becomes the Table's metadata (resourceVersion, continue,
    remainingItemCount); ``now`` is the clock AGE cells are measured against (the server's
    clock; wall time if omitted).
    """
    printer = printer_for(rtype.kind)
    moment = now or datetime.now(UTC)
    rows = []
    for obj in objects:
        row: dict[str, Any] = {"cells": printer.cells(obj, moment), "object": _partial(obj)}
        conditions = printer.conditions(obj)
        if conditions:
            row["conditions"] = conditions
        rows.append(row)
    return {
        "kind": "Table",
        "apiVersion": TABLE_API_VERSION,
        "metadata": dict(list_meta or {}),
        "columnDefinitions": [c.to_json() for c in printer.columns] if include_headers else None,
        "rows": rows,
    }


def _partial(obj: dict[str, Any]) -> dict[str, Any]:
    return {"kind": "PartialObjectMetadata", "apiVersion": TABLE_API_VERSION,
            "metadata": obj.get("metadata") or {}}
