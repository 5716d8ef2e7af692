"""What the logs source decides per container from its pod, next to the shared ``kubernetes``
block that ``kubestream.enrich.containers`` builds: the selection facts, the multi-line start
pattern (from the pod's annotation, else the first matching ``logs.multiline`` rule) and whether
JSON messages become fields (the pod's annotation, else ``logs.parse_json.namespaces``, else
``logs.parse_json.enabled``).

Both are derived when the container's metadata is (re)built, never per file read.
"""

from __future__ import annotations

import logging
import re
import time
from collections.abc import Callable
from dataclasses import dataclass

from kubestream.config.settings import LogsSettings
from kubestream.enrich.containers import (
    ContainerAddress,
    ContainerMetadata,
    ContainerMetadataCache,
    PodEnricher,
)
from kubestream.kube.objects import NamespaceInfo, PodInfo
from kubestream.obs.metrics import Metrics
from kubestream.sources.logs.json_fields import JsonRule, rule_for
from kubestream.sources.logs.multiline import StartPattern, StartPatternError, compile_start_pattern
from kubestream.sources.logs.selection import PodFacts

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class LogRules:
    """The logs source's own per-container facts."""

    facts: PodFacts
    multiline: StartPattern | None
    parse_json: JsonRule | None = None
    """Set when the container's JSON messages become a ``parsed`` field."""


ContainerInfo = ContainerMetadata[LogRules]
"""One container's metadata as the logs source keeps it: ``.meta`` (block) and ``.extra`` (rules)."""


class MetadataCache(ContainerMetadataCache[LogRules]):
    """The per-container cache of the logs source: shared block plus ``LogRules``."""

    def __init__(self, settings: LogsSettings, enricher: PodEnricher | None, *, node_name: str,
                 clock: Callable[[], float] = time.monotonic, metrics: Metrics | None = None) -> None:
        super().__init__(enricher, self._rules, node_name=node_name, grace_s=settings.pod_dir_grace_s, clock=clock)
        self._settings = settings
        self._metrics = metrics
        self._refused: set[tuple[tuple[str, str], str]] = set()
        """(container, pattern) refusals already reported: one warning per container, not per rebuild."""

    def _forgotten(self, keys: list[tuple[str, str]]) -> None:
        self._refused = {r for r in self._refused if r[0] in self}

    def _rules(self, address: ContainerAddress, pod: PodInfo | None, namespace: NamespaceInfo | None) -> LogRules:
        facts = PodFacts(
            labels=pod.labels if pod is not None else None,
            annotations=pod.annotations if pod is not None else None,
            namespace_labels=namespace.labels if namespace is not None else None,
        )
        return LogRules(facts, self._multiline(address, pod), self._parse_json(address, pod))

    def _parse_json(self, address: ContainerAddress, pod: PodInfo | None) -> JsonRule | None:
        settings = self._settings.parse_json
        annotation = pod.annotations.get(settings.annotation) if pod is not None else None
        return rule_for(settings, address.namespace, annotation, address.container)

    def _multiline(self, address: ContainerAddress, pod: PodInfo | None) -> StartPattern | None:
        annotation = pod.annotations.get(self._settings.multiline_annotation) if pod is not None else None
        pattern = annotation_pattern(annotation, address.container)
        origin = "annotation"
        if pattern is None:
            origin = "config"
            for rule in self._settings.multiline:
                if (not rule.namespaces or address.namespace in rule.namespaces) and (
                        not rule.containers or address.container in rule.containers):
                    pattern = rule.start_pattern
                    break
        if pattern is None:
            return None
        try:
            return compile_start_pattern(pattern)
        except StartPatternError as exc:
            self._refuse(address, pattern, origin, exc)
            return None

    def _refuse(self, address: ContainerAddress, pattern: str, origin: str, exc: StartPatternError) -> None:
        """Report a refused start pattern once per container; its lines go out unjoined."""
        key = (address.container_key, pattern)
        if key in self._refused:
            return
        self._refused.add(key)
        log.warning("logs: the multi-line start pattern %.200r (%s) of %s/%s container %s is refused: %s; "
                    "its lines go out unjoined", pattern, origin, address.namespace, address.pod,
                    address.container, exc)
        if self._metrics is not None:
            self._metrics.patterns_rejected.labels(origin=origin).inc()


def annotation_pattern(value: str | None, container: str) -> str | None:
    """``<pattern>`` for every container, or ``<container>=<pattern>;...``."""
    if not value:
        return None
    entries = [part for part in value.split(";") if part.strip()]
    named = {}
    for entry in entries:
        name, sep, pattern = entry.partition("=")
        if not sep or not re.fullmatch(r"[a-z0-9]([-a-z0-9]*[a-z0-9])?", name.strip()):
            # Not a container list: the whole value is one pattern (it may contain '=' or ';').
            return value
        named[name.strip()] = pattern
    return named.get(container)
