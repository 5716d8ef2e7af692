"""One stored Event, two API views (spec §5): the store keeps the core/v1 form; events.k8s.io/v1
reads and writes are converted with the ``pkg/apis/events/v1/conversion.go`` field mapping."""

from __future__ import annotations

from typing import Any

# events.k8s.io/v1 name → core/v1 name; every other field keeps its name (spec §5 Mapping).
_V1_TO_CORE = {
    "regarding": "involvedObject",
    "note": "message",
    "deprecatedSource": "source",
    "deprecatedFirstTimestamp": "firstTimestamp",
    "deprecatedLastTimestamp": "lastTimestamp",
    "deprecatedCount": "count",
    "reportingController": "reportingComponent",
}
_CORE_TO_V1 = {core: v1 for v1, core in _V1_TO_CORE.items()}

# Go struct field order of core/v1 Event, to serialise like the real server.
_CORE_ORDER = (
    "metadata", "involvedObject", "reason", "message", "source", "firstTimestamp", "lastTimestamp",
    "count", "type", "eventTime", "series", "action", "related", "reportingComponent", "reportingInstance",
)
_V1_ORDER = (
    "metadata", "eventTime", "series", "reportingController", "reportingInstance", "action", "reason",
    "regarding", "related", "note", "type", "deprecatedSource", "deprecatedFirstTimestamp",
    "deprecatedLastTimestamp", "deprecatedCount",
)
# Fields Go always writes: structs (no omitempty effect), metav1.Time/MicroTime zero → null,
# and core's reportingComponent/reportingInstance which have no omitempty (spec §5).
_CORE_ALWAYS: dict[str, Any] = {
    "involvedObject": {}, "source": {}, "firstTimestamp": None, "lastTimestamp": None,
    "eventTime": None, "reportingComponent": "", "reportingInstance": "",
}
_V1_ALWAYS: dict[str, Any] = {
    "eventTime": None, "regarding": {}, "deprecatedSource": {},
    "deprecatedFirstTimestamp": None, "deprecatedLastTimestamp": None,
}
_EMPTY_DROPPED = ("", 0, None)


def _ordered(obj: dict[str, Any], order: tuple[str, ...], always: dict[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key in order:
        if key in obj and (obj[key] not in _EMPTY_DROPPED or key in always):
            out[key] = obj[key]
        elif key in always:
            out[key] = always[key]
    for key, value in obj.items():  # unknown extras are kept at the end
        if key not in out and key not in order:
            out[key] = value
    return out


def core_view(stored: dict[str, Any]) -> dict[str, Any]:
    """The core/v1 Event body (without kind/apiVersion) for a stored event."""
    return _ordered(stored, _CORE_ORDER, _CORE_ALWAYS)


def v1_view(stored: dict[str, Any]) -> dict[str, Any]:
    """The events.k8s.io/v1 Event body (without kind/apiVersion) for a stored event."""
    renamed = {_CORE_TO_V1.get(k, k): v for k, v in stored.items()}
    return _ordered(renamed, _V1_ORDER, _V1_ALWAYS)


def from_v1(body: dict[str, Any]) -> dict[str, Any]:
    """An events.k8s.io/v1 body converted to the stored core/v1 form."""
    return {_V1_TO_CORE.get(k, k): v for k, v in body.items()}


def core_field_source(stored: dict[str, Any]) -> str:
    """The ``source`` field-selector value: source.component, else reportingController (spec §4)."""
    component = (stored.get("source") or {}).get("component") or ""
    return str(component or stored.get("reportingComponent") or "")
