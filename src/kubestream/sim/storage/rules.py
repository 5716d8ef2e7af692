"""Object validation: the 422s kube-apiserver answers before anything is stored (spec §9.42).

Nothing invalid reaches the store, on either path (HTTP or in-process): one stored pod without
containers would break every client's typed list decode, as it would on no real server.

Sources (kubernetes v1.35): pkg/apis/core/validation/validation.go (ValidateObjectMeta,
ValidatePodCreate/ValidatePodUpdate, ValidateContainers), pkg/apis/core/validation/events.go
(ValidateEventCreate, legacyValidateEvent, validateV1EventSeries), pkg/apis/apps/validation
(ValidateDeploymentSpec: selector required, non-empty, matching the template's labels, immutable),
pkg/apis/batch/validation (template restartPolicy), pkg/apis/coordination/validation
(ValidateLeaseSpec), staging apimachinery util/validation (IsDNS1123Subdomain/Label,
IsDNS1035Label messages).
"""

from __future__ import annotations

import json
import re
from typing import Any

from kubestream.sim.storage import status as st
from kubestream.sim.storage.resources import ResourceType

Cause = dict[str, str]

_SUBDOMAIN = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$")
_LABEL = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")
_DNS1035 = re.compile(r"^[a-z]([-a-z0-9]*[a-z0-9])?$")
_SUBDOMAIN_MSG = ("a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, '-' or '.', "
                  "and must start and end with an alphanumeric character (e.g. 'example.com', regex used for "
                  "validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*')")
_LABEL_MSG = ("a lowercase RFC 1123 label must consist of lower case alphanumeric characters or '-', and must "
              "start and end with an alphanumeric character (e.g. 'my-name',  or '123-abc', regex used for "
              "validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?')")
_DNS1035_MSG = ("a DNS-1035 label must consist of lower case alphanumeric characters or '-', start with an "
                "alphabetic character, and end with an alphanumeric character (e.g. 'my-name',  or 'abc-123', "
                "regex used for validation is '[a-z]([-a-z0-9]*[a-z0-9])?')")
_LABEL_NAMED = frozenset({"Namespace"})
_DNS1035_NAMED = frozenset({"Service"})
_POD_UPDATE_FORBIDDEN = (
    "pod updates may not change fields other than `spec.containers[*].image`,`spec.initContainers[*].image`,"
    "`spec.activeDeadlineSeconds`,`spec.tolerations` (only additions to existing tolerations),"
    "`spec.terminationGracePeriodSeconds` (allow it to be set to 1 if it was previously negative)"
)


def _q(value: Any) -> str:
    """A field.Invalid value as Go's %q / %v prints it (strings quoted, numbers bare)."""
    return json.dumps(value) if isinstance(value, str) else str(value)


def _invalid(path: str, value: Any, detail: str) -> Cause:
    return st.field_error("Invalid", path, detail, _q(value))


def qualified_kind(rtype: ResourceType) -> str:
    """``Pod`` or ``Deployment.apps``, as NewInvalid names the kind."""
    return rtype.kind if not rtype.group else f"{rtype.kind}.{rtype.group}"


def raise_invalid(rtype: ResourceType, name: str, causes: list[Cause]) -> None:
    """422 Invalid with every cause, if there are any."""
    if causes:
        raise st.invalid(qualified_kind(rtype), rtype.group, rtype.plural, name, causes)


# -- metadata ------------------------------------------------------------------------------------

def name_causes(rtype: ResourceType, name: str) -> list[Cause]:
    """ValidateObjectMeta's name check: the kind's name rule (subdomain unless said otherwise)."""
    if rtype.kind in _LABEL_NAMED:
        pattern, message, limit = _LABEL, _LABEL_MSG, 63
    elif rtype.kind in _DNS1035_NAMED:
        pattern, message, limit = _DNS1035, _DNS1035_MSG, 63
    else:
        pattern, message, limit = _SUBDOMAIN, _SUBDOMAIN_MSG, 253
    causes: list[Cause] = []
    if len(name) > limit:
        causes.append(_invalid("metadata.name", name, f"must be no more than {limit} characters"))
    if not pattern.match(name):
        causes.append(_invalid("metadata.name", name, message))
    return causes


