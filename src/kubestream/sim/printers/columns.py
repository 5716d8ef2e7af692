"""Building blocks of Table printers: column definitions and their API-doc descriptions."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from kubestream.sim.storage.schemas import fields_of

NONE = "<none>"
"""What the real printers show for an empty optional cell."""


@dataclass(frozen=True, slots=True)
class Column:
    """One ``TableColumnDefinition``; priority 1 columns show only with ``-o wide``."""

    name: str
    type: str
    description: str
    priority: int = 0
    format: str = ""

    def to_json(self) -> dict[str, Any]:
        """The column as the server serialises it (all five keys, ``format`` may be "")."""
        return {"name": self.name, "type": self.type, "format": self.format,
                "description": self.description, "priority": self.priority}


def doc(class_name: str, field: str) -> str:
    """The API doc of one field, e.g. ``doc("V1ObjectMeta", "name")`` (generated models)."""
    found = fields_of(class_name).get(field)
    return found.description if found is not None else ""


def name_column(priority: int = 0) -> Column:
    """The NAME column every printer starts with (events put it last, at priority 1)."""
    return Column("Name", "string", doc("V1ObjectMeta", "name"), priority, format="name")


def age_column() -> Column:
    """The AGE column: the object's creationTimestamp as a human duration."""
    return Column("Age", "string", doc("V1ObjectMeta", "creationTimestamp"))


def meta(obj: dict[str, Any]) -> dict[str, Any]:
    """``obj["metadata"]``, or {} when absent or not an object."""
    value = obj.get("metadata")
    return value if isinstance(value, dict) else {}


def section(obj: dict[str, Any], key: str) -> dict[str, Any]:
    """``obj[key]`` for object-valued keys such as spec/status, {} when absent or null."""
    value = obj.get(key)
    return value if isinstance(value, dict) else {}


def as_int(value: Any, default: int = 0) -> int:
    """An integer cell value; null or junk (objects are not validated) reads as ``default``."""
    if isinstance(value, bool):
        return default
    try:
        return int(value)
    except (TypeError, ValueError):
        return default


def dicts(value: Any) -> list[dict[str, Any]]:
    """The object items of a list field; anything else reads as empty.

    Stored objects are only checked for unknown fields, not types, so printers must not fail
    on ``"containers": ["x"]``: the real server would have refused it, ours prints it blankly.
    """
    return [item for item in value if isinstance(item, dict)] if isinstance(value, list) else []
