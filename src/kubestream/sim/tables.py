"""meta.k8s.io/v1 Table responses when Accept asks for ``as=Table`` (spec §6, checklist 33).

(Contract skeleton; implementation pending.)
"""

from __future__ import annotations

from typing import Any

from kubestream.sim.resources import ResourceType


def wants_table(accept: str) -> bool:
    """True when the Accept header lists ``as=Table`` (v1 or v1beta1) before plain JSON."""
    raise NotImplementedError


def to_table(
    rtype: ResourceType,
    objects: list[dict[str, Any]],
    *,
    include_headers: bool,
    list_meta: dict[str, Any] | None,
) -> dict[str, Any]:
    """A Table of ``objects`` (rows carry PartialObjectMetadata); headers only if asked."""
    raise NotImplementedError
