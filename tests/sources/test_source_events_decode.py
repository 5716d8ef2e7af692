"""Decoding core/v1 and events.k8s.io/v1 Events from raw JSON, including real recorded ones."""

from __future__ import annotations

import json
from pathlib import Path

from kubestream.sources.event_decode import EVENTS_V1, decode_event, normalize_time

RECORDED = Path(__file__).resolve().parents[1] / "fixtures" / "recorded" / "k9s" / "core-v1-event.json"

# The events.k8s.io/v1 view of a legacy (core/v1-created) event: eventTime null, deprecated*
# fields carrying the legacy data (shape of k8s-openapi's deserialize_leniency.rs case).
EVENTS_V1_OF_LEGACY = {
    "kind": "Event",
    "apiVersion": "events.k8s.io/v1",
    "metadata": {"name": "web-0.17a", "namespace": "shop", "uid": "e-1", "resourceVersion": "812",
                 "creationTimestamp": "2024-05-01T10:00:00Z"},
    "eventTime": None,
    "reportingController": "",
    "reportingInstance": "",
    "reason": "BackOff",
    "regarding": {"kind": "Pod", "namespace": "shop", "name": "web-0", "uid": "p-1", "apiVersion": "v1",
                  "resourceVersion": "700", "fieldPath": "spec.containers{web}"},
    "note": "Back-off restarting failed container",
    "type": "Warning",
    "deprecatedSource": {"component": "kubelet", "host": "node-a"},
    "deprecatedFirstTimestamp": "2024-05-01T10:00:00Z",
    "deprecatedLastTimestamp": "2024-05-01T10:04:00Z",
    "deprecatedCount": 6,
}


def test_recorded_core_v1_event_decodes() -> None:
    ev = decode_event(json.loads(RECORDED.read_text()))
    assert ev.uid == "c443d4b3-cb66-11e9-990f-42010a800218"
    assert ev.resource_version == 590733
    assert ev.occurrences == 1
    assert ev.event_time is None
    assert ev.occurred_at == "2019-08-30T20:43:05.000000Z"
    assert ev.involved.kind == "Pod" and ev.involved.field_path == "spec.containers{c1}"
    assert ev.source_component == "kubelet" and ev.source_host == "gke-k9s-default-pool-0fa2fb89-qnkc"
    assert ev.reporting_controller == "" and ev.related is None


def test_events_v1_with_null_event_time_uses_deprecated_fields() -> None:
    ev = decode_event(EVENTS_V1_OF_LEGACY, EVENTS_V1)
    assert ev.api == EVENTS_V1
    assert ev.message == "Back-off restarting failed container"
    assert ev.occurrences == 6
    assert ev.event_time is None
    assert ev.occurred_at == "2024-05-01T10:04:00.000000Z"
    assert ev.involved.name == "web-0" and ev.source_host == "node-a"


def test_events_v1_series_counts_and_timestamps_win() -> None:
    raw = {**EVENTS_V1_OF_LEGACY, "eventTime": "2024-05-01T10:00:00.250000Z", "deprecatedCount": None,
           "deprecatedLastTimestamp": None, "reportingController": "kubelet",
           "series": {"count": 14, "lastObservedTime": "2024-05-01T10:30:00.500000Z"},
           "related": {"kind": "Node", "name": "node-a"}}
    ev = decode_event(raw, EVENTS_V1)
    assert ev.occurrences == 14 and ev.series_count == 14
    assert ev.occurred_at == "2024-05-01T10:30:00.500000Z"
    assert ev.event_time == "2024-05-01T10:00:00.250000Z"
    assert ev.reporting_controller == "kubelet"
    assert ev.related is not None and ev.related.kind == "Node"


def test_core_event_created_through_events_v1_has_null_legacy_times() -> None:
    raw = {"metadata": {"uid": "u", "resourceVersion": "5", "creationTimestamp": "2024-05-01T09:00:00Z"},
           "firstTimestamp": None, "lastTimestamp": None, "eventTime": "2024-05-01T10:00:00.000001Z",
           "count": None, "involvedObject": None}
    ev = decode_event(raw)
    assert ev.occurrences == 1
    assert ev.occurred_at == "2024-05-01T10:00:00.000001Z"
    assert ev.involved.kind == ""


def test_timestamps_are_normalised_to_sortable_utc() -> None:
    assert normalize_time("2024-05-01T12:00:00+02:00") == "2024-05-01T10:00:00.000000Z"
    assert normalize_time("2024-05-01T10:00:00.5Z") == "2024-05-01T10:00:00.500000Z"
    assert normalize_time("garbage") is None
    assert normalize_time(None) is None
    assert decode_event({"metadata": {"resourceVersion": "opaque"}}).resource_version == 0
