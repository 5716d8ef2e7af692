"""Decode raw Event JSON (core/v1 or events.k8s.io/v1) into a slim, API-neutral struct.

Never through the official client's models: its ``EventsV1Event`` rejects the ``eventTime: null``
that real servers send for events created through core/v1 (spec §5). Both APIs serve the same
stored object (same name, uid and resourceVersion), so one struct describes either.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

CORE_V1 = "core/v1"
EVENTS_V1 = "events.k8s.io/v1"


@dataclass(frozen=True, slots=True)
class ObjectRef:
    """The object an event is about (``involvedObject``/``regarding``) or ``related``."""

    kind: str
    name: str
    namespace: str
    uid: str
    api_version: str
    field_path: str
    resource_version: str

    def as_dict(self) -> dict[str, str]:
        return {
            "kind": self.kind,
            "name": self.name,
            "namespace": self.namespace,
            "uid": self.uid,
            "api_version": self.api_version,
            "field_path": self.field_path,
            "resource_version": self.resource_version,
        }


@dataclass(frozen=True, slots=True)
class DecodedEvent:
    """One Event object as kubestream needs it. Timestamps are normalised RFC 3339 UTC strings
    with microseconds (``2024-01-02T03:04:05.000000Z``) so they sort as strings, or None."""

    api: str
    uid: str
    name: str
    namespace: str
    resource_version: int
    reason: str
    message: str
    type: str
    action: str
    count: int | None
    series_count: int | None
    series_last_observed: str | None
    first_timestamp: str | None
    last_timestamp: str | None
    event_time: str | None
    creation_timestamp: str | None
    reporting_controller: str
    reporting_instance: str
    source_component: str
    source_host: str
    involved: ObjectRef
    related: ObjectRef | None

    @property
    def occurrences(self) -> int:
        """Occurrences so far: ``series.count`` if there is a series, else ``count``, else 1."""
        if self.series_count is not None:
            return self.series_count
        if self.count:
            return self.count
        return 1

    @property
    def occurred_at(self) -> str | None:
        """When the latest occurrence happened (the record's timestamp)."""
        return (
            self.series_last_observed
            or self.last_timestamp
            or self.event_time
            or self.first_timestamp
            or self.creation_timestamp
        )


def normalize_time(value: Any) -> str | None:
    """RFC 3339 (seconds or fractional, ``Z`` or offset) → ``YYYY-MM-DDTHH:MM:SS.ffffffZ`` UTC.

    A fixed width matters: ``...05Z`` and ``...05.5Z`` would sort wrongly as strings.
    Unparseable or empty values become None rather than failing the whole event.
    """
    if not isinstance(value, str) or not value:
        return None
    try:
        parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=UTC)
    return parsed.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def rfc3339_to_epoch(value: str) -> float:
    """Seconds since the epoch of a normalised timestamp."""
    return datetime.fromisoformat(value.replace("Z", "+00:00")).timestamp()


def epoch_to_rfc3339(epoch: float) -> str:
    """A normalised timestamp for ``epoch`` seconds."""
    return datetime.fromtimestamp(epoch, UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def _str(value: Any) -> str:
    return value if isinstance(value, str) else ""


def _int_or_none(value: Any) -> int | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    return None


def _dict(value: Any) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


def _ref(raw: Any) -> ObjectRef:
    ref = _dict(raw)
    return ObjectRef(
        kind=_str(ref.get("kind")),
        name=_str(ref.get("name")),
        namespace=_str(ref.get("namespace")),
        uid=_str(ref.get("uid")),
        api_version=_str(ref.get("apiVersion")),
        field_path=_str(ref.get("fieldPath")),
        resource_version=_str(ref.get("resourceVersion")),
    )


def _resource_version(meta: dict[str, Any]) -> int:
    try:
        return int(_str(meta.get("resourceVersion")) or 0)
    except ValueError:
        # RVs are decimal integers in practice (spec §3); an opaque one cannot be ordered.
        return 0


def decode_event(raw: dict[str, Any], api: str = CORE_V1) -> DecodedEvent:
    """Decode one Event object as served by ``api`` (``core/v1`` or ``events.k8s.io/v1``)."""
    meta = _dict(raw.get("metadata"))
    series = raw.get("series")
    series_dict = series if isinstance(series, dict) else None
    if api == EVENTS_V1:
        involved_raw, message = raw.get("regarding"), raw.get("note")
        source = _dict(raw.get("deprecatedSource"))
        count = raw.get("deprecatedCount")
        first, last = raw.get("deprecatedFirstTimestamp"), raw.get("deprecatedLastTimestamp")
        reporting_controller = raw.get("reportingController")
    else:
        involved_raw, message = raw.get("involvedObject"), raw.get("message")
        source = _dict(raw.get("source"))
        count = raw.get("count")
        first, last = raw.get("firstTimestamp"), raw.get("lastTimestamp")
        # core/v1 serialises Go's ReportingController as "reportingComponent" (spec §5).
        reporting_controller = raw.get("reportingComponent")
    related = raw.get("related")
    return DecodedEvent(
        api=api,
        uid=_str(meta.get("uid")),
        name=_str(meta.get("name")),
        namespace=_str(meta.get("namespace")),
        resource_version=_resource_version(meta),
        reason=_str(raw.get("reason")),
        message=_str(message),
        type=_str(raw.get("type")),
        action=_str(raw.get("action")),
        count=_int_or_none(count),
        series_count=_int_or_none(series_dict.get("count")) if series_dict is not None else None,
        series_last_observed=normalize_time(series_dict.get("lastObservedTime")) if series_dict else None,
        first_timestamp=normalize_time(first),
        last_timestamp=normalize_time(last),
        event_time=normalize_time(raw.get("eventTime")),
        creation_timestamp=normalize_time(meta.get("creationTimestamp")),
        reporting_controller=_str(reporting_controller),
        reporting_instance=_str(raw.get("reportingInstance")),
        source_component=_str(source.get("component")),
        source_host=_str(source.get("host")),
        involved=_ref(involved_raw),
        related=_ref(related) if isinstance(related, dict) else None,
    )
