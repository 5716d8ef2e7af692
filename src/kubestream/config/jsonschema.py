"""The configuration tree as a JSON schema that Helm can check ``values.yaml`` against.

deploy/helm/schema/generate.py puts these definitions into the chart's values.schema.json, so a
typo or an out-of-range value under ``config:`` is refused by ``helm install`` instead of
crash-looping the pods. The schema comes from the settings model itself (pydantic's JSON
schema), reshaped for what Helm needs:

- draft-07, which Helm 3 and Helm 4 both read: ``$defs`` become ``definitions``, ``prefixItems``
  the array form of ``items``; titles (noise in editors and messages) are dropped;
- environment references: kubestream resolves ``${VAR}`` at start, before validation, so every
  non-string option also accepts a string holding ``${`` (and the textual forms pydantic accepts,
  like ``"500"`` for an integer); constrained strings (enums) accept a ``${`` string too;
- readable messages: Helm prints only the failing keyword's default message (``description``
  is not shown, custom messages do not exist), so alternatives are written as ``if``/``then``/
  ``else`` (one message, from the branch that applies) rather than ``anyOf`` (one line per
  branch under "'anyOf' failed").

Rules between options (a bucket required for s3, ...) and the environment checks stay with the
agent: the three ``config`` trees of the chart are merged before the agent reads them.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from typing import Any, Final

from kubestream.config.settings import Settings

__all__ = ["ROOT", "config_definitions"]

ROOT: Final = "kubestreamConfig"
"""Name of the configuration tree's definition; its sections are ``kubestreamConfig.<Model>``."""

_REFERENCE: Final = r"\$\{"
_TEXTUAL: Final[dict[str, str]] = {
    "integer": r"^\s*[-+]?[0-9]+\s*$",
    "number": r"^\s*[-+]?([0-9]+\.?[0-9]*|\.[0-9]+)([eE][-+]?[0-9]+)?\s*$",
    "boolean": r"^(true|false|yes|no|on|off|True|False|Yes|No|On|Off|TRUE|FALSE|YES|NO|ON|OFF|[01tfynTFYN])$",
}
_KEPT_OUTSIDE: Final[tuple[str, ...]] = ("description", "default")


def config_definitions() -> dict[str, Any]:
    """``definitions`` entries: ``kubestreamConfig`` (the root) and one per settings section."""
    schema = Settings.model_json_schema()
    sections = schema.pop("$defs", {})
    definitions = {ROOT: _reshape(schema)}
    for name in sorted(sections):
        definitions[f"{ROOT}.{name}"] = _reshape(sections[name])
    return definitions


def _reshape(node: Any) -> Any:
    if isinstance(node, list):
        return [_reshape(item) for item in node]
    if not isinstance(node, dict):
        return node
    node = {key: value for key, value in node.items() if key != "title"}
    if "$ref" in node:
        node["$ref"] = node["$ref"].replace("#/$defs/", f"#/definitions/{ROOT}.")
        return node
    if "prefixItems" in node:
        node["items"] = node.pop("prefixItems")
    if "properties" in node:
        node["properties"] = {key: _reshape(value) for key, value in node["properties"].items()}
    if "items" in node:
        node["items"] = _reshape(node["items"])
    if "anyOf" in node:
        return _optional(node)
    return _leaf(node)


def _optional(node: dict[str, Any]) -> dict[str, Any]:
    """``X | None``: ``null`` is accepted, anything else must be X (X's own message)."""
    outside = {key: node.pop(key) for key in _KEPT_OUTSIDE if key in node}
    branches = node.pop("anyOf")
    others = [b for b in branches if b != {"type": "null"}]
    if len(others) != 1 or len(others) == len(branches) or node:
        return {**outside, **node, "anyOf": [_reshape(b) for b in branches]}  # not an Optional: as is
    return {**outside, "if": {"type": "null"}, "then": True, "else": _reshape(others[0])}


def _leaf(node: dict[str, Any]) -> dict[str, Any]:
    kind = node.get("type")
    if kind in _TEXTUAL:
        outside = {key: node.pop(key) for key in _KEPT_OUTSIDE if key in node}
        textual = f"{_TEXTUAL[kind]}|{_REFERENCE}"
        return {**outside, "if": {"type": "string"}, "then": {"pattern": textual}, "else": node}
    if kind == "string" and any(key in node for key in ("enum", "const", "pattern")):
        outside = {key: node.pop(key) for key in _KEPT_OUTSIDE if key in node}
        return {**outside, "if": {"type": "string", "pattern": _REFERENCE}, "then": True, "else": node}
    return node


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m kubestream.config.jsonschema``: print the definitions as JSON."""
    parser = argparse.ArgumentParser(prog="python -m kubestream.config.jsonschema", description=__doc__.split("\n")[0])
    parser.parse_args(argv)
    json.dump(config_definitions(), sys.stdout, indent=2)
    sys.stdout.write("\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