# -- pods ----------------------------------------------------------------------------------------

def _container_causes(containers: Any, path: str, required: bool) -> list[Cause]:
    if not containers:
        return [_required(path)] if required else []
    causes: list[Cause] = []
    seen: set[str] = set()
    for i, c in enumerate(containers if isinstance(containers, list) else []):
        where = f"{path}[{i}]"
        if not isinstance(c, dict):
            causes.append(_invalid(where, "", "must be an object"))
            continue
        name = c.get("name")
        if not name:
            causes.append(_required(f"{where}.name"))
        elif not _LABEL.match(str(name)):
            causes.append(_invalid(f"{where}.name", name, _LABEL_MSG))
        elif name in seen:
            causes.append({"reason": "FieldValueDuplicate", "message": f"Duplicate value: {_q(name)}",
                           "field": f"{where}.name"})
        else:
            seen.add(str(name))
        if not c.get("image"):
            causes.append(_required(f"{where}.image"))
    return causes


def pod_spec_causes(spec: Any, path: str = "spec") -> list[Cause]:
    """ValidatePodSpec, reduced to what breaks clients: containers present, named, with images."""
    spec = spec if isinstance(spec, dict) else {}
    causes = _container_causes(spec.get("containers"), f"{path}.containers", required=True)
    causes += _container_causes(spec.get("initContainers"), f"{path}.initContainers", required=False)
    policy = spec.get("restartPolicy")
    if policy is not None and policy not in ("Always", "OnFailure", "Never"):
        causes.append(st.field_error("NotSupported", f"{path}.restartPolicy",
                                     'supported values: "Always", "OnFailure", "Never"', _q(policy)))
    grace = spec.get("terminationGracePeriodSeconds")
    if isinstance(grace, int) and grace < 0:
        causes.append(_invalid(f"{path}.terminationGracePeriodSeconds", grace, "must be greater than or equal to 0"))
    return causes


_POD_MUTABLE_SPEC = ("activeDeadlineSeconds", "tolerations", "terminationGracePeriodSeconds", "schedulingGates",
                     "ephemeralContainers")


def _pod_spec_for_compare(spec: dict[str, Any]) -> dict[str, Any]:
    # ValidatePodUpdate: images, activeDeadlineSeconds, tolerations (additions),
    # terminationGracePeriodSeconds and scheduling gates (removal) may change; ephemeral
    # containers change only through their own subresource (not compared here).
    out = {k: v for k, v in spec.items() if k not in _POD_MUTABLE_SPEC}
    for key in ("containers", "initContainers"):
        if isinstance(out.get(key), list):
            out[key] = [{k: v for k, v in c.items() if k != "image"} if isinstance(c, dict) else c for c in out[key]]
    return out


def pod_update_causes(old: dict[str, Any], new: dict[str, Any]) -> list[Cause]:
    """ValidatePodUpdate: the spec is immutable but for the listed fields."""
    old_spec, new_spec = old.get("spec") or {}, new.get("spec") or {}
    causes = pod_spec_causes(new_spec)
    if causes:
        return causes
    if _pod_spec_for_compare(old_spec) != _pod_spec_for_compare(new_spec):
        return [st.field_error("Forbidden", "spec", _POD_UPDATE_FORBIDDEN)]
    old_tol = old_spec.get("tolerations") or []
    if any(t not in (new_spec.get("tolerations") or []) for t in old_tol):
        return [st.field_error("Forbidden", "spec.tolerations", "existing toleration can not be modified except its tolerationSeconds")]
    return []


# -- workloads -----------------------------------------------------------------------------------

