"""The top-level ``cluster`` field of a record dict (``cluster.name`` set)."""

from __future__ import annotations

from typing import Any


def with_cluster(item: dict[str, Any], cluster: str) -> dict[str, Any]:
    """``item`` with a top-level ``cluster`` after ``kind`` (a record that names one keeps it)."""
    if "cluster" in item:
        return item
    if "kind" not in item:
        return {"cluster": cluster, **item}
    stamped = {"kind": item["kind"], "cluster": cluster}
    stamped.update(item)  # keeps kind first: updating an existing key keeps its position
    return stamped
