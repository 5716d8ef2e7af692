"""The Pod Table row: READY, STATUS and RESTARTS as ``printPod`` derives them.

STATUS is the phase, overridden by ``status.reason``, then by the first init container that
has not finished ("Init:1/2", "Init:CrashLoopBackOff"), else by the app containers' waiting or
terminated reasons (walked last to first, so the first container wins), and finally by
"Terminating" while a deletion is pending. RESTARTS gets "(5m ago)" from the latest
``lastState.terminated.finishedAt``. Sidecars (init containers with ``restartPolicy:
Always``) count as app containers once started.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from kubestream.sim.printers.ages import parse_time, since
from kubestream.sim.printers.columns import (
    NONE,
    Column,
    age_column,
    as_int,
    dicts,
    doc,
    meta,
    name_column,
    section,
)

_TERMINAL_PHASES = ("Succeeded", "Failed")
_SUCCESS_CONDITIONS = [{"type": "Completed", "status": "True", "reason": "Succeeded",
                        "message": "The pod has completed successfully."}]
_FAILED_CONDITIONS = [{"type": "Completed", "status": "True", "reason": "Failed",
                       "message": "The pod failed."}]


def pod_columns() -> tuple[Column, ...]:
    """NAME READY STATUS RESTARTS AGE, then (wide) IP NODE NOMINATED NODE READINESS GATES."""
    return (
        name_column(),
        Column("Ready", "string", "The aggregate readiness state of this pod for accepting traffic."),
        Column("Status", "string", "The aggregate status of the containers in this pod."),
        Column("Restarts", "string", "The number of times the containers in this pod have been "
               "restarted and when the last container in this pod has restarted."),
        age_column(),
        Column("IP", "string", doc("V1PodStatus", "podIP"), 1),
        Column("Node", "string", doc("V1PodSpec", "nodeName"), 1),
        Column("Nominated Node", "string", doc("V1PodStatus", "nominatedNodeName"), 1),
        Column("Readiness Gates", "string", doc("V1PodSpec", "readinessGates"), 1),
    )


@dataclass(slots=True)
class _Tally:
    """What the walk over container statuses accumulates."""

    reason: str
    ready: int = 0
    total: int = 0
    restarts: int = 0
    last_restart: datetime | None = None
    sidecar_restarts: int = 0
    sidecar_last_restart: datetime | None = None
    sidecars: set[str] = field(default_factory=set)

    def saw_termination(self, status: dict[str, Any], sidecar: bool = False) -> None:
        finished = parse_time(section(section(status, "lastState"), "terminated").get("finishedAt"))
        if finished is None:
            return
        if sidecar:
            if self.sidecar_last_restart is None or finished > self.sidecar_last_restart:
                self.sidecar_last_restart = finished
        elif self.last_restart is None or finished > self.last_restart:
            self.last_restart = finished


def _state(state: dict[str, Any], name: str) -> dict[str, Any] | None:
    """One of a container state's running/waiting/terminated entries, if set."""
    value = state.get(name)
    return value if isinstance(value, dict) else None


def _terminated_reason(terminated: dict[str, Any], prefix: str = "") -> str:
    if terminated.get("reason"):
        return f"{prefix}{terminated['reason']}"
    if terminated.get("signal"):
        return f"{prefix}Signal:{terminated['signal']}"
    return f"{prefix}ExitCode:{terminated.get('exitCode', 0)}"


def _walk_init(pod: dict[str, Any], tally: _Tally) -> bool:
    """Init containers; True while the pod is still initializing (STATUS set to Init:…)."""
    statuses = dicts(section(pod, "status").get("initContainerStatuses"))
    init_count = len(dicts(section(pod, "spec").get("initContainers")))
    for index, status in enumerate(statuses):
        sidecar = status.get("name") in tally.sidecars
        restarts = as_int(status.get("restartCount"), 0)
        tally.restarts += restarts
        tally.saw_termination(status)
        if sidecar:
            tally.sidecar_restarts += restarts
            tally.saw_termination(status, sidecar=True)
        state = section(status, "state")
        terminated, waiting = _state(state, "terminated"), _state(state, "waiting")
        if terminated is not None and as_int(terminated.get("exitCode"), 0) == 0:
            continue
        if sidecar and status.get("started"):
            tally.ready += 1 if status.get("ready") else 0
            continue
        if terminated is not None:
            tally.reason = _terminated_reason(terminated, "Init:")
        elif waiting is not None and waiting.get("reason") and waiting["reason"] != "PodInitializing":
            tally.reason = f"Init:{waiting['reason']}"
        else:
            tally.reason = f"Init:{index}/{init_count}"
        return True
    return False


