"""Event filters: pushed to the API server as field selectors where the server can express them,
always re-checked client-side.

Events are served from etcd on every watch (no watch cache), so every event the server does not
send spares the control plane. The server only supports equality per label (``a=x`` or several
``a!=x`` ANDed), so a single included value and any number of excluded ones go to the server; a
set of several included values is checked here. Supported labels: spec §4.
"""

from __future__ import annotations

from dataclasses import dataclass

from kubestream.config.settings import EventsSettings
from kubestream.sources.event_decode import EVENTS_V1, DecodedEvent


def escape_field_value(value: str) -> str:
    """Escape ``\\``, ``,`` and ``=`` in a field-selector value (k8s.io/apimachinery fields)."""
    return value.replace("\\", "\\\\").replace(",", "\\,").replace("=", "\\=")


@dataclass(frozen=True, slots=True)
class ServerSideFilter:
    """What the list/watch URL carries: a namespace (namespaced URL) and a field selector."""

    namespace: str | None
    field_selector: str | None


class EventFilter:
    """The configured include/exclude rules of ``events.*``."""

    def __init__(self, settings: EventsSettings) -> None:
        self._settings = settings
        self._namespaces_include = frozenset(settings.namespaces_include)
        self._namespaces_exclude = frozenset(settings.namespaces_exclude)
        self._types = frozenset(settings.types)
        self._reasons_include = frozenset(settings.reasons_include)
        self._reasons_exclude = frozenset(settings.reasons_exclude)
        self._kinds_include = frozenset(settings.kinds_include)
        self._kinds_exclude = frozenset(settings.kinds_exclude)

    def server_side(self) -> ServerSideFilter:
        """The part of the filter the API server can apply."""
        s = self._settings
        kind_label = "regarding.kind" if s.api == EVENTS_V1 else "involvedObject.kind"
        terms: list[str] = []
        namespace = s.namespaces_include[0] if len(self._namespaces_include) == 1 else None
        terms += _equality("metadata.namespace", [], s.namespaces_exclude)
        terms += _equality("type", s.types, [])
        terms += _equality("reason", s.reasons_include, s.reasons_exclude)
        terms += _equality(kind_label, s.kinds_include, s.kinds_exclude)
        return ServerSideFilter(namespace, ",".join(terms) or None)

    def matches(self, event: DecodedEvent) -> bool:
        """Whether the event passes every configured rule."""
        return (
            _allowed(event.namespace, self._namespaces_include, self._namespaces_exclude)
            and _allowed(event.type, self._types, frozenset())
            and _allowed(event.reason, self._reasons_include, self._reasons_exclude)
            and _allowed(event.involved.kind, self._kinds_include, self._kinds_exclude)
        )


def _equality(label: str, include: list[str], exclude: list[str]) -> list[str]:
    terms: list[str] = []
    if len(set(include)) == 1:
        terms.append(f"{label}={escape_field_value(include[0])}")
    # With a single include the excludes are redundant unless they name that very value; keep
    # them anyway: the server ANDs them and the result is still exact.
    terms += [f"{label}!={escape_field_value(value)}" for value in sorted(set(exclude))]
    return terms


def _allowed(value: str, include: frozenset[str], exclude: frozenset[str]) -> bool:
    if include and value not in include:
        return False
    return value not in exclude