def _selector_matches(selector: dict[str, Any], labels: dict[str, Any]) -> bool:
    for key, value in (selector.get("matchLabels") or {}).items():
        if labels.get(key) != value:
            return False
    for expr in selector.get("matchExpressions") or []:
        key, op, values = expr.get("key"), expr.get("operator"), expr.get("values") or []
        if op == "In" and labels.get(key) not in values:
            return False
        if op == "NotIn" and key in labels and labels[key] in values:
            return False
        if op == "Exists" and key not in labels:
            return False
        if op == "DoesNotExist" and key in labels:
            return False
    return True


def _go_map(labels: dict[str, Any]) -> str:
    inner = ", ".join(f'"{k}":"{v}"' for k, v in sorted(labels.items()))
    return f"map[string]string{{{inner}}}"


def workload_causes(rtype: ResourceType, obj: dict[str, Any]) -> list[Cause]:
    """ValidateDeploymentSpec & co.: a non-empty selector that matches the template's labels,
    a valid template, replicas ≥ 0; Jobs: template restartPolicy OnFailure or Never."""
    spec: dict[str, Any] = obj["spec"] if isinstance(obj.get("spec"), dict) else {}
    causes: list[Cause] = []
    template: dict[str, Any] = spec["template"] if isinstance(spec.get("template"), dict) else {}
    labels = ((template.get("metadata") or {}).get("labels")) or {}
    selector = spec.get("selector")
    if rtype.kind != "Job":
        if not isinstance(selector, dict):
            causes.append(_required("spec.selector"))
        elif not selector.get("matchLabels") and not selector.get("matchExpressions"):
            causes.append(_invalid("spec.selector", "v1.LabelSelector{MatchLabels:map[string]string(nil), "
                                   "MatchExpressions:[]v1.LabelSelectorRequirement(nil)}",
                                   f"empty selector is invalid for {rtype.singular}"))
        elif not _selector_matches(selector, labels):
            causes.append({"reason": "FieldValueInvalid", "field": "spec.template.metadata.labels",
                           "message": f"Invalid value: {_go_map(labels)}: `selector` does not match template `labels`"})
    replicas = spec.get("replicas")
    if isinstance(replicas, int) and replicas < 0:
        causes.append(_invalid("spec.replicas", replicas, "must be greater than or equal to 0"))
    causes += pod_spec_causes(template.get("spec"), "spec.template.spec")
    if rtype.kind == "Job":
        policy = (template.get("spec") or {}).get("restartPolicy")
        if policy not in ("OnFailure", "Never"):
            causes.append(st.field_error("NotSupported", "spec.template.spec.restartPolicy",
                                         'supported values: "OnFailure", "Never"', _q(policy)))
    return causes


def workload_update_causes(rtype: ResourceType, old: dict[str, Any], new: dict[str, Any]) -> list[Cause]:
    """apps/v1 and Jobs: ``spec.selector`` is immutable."""
    old_sel, new_sel = (old.get("spec") or {}).get("selector"), (new.get("spec") or {}).get("selector")
    if old_sel is not None and old_sel != new_sel:
        return [{"reason": "FieldValueInvalid", "field": "spec.selector",
                 "message": f"Invalid value: {json.dumps(new_sel)}: field is immutable"}]
    return []


# -- events and leases ---------------------------------------------------------------------------

def _required(path: str) -> Cause:
    return {"reason": "FieldValueRequired", "message": "Required value", "field": path}


