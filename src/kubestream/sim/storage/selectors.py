"""Label and field selectors with kube-apiserver's grammar, values and error messages (spec §4)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from kubestream.sim.storage.event_views import core_field_source
from kubestream.sim.storage.resources import ResourceType
from kubestream.sim.storage.status import bad_request
from kubestream.util import label_selectors
from kubestream.util.label_selectors import LabelSelectorError, Requirement

# ---------------------------------------------------------------------------------------------
# Label selectors: the shared parser (kubestream.util.label_selectors), its errors as 400s (spec §4)
# ---------------------------------------------------------------------------------------------


def parse_label_selector(text: str | None) -> list[Requirement]:
    """Parse a labelSelector; 400 BadRequest on bad syntax (spec §4). Empty → matches all."""
    try:
        return label_selectors.parse_label_selector(text)
    except LabelSelectorError as exc:
        raise bad_request(exc.message) from None


def labels_match(reqs: list[Requirement], obj: dict[str, Any]) -> bool:
    """Whether an object's labels satisfy every requirement."""
    if not reqs:
        return True
    labels = (obj.get("metadata") or {}).get("labels") or {}
    return all(r.matches(labels) for r in reqs)


# ---------------------------------------------------------------------------------------------
# Field selectors (apimachinery pkg/fields/selector.go) with per-kind values (spec §4)
# ---------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class FieldTerm:
    """``field op value`` with op ``=`` or ``!=`` (``==`` is folded into ``=``)."""

    field: str
    op: str
    value: str


def _split_unescaped(text: str, sep: str) -> list[str]:
    parts: list[str] = []
    current: list[str] = []
    escaped = False
    for ch in text:
        if escaped:
            current.append("\\" + ch)
            escaped = False
        elif ch == "\\":
            escaped = True
        elif ch == sep:
            parts.append("".join(current))
            current = []
        else:
            current.append(ch)
    if escaped:
        current.append("\\")
    parts.append("".join(current))
    return parts


def _unescape(value: str) -> str:
    out: list[str] = []
    i = 0
    while i < len(value):
        ch = value[i]
        if ch == "\\":
            nxt = value[i + 1] if i + 1 < len(value) else ""
            if nxt not in ("\\", ",", "="):
                raise bad_request(f"invalid field selector: invalid escape sequence: {value}")
            out.append(nxt)
            i += 2
            continue
        if ch in (",", "="):
            raise bad_request(f"invalid field selector: unescaped character in value: {value}")
        out.append(ch)
        i += 1
    return "".join(out)


def _split_term(term: str) -> tuple[str, str, str] | None:
    for i in range(len(term)):
        for op in ("!=", "==", "="):
            if term.startswith(op, i):
                return term[:i], op, term[i + len(op):]
    return None


def parse_field_selector(text: str | None, rtype: ResourceType) -> list[FieldTerm]:
    """Parse a fieldSelector and map labels to the stored form; 400 on syntax errors and on
    ``field label not supported: X`` (spec §4, handlers/get.go wraps it in BadRequest)."""
    if not text or not text.strip():
        return []
    terms: list[FieldTerm] = []
    for raw in _split_unescaped(text, ","):
        if not raw:
            continue
        split = _split_term(raw)
        if split is None:
            raise bad_request(f"invalid selector: '{text}'; can't understand '{raw}'")
        label, op, value = split
        terms.append(FieldTerm(_convert_label(rtype, label), "!=" if op == "!=" else "=", _unescape(value)))
    return terms


def _convert_label(rtype: ResourceType, label: str) -> str:
    if rtype.kind == "Pod" and label == "spec.host":
        return "spec.nodeName"  # spec §4: legacy alias
    if label not in rtype.field_labels:
        raise bad_request(f"field label not supported: {label}")
    if rtype.group == "events.k8s.io":
        if label.startswith("regarding."):
            return "involvedObject." + label.removeprefix("regarding.")
        if label == "reportingController":
            return "reportingComponent"
    return label


def _dig(obj: Any, path: str) -> Any:
    for part in path.split("."):
        if not isinstance(obj, dict):
            return None
        obj = obj.get(part)
    return obj


def _as_field(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def _pod_field(obj: dict[str, Any], field: str) -> str:
    if field == "status.podIP":
        ips = (obj.get("status") or {}).get("podIPs") or []
        return str(ips[0].get("ip", "")) if ips else ""  # pod strategy ToSelectableFields
    if field == "status.podIPs":
        return ""  # spec §4: not filled in by ToSelectableFields
    if field == "spec.hostNetwork":
        return "true" if (obj.get("spec") or {}).get("hostNetwork") else "false"
    return _as_field(_dig(obj, field))


def _event_field(obj: dict[str, Any], field: str) -> str:
    if field == "source":
        return core_field_source(obj)
    return _as_field(_dig(obj, field))


FieldGetter = Callable[[dict[str, Any], str], str]


def field_getter(rtype: ResourceType) -> FieldGetter:
    """How to read a (converted) field label off a stored object of this type."""
    if rtype.kind == "Pod":
        return _pod_field
    if rtype.kind == "Event":
        return _event_field
    return lambda obj, field: _as_field(_dig(obj, field))


def fields_match(terms: list[FieldTerm], getter: FieldGetter, obj: dict[str, Any]) -> bool:
    """Whether a stored object satisfies every field term."""
    for term in terms:
        actual = getter(obj, term.field)
        if (actual == term.value) != (term.op == "="):
            return False
    return True


@dataclass(frozen=True, slots=True)
class Filter:
    """Namespace + label + field filter applied to stored objects of one resource type."""

    namespace: str | None
    labels: list[Requirement]
    fields: list[FieldTerm]
    getter: FieldGetter

    @property
    def has_selectors(self) -> bool:
        """True when a label or field selector narrows the list (remainingItemCount rule)."""
        return bool(self.labels or self.fields)

    def matches(self, obj: dict[str, Any]) -> bool:
        """Whether a stored object passes the namespace and both selectors."""
        if self.namespace is not None and (obj.get("metadata") or {}).get("namespace") != self.namespace:
            return False
        return labels_match(self.labels, obj) and fields_match(self.fields, self.getter, obj)


def make_filter(rtype: ResourceType, namespace: str | None, label_selector: str | None,
                field_selector: str | None) -> Filter:
    """Parse both selectors (400 on errors) into a Filter."""
    return Filter(namespace, parse_label_selector(label_selector),
                  parse_field_selector(field_selector, rtype), field_getter(rtype))
