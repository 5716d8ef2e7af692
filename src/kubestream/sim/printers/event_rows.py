"""The Event Table row (``printEvent``), for core/v1 and events.k8s.io/v1 objects alike.

Both APIs serve one stored object; the real server converts either to the internal Event
before printing, so an events.k8s.io object is first mapped back to core field names
(``regarding`` → ``involvedObject``, ``note`` → ``message``, ``deprecated*`` → legacy names).
LAST SEEN falls back to FIRST SEEN, which falls back to ``eventTime``; a series supplies both
the last time and the count.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from kubestream.sim.printers.ages import since
from kubestream.sim.printers.columns import Column, as_int, doc, meta, name_column, section

_FROM_EVENTS_V1 = {
    "regarding": "involvedObject",
    "note": "message",
    "deprecatedSource": "source",
    "deprecatedFirstTimestamp": "firstTimestamp",
    "deprecatedLastTimestamp": "lastTimestamp",
    "deprecatedCount": "count",
    "reportingController": "reportingComponent",
}


def event_columns() -> tuple[Column, ...]:
    """LAST SEEN TYPE REASON OBJECT MESSAGE, and with -o wide SUBOBJECT SOURCE FIRST SEEN
    COUNT NAME, in the server's column order."""
    return (
        Column("Last Seen", "string", doc("CoreV1Event", "lastTimestamp")),
        Column("Type", "string", doc("CoreV1Event", "type")),
        Column("Reason", "string", doc("CoreV1Event", "reason")),
        Column("Object", "string", doc("CoreV1Event", "involvedObject")),
        Column("Subobject", "string", doc("V1ObjectReference", "fieldPath"), 1),
        Column("Source", "string", doc("CoreV1Event", "source"), 1),
        Column("Message", "string", doc("CoreV1Event", "message")),
        Column("First Seen", "string", doc("CoreV1Event", "firstTimestamp"), 1),
        Column("Count", "string", doc("CoreV1Event", "count"), 1),
        name_column(priority=1),
    )


def as_core_event(event: dict[str, Any]) -> dict[str, Any]:
    """An events.k8s.io/v1 shaped event renamed to core/v1 keys (core events pass through)."""
    if "involvedObject" in event or "regarding" not in event:
        return event
    return {_FROM_EVENTS_V1.get(key, key): value for key, value in event.items()}


def _source(event: dict[str, Any]) -> str:
    source = section(event, "source")
    component = source.get("component") or event.get("reportingComponent") or ""
    instance = source.get("host") or event.get("reportingInstance") or ""
    return f"{component}, {instance}" if instance else component


def event_cells(raw: dict[str, Any], now: datetime) -> list[Any]:
    """The ten cells of one event (wide form, as the server always sends)."""
    event = as_core_event(raw)
    first_seen = since(event.get("firstTimestamp") or event.get("eventTime"), now)
    last_seen = since(event["lastTimestamp"], now) if event.get("lastTimestamp") else first_seen
    count = as_int(event.get("count"))
    series = event.get("series")
    if isinstance(series, dict):
        last_seen = since(series.get("lastObservedTime"), now)
        count = as_int(series.get("count"))
    elif count == 0:
        count = 1  # singleton events of the new API carry no count
    target = section(event, "involvedObject")
    kind = str(target.get("kind", "")).lower()
    obj = f"{kind}/{target['name']}" if target.get("name") else kind
    name = meta(event).get("name", "")
    return [last_seen, event.get("type", ""), event.get("reason", ""), obj,
            target.get("fieldPath", ""), _source(event), str(event.get("message") or "").strip(),
            first_seen, count, name]