def event_causes(stored: dict[str, Any], *, v1_api: bool) -> list[Cause]:
    """ValidateEventCreate on the stored (core) form; field paths are the core names, as the
    internal type's are. ``v1_api``: created through events.k8s.io/v1 (strict rules)."""
    causes: list[Cause] = []
    namespace = stored["metadata"].get("namespace") or ""
    involved = stored.get("involvedObject") or {}
    involved_ns = involved.get("namespace") or ""
    has_event_time = bool(stored.get("eventTime"))
    if not has_event_time:
        if (involved_ns and involved_ns != namespace) or (not involved_ns and namespace not in ("", "default")):
            causes.append(_invalid("involvedObject.namespace", involved_ns, "does not match event.namespace"))
    else:
        if not involved_ns and namespace not in ("default", "kube-system"):
            causes.append(_invalid("involvedObject.namespace", involved_ns, "does not match event.namespace"))
        controller = "reportingController" if v1_api else "reportingComponent"
        if not stored.get("reportingComponent"):
            causes.append(_required(controller))
        if not stored.get("reportingInstance"):
            causes.append(_required("reportingInstance"))
        if not stored.get("action"):
            causes.append(_required("action"))
        if not stored.get("reason"):
            causes.append(_required("reason"))
        if len(str(stored.get("message") or "")) > 1024:
            causes.append(_invalid("message", "", "can have at most 1024 characters"))
    if not v1_api:
        return causes
    series = stored.get("series")
    if isinstance(series, dict):
        if int(series.get("count") or 0) < 2:
            causes.append(_invalid("series.count", "", "should be at least 2"))
        if not series.get("lastObservedTime"):
            causes.append(_required("series.lastObservedTime"))
    if not has_event_time:
        causes.append(_required("eventTime"))
    if stored.get("type") not in ("Normal", "Warning"):
        causes.append(_invalid("type", "", f"has invalid value: {stored.get('type') or ''}"))
    if stored.get("firstTimestamp"):
        causes.append(_invalid("firstTimestamp", "", "needs to be unset"))
    if stored.get("lastTimestamp"):
        causes.append(_invalid("lastTimestamp", "", "needs to be unset"))
    if stored.get("count"):
        causes.append(_invalid("count", "", "needs to be unset"))
    source = stored.get("source") or {}
    if source.get("component") or source.get("host"):
        causes.append(_invalid("source", "", "needs to be unset"))
    return causes


def lease_causes(obj: dict[str, Any]) -> list[Cause]:
    """ValidateLeaseSpec: durations and transitions must not be negative or zero."""
    spec: dict[str, Any] = obj["spec"] if isinstance(obj.get("spec"), dict) else {}
    causes: list[Cause] = []
    duration = spec.get("leaseDurationSeconds")
    if isinstance(duration, int) and duration <= 0:
        causes.append(_invalid("spec.leaseDurationSeconds", duration, "must be greater than 0"))
    transitions = spec.get("leaseTransitions")
    if isinstance(transitions, int) and transitions < 0:
        causes.append(_invalid("spec.leaseTransitions", transitions, "must be greater than or equal to 0"))
    return causes


# -- entry points --------------------------------------------------------------------------------

def create_causes(rtype: ResourceType, obj: dict[str, Any], *, v1_events: bool) -> list[Cause]:
    """Everything a create is checked for (``obj`` stored form, defaults applied)."""
    causes = name_causes(rtype, str(obj["metadata"].get("name", "")))
    kind = rtype.kind
    if kind == "Pod":
        causes += pod_spec_causes(obj.get("spec"))
    elif kind in ("Deployment", "ReplicaSet", "StatefulSet", "DaemonSet", "Job"):
        causes += workload_causes(rtype, obj)
    elif kind == "Event":
        causes += event_causes(obj, v1_api=v1_events)
    elif kind == "Lease":
        causes += lease_causes(obj)
    return causes


def update_causes(rtype: ResourceType, old: dict[str, Any], new: dict[str, Any], *, main: bool) -> list[Cause]:
    """Everything an update is checked for; ``main``: a write of the main resource over HTTP (pod
    spec immutability applies; in-process writers stand for bindings and controllers)."""
    kind = rtype.kind
    if kind == "Pod":
        return pod_update_causes(old, new) if main else pod_spec_causes(new.get("spec"))
    if kind in ("Deployment", "ReplicaSet", "StatefulSet", "DaemonSet", "Job"):
        return workload_causes(rtype, new) + workload_update_causes(rtype, old, new)
    if kind == "Lease":
        return lease_causes(new)
    return []
