"""Which container log files are read (``logs.*`` selection options).

Rules, all of which must let a file through:

- ``include_paths`` / ``exclude_paths``: shell globs on the path relative to ``pods_dir``
  (``fnmatch``: ``*`` also matches ``/``), e.g. ``kube-system_*`` or ``*/istio-proxy/*``;
- ``namespaces_include`` / ``namespaces_exclude``;
- the agent's own pod (``POD_NAMESPACE``/``POD_NAME``) when ``exclude_own_pod``;
- ``exclude_label`` = "true" on the pod or on its namespace;
- ``exclude_containers_annotation`` on the pod (comma-separated container names);
- ``label_selector`` (Kubernetes syntax) on the pod's labels.

The path rules and the namespace lists need nothing but the path, so they hold even for a pod the
API never showed. Label and annotation rules need the pod: an unknown pod passes the exclusion
rules (reading a file nobody excluded beats losing it) but does not match a ``label_selector``
(nothing shows it was meant to be included).
"""

from __future__ import annotations

import fnmatch
from collections.abc import Mapping
from dataclasses import dataclass

from kubestream.config.settings import LogsSettings
from kubestream.errors import ConfigError
from kubestream.util import label_selectors
from kubestream.util.label_selectors import LabelSelectorError, Requirement

_TRUE = "true"


def parse_label_selector(text: str) -> list[Requirement]:
    """Parse ``app=web,tier!=db,env in (a,b),!legacy,canary`` with the API server's grammar
    (``kubestream.util.label_selectors``); raises ConfigError keyed ``logs.label_selector``."""
    text = text.strip()
    try:
        return label_selectors.parse_label_selector(text)
    except LabelSelectorError as exc:
        raise ConfigError(f"cannot parse the label selector near {text[exc.term_start:]!r}",
                          key="logs.label_selector") from None


@dataclass(frozen=True, slots=True)
class PodFacts:
    """What the selection may know about a pod (all None/empty when the pod is unknown)."""

    labels: Mapping[str, str] | None
    annotations: Mapping[str, str] | None
    namespace_labels: Mapping[str, str] | None


class Selection:
    """The compiled selection rules of ``LogsSettings``."""

    def __init__(self, settings: LogsSettings, *, own_pod: tuple[str, str] | None = None) -> None:
        self._settings = settings
        self._requirements = parse_label_selector(settings.label_selector) if settings.label_selector else None
        self._own_pod = own_pod if settings.exclude_own_pod else None

    def path_excluded(self, namespace: str, pod: str, relative_path: str) -> str | None:
        """Why a file is excluded by what its path says (a reason), or None."""
        s = self._settings
        if s.include_paths and not any(fnmatch.fnmatchcase(relative_path, g) for g in s.include_paths):
            return "include_paths"
        if any(fnmatch.fnmatchcase(relative_path, g) for g in s.exclude_paths):
            return "exclude_paths"
        if s.namespaces_include and namespace not in s.namespaces_include:
            return "namespaces_include"
        if namespace in s.namespaces_exclude:
            return "namespaces_exclude"
        if self._own_pod == (namespace, pod):
            return "own_pod"
        return None

    def pod_excluded(self, container: str, facts: PodFacts) -> str | None:
        """Why a container is excluded by its pod's or namespace's metadata, or None."""
        s = self._settings
        if facts.namespace_labels is not None and facts.namespace_labels.get(s.exclude_label) == _TRUE:
            return "namespace_label"
        if facts.labels is not None and facts.labels.get(s.exclude_label) == _TRUE:
            return "pod_label"
        if facts.annotations is not None:
            excluded = facts.annotations.get(s.exclude_containers_annotation, "")
            if container in {name.strip() for name in excluded.split(",")}:
                return "container_annotation"
        requirements = self._requirements
        if requirements is not None and (
                facts.labels is None or not all(r.matches(facts.labels) for r in requirements)):
            return "label_selector"
        return None