def _walk_containers(pod: dict[str, Any], tally: _Tally) -> None:
    tally.restarts = tally.sidecar_restarts
    tally.last_restart = tally.sidecar_last_restart
    has_running = False
    for status in reversed(dicts(section(pod, "status").get("containerStatuses"))):
        tally.restarts += as_int(status.get("restartCount"), 0)
        tally.saw_termination(status)
        state = section(status, "state")
        waiting, terminated = _state(state, "waiting"), _state(state, "terminated")
        if waiting is not None and waiting.get("reason"):
            tally.reason = waiting["reason"]
        elif terminated is not None:
            tally.reason = _terminated_reason(terminated)
        elif status.get("ready") and state.get("running") is not None:
            has_running = True
            tally.ready += 1
    if tally.reason == "Completed" and has_running:
        tally.reason = "Running" if _condition_true(pod, "Ready") else "NotReady"


def _condition_true(pod: dict[str, Any], kind: str) -> bool:
    return any(c.get("type") == kind and c.get("status") == "True"
               for c in dicts(section(pod, "status").get("conditions")))


def _status_reason(pod: dict[str, Any], tally: _Tally) -> None:
    status = section(pod, "status")
    if any(c.get("type") == "PodScheduled" and c.get("reason") == "SchedulingGated"
           for c in dicts(status.get("conditions"))):
        tally.reason = "SchedulingGated"
    initializing = _walk_init(pod, tally)
    if not initializing or _condition_true(pod, "Initialized"):
        _walk_containers(pod, tally)
    if meta(pod).get("deletionTimestamp"):
        if status.get("reason") == "NodeLost":
            tally.reason = "Unknown"
        elif status.get("phase") not in _TERMINAL_PHASES:
            tally.reason = "Terminating"


def pod_cells(pod: dict[str, Any], now: datetime) -> list[Any]:
    """The nine cells of one pod (wide form, as the server always sends)."""
    spec, status = section(pod, "spec"), section(pod, "status")
    tally = _Tally(reason=str(status.get("reason") or status.get("phase") or ""))
    containers = spec.get("containers")
    tally.total = len(containers) if isinstance(containers, list) else 0
    for init in dicts(spec.get("initContainers")):
        if init.get("restartPolicy") == "Always":
            tally.sidecars.add(str(init.get("name")))
            tally.total += 1
    _status_reason(pod, tally)
    restarts = str(tally.restarts)
    if tally.restarts and tally.last_restart is not None:
        restarts = f"{tally.restarts} ({since(tally.last_restart.isoformat(), now)} ago)"
    pod_ips = dicts(status.get("podIPs"))
    pod_ip = (pod_ips[0].get("ip") if pod_ips else status.get("podIP")) or NONE
    return [
        meta(pod).get("name", ""), f"{tally.ready}/{tally.total}", tally.reason, restarts,
        since(meta(pod).get("creationTimestamp"), now),
        pod_ip, spec.get("nodeName") or NONE, status.get("nominatedNodeName") or NONE,
        _readiness_gates(spec, status),
    ]


def _readiness_gates(spec: dict[str, Any], status: dict[str, Any]) -> str:
    gates = dicts(spec.get("readinessGates"))
    if not gates:
        return NONE
    conditions = {c.get("type"): c.get("status") for c in dicts(status.get("conditions"))}
    passed = sum(1 for g in gates if conditions.get(g.get("conditionType")) == "True")
    return f"{passed}/{len(gates)}"


def pod_conditions(pod: dict[str, Any]) -> list[dict[str, Any]] | None:
    """Row conditions: finished pods are marked Completed (kubectl may hide such rows)."""
    phase = section(pod, "status").get("phase")
    if phase == "Succeeded":
        return [dict(c) for c in _SUCCESS_CONDITIONS]
    if phase == "Failed":
        return [dict(c) for c in _FAILED_CONDITIONS]
    return None
