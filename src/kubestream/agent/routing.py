"""Which destination takes which records: routes (filter, encoder, limits) per stream.

The destinations come from ``Settings.destinations()`` (``sinks:``, or the one ``sink:`` named
``archive``). For each stream, every destination that lists it gets a ``Route``: the batcher
encodes the records that pass its filter with its encoder and splits them by its payload limits.
Filters are evaluated on the records as the sources built them: an event record's
``kubernetes`` block, ``event`` and ``involved``; a log chunk's container metadata.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from fnmatch import fnmatchcase
from typing import Any

from kubestream.config.settings import DestinationFilter, DestinationSettings, Settings
from kubestream.errors import ConfigError
from kubestream.model import Record
from kubestream.pipeline.batcher import Route
from kubestream.pipeline.encode import Encoder, destination_encoder, make_log_encoder
from kubestream.pipeline.spool import PendingLimit
from kubestream.sources.logs.selection import parse_label_selector
from kubestream.util.label_selectors import Requirement

__all__ = ["build_routes", "check_destinations", "pending_limits", "record_filter"]


def check_destinations(settings: Settings) -> None:
    """What the loader cannot check: the label selectors of the filters, and that every enabled
    stream has a destination (its records would otherwise be read and archived nowhere)."""
    for index, destination in enumerate(settings.sinks):
        _selector(destination.filter, f"sinks[{index}].filter.pod_selector")
    destinations = settings.destinations()
    for stream, enabled in (("events", settings.events.enabled), ("logs", settings.logs.enabled)):
        if enabled and not any(stream in d.streams for d in destinations):
            raise ConfigError(f"{stream} are enabled but no destination takes them (add {stream} to a "
                              "destination's streams)", key="sinks")


def pending_limits(settings: Settings) -> dict[str, PendingLimit]:
    """Each destination's bound of undelivered parts and its overflow policy, for the spool."""
    return {d.name: PendingLimit(max_bytes=d.max_pending_bytes, on_full=d.on_full) for d in settings.destinations()}


def build_routes(settings: Settings, stream: str) -> list[Route]:
    """The routes of ``stream``: one per destination that takes it, in configuration order."""
    routes = []
    for destination in settings.destinations():
        if stream not in destination.streams:
            continue
        encoder, fallback = _encoders(settings, destination, stream)
        routes.append(Route(destination=destination.name, prefix=destination.prefix,
                            stream_uid=destination.stream_uid, encoder=encoder, fallback_encoder=fallback,
                            accepts=record_filter(destination.filter, stream),
                            max_records=destination.max_records, max_bytes=destination.max_bytes))
    return routes


def _encoders(settings: Settings, destination: DestinationSettings, stream: str) -> tuple[Encoder, Encoder]:
    encoding = destination.encoding or settings.encoding
    cluster = settings.cluster.name
    safe = encoding.model_copy(update={"format": "ndjson"})
    if stream == "logs" and destination.is_archive_type:
        own = settings.model_copy(update={"encoding": encoding})
        return make_log_encoder(own), make_log_encoder(own, safe=True)
    if stream == "logs":
        return destination_encoder(destination, encoding, stream=stream, cluster=cluster), \
            make_log_encoder(settings.model_copy(update={"encoding": safe}), safe=True)
    return (destination_encoder(destination, encoding, stream=stream, cluster=cluster),
            destination_encoder(destination.model_copy(update={"type": "file"}), safe, stream=stream,
                                cluster=cluster))


def _selector(flt: DestinationFilter, key: str) -> list[Requirement] | None:
    if not flt.pod_selector:
        return None
    try:
        return parse_label_selector(flt.pod_selector)
    except ConfigError as exc:
        message = str(exc).removeprefix(f"{exc.key}: ") if exc.key else str(exc)
        raise ConfigError(message, key=key) from None


def record_filter(flt: DestinationFilter, stream: str) -> Callable[[Record], bool] | None:
    """A predicate keeping the records ``flt`` selects, or None when it selects everything."""
    selector = _selector(flt, "filter.pod_selector")
    include, exclude = list(flt.namespaces_include), list(flt.namespaces_exclude)
    types, reasons, kinds = set(flt.types), set(flt.reasons), set(flt.involved_kinds)
    if not (selector or include or exclude or types or reasons or kinds):
        return None

    def accepts(record: Record) -> bool:
        facts = _facts(record)
        namespace = facts.namespace
        if include and not any(fnmatchcase(namespace, p) for p in include):
            return False
        if exclude and any(fnmatchcase(namespace, p) for p in exclude):
            return False
        if types and facts.event.get("type") not in types:
            return False
        if reasons and facts.event.get("reason") not in reasons:
            return False
        if kinds and facts.involved.get("kind") not in kinds:
            return False
        return selector is None or all(term.matches(facts.labels) for term in selector)

    return accepts


class _Facts:
    __slots__ = ("event", "involved", "labels", "namespace")

    def __init__(self, namespace: str, labels: Mapping[str, str], event: Mapping[str, Any],
                 involved: Mapping[str, Any]) -> None:
        self.namespace = namespace
        self.labels = labels
        self.event = event
        self.involved = involved


_EMPTY: Mapping[str, Any] = {}


def _facts(record: Record) -> _Facts:
    data = record.data
    chunk = record.chunk
    if chunk is not None:
        meta = chunk.meta.kubernetes
        return _Facts(str(meta.get("namespace") or ""), _labels(meta), _EMPTY, _EMPTY)
    found = data.get("kubernetes")
    block: Mapping[str, Any] = found if isinstance(found, dict) else {}
    event = data.get("event")
    event = event if isinstance(event, dict) else {}
    involved = data.get("involved")
    involved = involved if isinstance(involved, dict) else {}
    namespace = block.get("namespace") or involved.get("namespace") or event.get("namespace") or ""
    return _Facts(str(namespace), _labels(block), event, involved)


def _labels(block: Mapping[str, Any]) -> Mapping[str, str]:
    labels = block.get("labels")
    return labels if isinstance(labels, dict) else {}
