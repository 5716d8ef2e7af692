"""What differs between the kube-apiserver versions the simulator can pretend to be
(``SimConfig.kube_version`` / ``kubestream sim --kube-version``), each difference seen in the
recorded replays of that version (tests/fixtures/recorded/k8s-openapi-replays/v1-*)."""

from __future__ import annotations

from dataclasses import dataclass

DEFAULT_KUBE_VERSION = "1.35"
"""The newest version with recorded ground truth."""


@dataclass(frozen=True, slots=True)
class KubeVersion:
    """The version-specific shapes of one kube-apiserver minor."""

    minor: int
    zero_time_as_null: bool
    """≤1.32: a zero ``metav1.Time`` (an empty object's ``creationTimestamp``, a pod template's)
    serialises as ``null``; 1.34+ omit it (``omitzero``). Seen in the BOOKMARK objects and the
    Deployment templates of the v1-32 vs v1-34/v1-35 replays."""
    list_blueprint: bool
    """1.32 only: the initial-events-end bookmark carries the
    ``kubernetes.io/initial-events-list-blueprint`` annotation (apimachinery v0.32 types.go)."""
    pod_generation: bool
    """1.34+: pods carry ``metadata.generation`` (KEP-5067; v1-34/v1-35 pod-list replays)."""

    @property
    def name(self) -> str:
        """``1.35``."""
        return f"1.{self.minor}"


VERSIONS: dict[str, KubeVersion] = {
    "1.32": KubeVersion(32, zero_time_as_null=True, list_blueprint=True, pod_generation=False),
    "1.34": KubeVersion(34, zero_time_as_null=False, list_blueprint=False, pod_generation=True),
    "1.35": KubeVersion(35, zero_time_as_null=False, list_blueprint=False, pod_generation=True),
}
"""Only versions with recorded replays: a version we cannot check against is not offered."""


def kube_version(name: str) -> KubeVersion:
    """The profile of ``name`` (``1.32``, ``1.34`` or ``1.35``); ValueError for any other."""
    try:
        return VERSIONS[name]
    except KeyError:
        raise ValueError(f"unsupported kube version {name!r}; choose one of {', '.join(VERSIONS)}") from None
