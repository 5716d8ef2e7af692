"""Which container an event's ``involvedObject.fieldPath`` points at."""

from __future__ import annotations

import re

from kubestream.kube.objects import ContainerKind

_FIELD_PATH = re.compile(r"^spec\.(containers|initContainers|ephemeralContainers)\{([^}]+)\}")
_KINDS: dict[str, ContainerKind] = {
    "containers": "regular", "initContainers": "init", "ephemeralContainers": "ephemeral",
}


def container_from_field_path(field_path: str | None) -> tuple[str, ContainerKind] | None:
    """``spec.initContainers{setup}`` → ("setup", "init"); None for any other path."""
    if not field_path:
        return None
    m = _FIELD_PATH.match(field_path)
    if m is None:
        return None
    return m.group(2), _KINDS[m.group(1)]
