"""``kubestream_kube_events_total``: Kubernetes Event occurrences as a Prometheus counter.

The Events source calls ``EventCounter.count`` with the ``count_delta`` of every record it hands
on, so the counter rises by exactly the occurrences exported: an Event whose ``count`` (or
``series.count``) grows by n adds n, and what the source's per-uid watermarks already hold (a
relist after a 410, a replayed watch, a restart that reloads the committed watermarks, the
baseline of ``events.since``) adds nothing. Occurrences the ``events`` filters drop are not
counted either.

Labels are bounded: ``type`` (``Normal``, ``Warning``, else ``other``), ``reason``,
``involved_kind`` and ``namespace`` (the Event object's), each capped to a number of distinct values
(``events.metrics.max_*``) beyond which a new value is counted as ``other``; no object names. The
distinct values are remembered per process (first seen, first kept), so after a restart a
different set may be kept once the caps are reached.
"""

from __future__ import annotations

from prometheus_client import Counter

from kubestream.config.settings import EventMetricsSettings
from kubestream.obs.metrics import Metrics
from kubestream.sources.event_decode import DecodedEvent

OTHER = "other"
"""The label value of everything beyond a cap (and of event types other than Normal/Warning)."""
TYPES = frozenset({"Normal", "Warning"})


class _CappedLabel:
    """Keeps the first ``limit`` distinct values of one label; later ones become ``other``."""

    def __init__(self, limit: int) -> None:
        self._limit = limit
        self._kept: set[str] = set()

    def __call__(self, value: str) -> str:
        if value in self._kept:
            return value
        if len(self._kept) >= self._limit:
            return OTHER
        self._kept.add(value)
        return value


class EventCounter:
    """Counts the occurrences the Events source exports (a no-op when disabled or without metrics)."""

    def __init__(self, settings: EventMetricsSettings, metrics: Metrics | None) -> None:
        self._counter: Counter | None = metrics.kube_events if metrics is not None and settings.enabled else None
        self._reason = _CappedLabel(settings.max_reasons)
        self._namespace = _CappedLabel(settings.max_namespaces)
        self._kind = _CappedLabel(settings.max_kinds)

    def count(self, ev: DecodedEvent, occurrences: int) -> None:
        """``occurrences`` more of ``ev`` were exported (the record's ``count_delta``)."""
        if self._counter is None or occurrences <= 0:
            return
        self._counter.labels(
            type=ev.type if ev.type in TYPES else OTHER,
            reason=self._reason(ev.reason),
            involved_kind=self._kind(ev.involved.kind),
            namespace=self._namespace(ev.namespace),
        ).inc(occurrences)
