"""Table output (spec §6, checklist 33): negotiation, column sets, cells and human ages."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from kubestream.sim.apiserver.tables import to_table, wants_table
from kubestream.sim.printers.ages import since
from kubestream.sim.storage.resources import RESOURCES, ResourceType, lookup
from kubestream.util.durations import human_duration


def _served(group: str, plural: str) -> ResourceType:
    rtype = lookup(group, "v1", plural)
    assert rtype is not None, plural
    return rtype


KUBECTL_TABLE_ACCEPT = ("application/json;as=Table;v=v1;g=meta.k8s.io,"
                        "application/json;as=Table;v=v1beta1;g=meta.k8s.io,application/json")
NOW = datetime(2025, 6, 1, 12, 0, 0, tzinfo=UTC)
PODS = _served("", "pods")


def _ago(**delta: float) -> str:
    return (NOW - timedelta(**delta)).strftime("%Y-%m-%dT%H:%M:%SZ")


def _table(resource: str, objects: list[dict[str, Any]], group: str = "") -> dict[str, Any]:
    rtype = lookup(group, "v1", resource)
    assert rtype is not None
    return to_table(rtype, objects, include_headers=True, list_meta={"resourceVersion": "7"}, now=NOW)


def _cells(resource: str, obj: dict[str, Any], group: str = "") -> dict[str, Any]:
    table = _table(resource, [obj], group)
    names = [c["name"] for c in table["columnDefinitions"]]
    return dict(zip(names, table["rows"][0]["cells"], strict=True))


# --- negotiation -------------------------------------------------------------------------

def test_kubectl_accept_header_asks_for_a_table() -> None:
    assert wants_table(KUBECTL_TABLE_ACCEPT)
    assert wants_table("application/json;as=Table;v=v1beta1;g=meta.k8s.io")


def test_plain_json_and_other_kinds_fall_back_to_json() -> None:
    assert not wants_table("application/json")
    assert not wants_table("")
    assert not wants_table("application/json, application/json;as=Table;v=v1;g=meta.k8s.io")
    assert not wants_table("application/json;as=Table;v=v2;g=meta.k8s.io")
    assert not wants_table("application/json;as=PartialObjectMetadataList;v=v1;g=meta.k8s.io")


# --- table envelope ----------------------------------------------------------------------

def test_table_envelope_rows_and_partial_object_metadata() -> None:
    pod = {"metadata": {"name": "web", "namespace": "prod", "uid": "u1", "resourceVersion": "5",
                        "labels": {"app": "web"}, "creationTimestamp": _ago(minutes=3)},
           "spec": {"containers": [{"name": "c"}]}, "status": {"phase": "Pending"}}
    table = to_table(PODS, [pod], include_headers=True,
                     list_meta={"resourceVersion": "9", "continue": "tok"}, now=NOW)
    assert (table["kind"], table["apiVersion"]) == ("Table", "meta.k8s.io/v1")
    assert table["metadata"] == {"resourceVersion": "9", "continue": "tok"}
    [row] = table["rows"]
    assert row["object"] == {"kind": "PartialObjectMetadata", "apiVersion": "meta.k8s.io/v1",
                             "metadata": pod["metadata"]}
    assert len(row["cells"]) == len(table["columnDefinitions"])


def test_watch_follow_up_tables_have_null_column_definitions() -> None:
    table = to_table(PODS, [], include_headers=False, list_meta=None, now=NOW)
    assert table["columnDefinitions"] is None
    assert table["rows"] == [] and table["metadata"] == {}


def test_pod_columns_and_priorities_match_the_real_printer() -> None:
    columns = _table("pods", [])["columnDefinitions"]
    assert [(c["name"], c["priority"]) for c in columns] == [
        ("Name", 0), ("Ready", 0), ("Status", 0), ("Restarts", 0), ("Age", 0),
        ("IP", 1), ("Node", 1), ("Nominated Node", 1), ("Readiness Gates", 1)]
    assert columns[0]["format"] == "name"
    assert all(c["description"] for c in columns)


# --- pod cells ---------------------------------------------------------------------------

def _pod(**status: Any) -> dict[str, Any]:
    return {"metadata": {"name": "p", "creationTimestamp": _ago(minutes=5, seconds=2)},
            "spec": {"containers": [{"name": "a"}, {"name": "b"}], "nodeName": "n1"},
            "status": {"phase": "Running", "podIP": "10.0.0.7", **status}}


def _running(name: str, restarts: int = 0, **extra: Any) -> dict[str, Any]:
    return {"name": name, "ready": True, "restartCount": restarts, "state": {"running": {}}, **extra}


def test_running_pod_row() -> None:
    cells = _cells("pods", _pod(containerStatuses=[_running("a"), _running("b")]))
    assert cells == {"Name": "p", "Ready": "2/2", "Status": "Running", "Restarts": "0",
                     "Age": "5m2s", "IP": "10.0.0.7", "Node": "n1", "Nominated Node": "<none>",
                     "Readiness Gates": "<none>"}


def test_waiting_reason_and_restarts_with_last_restart_age() -> None:
    crashing = {"name": "b", "ready": False, "restartCount": 3, "state": {"waiting": {
        "reason": "CrashLoopBackOff"}}, "lastState": {"terminated": {"finishedAt": _ago(seconds=40)}}}
    cells = _cells("pods", _pod(containerStatuses=[_running("a", 1), crashing]))
    assert (cells["Ready"], cells["Status"], cells["Restarts"]) == ("1/2", "CrashLoopBackOff",
                                                                     "4 (40s ago)")


def test_new_pod_without_status_is_pending_with_no_ip() -> None:
    pod = {"metadata": {"name": "new", "creationTimestamp": _ago(seconds=1)},
           "spec": {"containers": [{"name": "a"}]}, "status": {"phase": "Pending"}}
    cells = _cells("pods", pod)
    assert (cells["Ready"], cells["Status"], cells["Age"], cells["IP"], cells["Node"]) == (
        "0/1", "Pending", "1s", "<none>", "<none>")


def test_init_container_progress_and_failure() -> None:
    pod = _pod(phase="Pending", initContainerStatuses=[
        {"name": "i1", "state": {"terminated": {"exitCode": 0}}},
        {"name": "i2", "state": {"running": {}}}])
    pod["spec"]["initContainers"] = [{"name": "i1"}, {"name": "i2"}]
    assert _cells("pods", pod)["Status"] == "Init:1/2"
    pod["status"]["initContainerStatuses"][1]["state"] = {"terminated": {"exitCode": 2}}
    assert _cells("pods", pod)["Status"] == "Init:ExitCode:2"


def test_terminating_completed_and_terminated_without_reason() -> None:
    pod = _pod(containerStatuses=[_running("a"), _running("b")])
    pod["metadata"]["deletionTimestamp"] = _ago(seconds=1)
    assert _cells("pods", pod)["Status"] == "Terminating"
    done = _pod(phase="Succeeded", containerStatuses=[
        {"name": "a", "state": {"terminated": {"exitCode": 0, "reason": "Completed"}}},
        {"name": "b", "state": {"terminated": {"exitCode": 137, "signal": 9}}}])
    table = _table("pods", [done])
    assert table["rows"][0]["cells"][2] == "Completed"  # the first container wins
    assert table["rows"][0]["conditions"][0]["reason"] == "Succeeded"


def test_readiness_gates_count_true_conditions() -> None:
    pod = _pod(conditions=[{"type": "example.com/lb", "status": "True"}])
    pod["spec"]["readinessGates"] = [{"conditionType": "example.com/lb"},
                                     {"conditionType": "example.com/dns"}]
    assert _cells("pods", pod)["Readiness Gates"] == "1/2"


# --- events ------------------------------------------------------------------------------

CORE_EVENT = {
    "metadata": {"name": "web.17f", "namespace": "prod", "creationTimestamp": _ago(hours=2)},
    "involvedObject": {"kind": "Pod", "name": "web", "namespace": "prod",
                       "fieldPath": "spec.containers{c1}"},
    "reason": "Pulled", "message": "Successfully pulled image \"nginx\"\n", "type": "Normal",
    "source": {"component": "kubelet", "host": "node-1"},
    "firstTimestamp": _ago(hours=2), "lastTimestamp": _ago(minutes=3), "count": 4,
    "eventTime": None, "reportingComponent": "", "reportingInstance": "",
}


def test_event_columns_in_server_order() -> None:
    columns = _table("events", [])["columnDefinitions"]
    assert [(c["name"], c["priority"]) for c in columns] == [
        ("Last Seen", 0), ("Type", 0), ("Reason", 0), ("Object", 0), ("Subobject", 1),
        ("Source", 1), ("Message", 0), ("First Seen", 1), ("Count", 1), ("Name", 1)]


def test_core_event_row() -> None:
    assert _cells("events", CORE_EVENT) == {
        "Last Seen": "3m", "Type": "Normal", "Reason": "Pulled", "Object": "pod/web",
        "Subobject": "spec.containers{c1}", "Source": "kubelet, node-1",
        "Message": "Successfully pulled image \"nginx\"", "First Seen": "120m", "Count": 4,
        "Name": "web.17f"}


def test_events_v1_event_with_series_prints_like_its_core_form() -> None:
    event = {"metadata": {"name": "e1", "namespace": "prod"}, "eventTime": _ago(hours=1),
             "series": {"count": 7, "lastObservedTime": _ago(seconds=30)},
             "reportingController": "example.com/ctl", "reportingInstance": "ctl-1",
             "action": "Sync", "reason": "Synced", "regarding": {"kind": "Deployment", "name": "web"},
             "note": "ok", "type": "Normal", "deprecatedFirstTimestamp": None,
             "deprecatedLastTimestamp": None, "deprecatedCount": 0}
    cells = _cells("events", event, group="events.k8s.io")
    assert (cells["Last Seen"], cells["First Seen"], cells["Count"]) == ("30s", "60m", 7)
    assert (cells["Object"], cells["Message"], cells["Source"]) == (
        "deployment/web", "ok", "example.com/ctl, ctl-1")


def test_singleton_event_counts_one_and_unknown_times() -> None:
    event = {**CORE_EVENT, "count": 0, "firstTimestamp": None, "lastTimestamp": None}
    cells = _cells("events", event)
    assert (cells["Count"], cells["Last Seen"], cells["First Seen"]) == (1, "<unknown>", "<unknown>")


# --- other kinds -------------------------------------------------------------------------

def test_deployment_node_namespace_lease_rows() -> None:
    deployment = {"metadata": {"name": "web", "creationTimestamp": _ago(days=3)},
                  "spec": {"replicas": 3, "selector": {"matchLabels": {"app": "web", "a": "b"}},
                           "template": {"spec": {"containers": [{"name": "c", "image": "nginx:1"}]}}},
                  "status": {"readyReplicas": 2, "updatedReplicas": 3, "availableReplicas": 2}}
    assert _cells("deployments", deployment, "apps") == {
        "Name": "web", "Ready": "2/3", "Up-to-date": 3, "Available": 2, "Age": "3d",
        "Containers": "c", "Images": "nginx:1", "Selector": "a=b,app=web"}
    node = {"metadata": {"name": "n1", "creationTimestamp": _ago(hours=5, minutes=7),
                         "labels": {"node-role.kubernetes.io/control-plane": ""}},
            "spec": {"unschedulable": True},
            "status": {"conditions": [{"type": "Ready", "status": "True"}],
                       "nodeInfo": {"kubeletVersion": "v1.32.4"},
                       "addresses": [{"type": "InternalIP", "address": "10.1.0.1"}]}}
    cells = _cells("nodes", node)
    assert (cells["Status"], cells["Roles"], cells["Age"], cells["Version"]) == (
        "Ready,SchedulingDisabled", "control-plane", "5h7m", "v1.32.4")
    assert (cells["Internal-IP"], cells["External-IP"], cells["OS-Image"]) == (
        "10.1.0.1", "<none>", "<unknown>")
    namespace = {"metadata": {"name": "prod", "creationTimestamp": _ago(days=400)},
                 "status": {"phase": "Active"}}
    assert _cells("namespaces", namespace) == {"Name": "prod", "Status": "Active", "Age": "400d"}
    lease = {"metadata": {"name": "l", "creationTimestamp": _ago(seconds=90)},
             "spec": {"holderIdentity": "agent-1"}}
    assert _cells("leases", lease, "coordination.k8s.io") == {"Name": "l", "Holder": "agent-1",
                                                              "Age": "90s"}


def test_kinds_without_a_printer_get_name_and_age() -> None:
    job = {"metadata": {"name": "j", "creationTimestamp": _ago(minutes=12)}}
    assert _cells("jobs", job, "batch") == {"Name": "j", "Age": "12m"}


# --- human durations ---------------------------------------------------------------------

@pytest.mark.parametrize(("seconds", "text"), [
    (-5, "<invalid>"), (-1, "0s"), (0, "0s"), (119, "119s"), (120, "2m"), (302, "5m2s"),
    (599, "9m59s"), (600, "10m"), (3 * 3600 - 1, "179m"), (3 * 3600, "3h"), (5 * 3600 + 60, "5h1m"),
    (8 * 3600, "8h"), (47 * 3600, "47h"), (2 * 86400, "2d"), (3 * 86400 + 4 * 3600, "3d4h"),
    (8 * 86400, "8d"), (729 * 86400, "729d"), (2 * 365 * 86400, "2y"),
    (3 * 365 * 86400 + 5 * 86400, "3y5d"), (9 * 365 * 86400, "9y"),
])
def test_human_duration_thresholds(seconds: float, text: str) -> None:
    assert human_duration(seconds) == text


def test_since_handles_null_and_micro_time() -> None:
    assert since(None, NOW) == "<unknown>"
    assert since("", NOW) == "<unknown>"
    assert since("2025-06-01T11:59:00.123456Z", NOW) == "59s"


JUNK_OBJECTS: list[dict[str, Any]] = [
    {},
    {"metadata": None, "spec": None, "status": None},
    {"metadata": {"name": "x", "creationTimestamp": 5, "labels": "x"},
     "spec": {"containers": ["x", None], "initContainers": [1], "readinessGates": [2],
              "template": {"spec": {"containers": ["a"]}}, "replicas": None, "ports": [7],
              "selector": {"matchLabels": None, "matchExpressions": [3, {"values": "v"}]}},
     "status": {"containerStatuses": [1, {"state": "x", "lastState": 2}], "conditions": [None],
                "initContainerStatuses": ["a"], "podIPs": ["x"], "addresses": [1],
                "nodeInfo": "x", "phase": 3, "readyReplicas": "many"}},
    {"involvedObject": "x", "series": {"count": "a"}, "source": "s", "count": None},
]


@pytest.mark.parametrize("rtype", RESOURCES, ids=lambda r: f"{r.group or 'core'}/{r.plural}")
def test_badly_typed_objects_still_print_a_row(rtype: ResourceType) -> None:
    # Objects are stored after unknown-field checks only; a Table must never turn into a 500.
    table = to_table(rtype, JUNK_OBJECTS, include_headers=True, list_meta=None, now=NOW)
    assert [len(r["cells"]) for r in table["rows"]] == [len(table["columnDefinitions"])] * 4
