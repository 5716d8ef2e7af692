"""Discovery documents: /version, /api, /apis, /api/v1, /apis/<g>/<v>, aggregated v2 (spec §6).

(Contract skeleton; implementation pending.)
"""

from __future__ import annotations

from typing import Any

AGGREGATED_CONTENT_TYPE = "application/json;g=apidiscovery.k8s.io;v=v2;as=APIGroupDiscoveryList"


def version_info() -> dict[str, Any]:
    """The /version document (minor "32")."""
    raise NotImplementedError


def wants_aggregated(accept: str) -> bool:
    """True when the Accept header asks for the v2 aggregated discovery document."""
    raise NotImplementedError


def core_versions(server_address: str) -> dict[str, Any]:
    """/api (APIVersions)."""
    raise NotImplementedError


def group_list() -> dict[str, Any]:
    """/apis (APIGroupList)."""
    raise NotImplementedError


def resource_list(group: str, version: str) -> dict[str, Any] | None:
    """/api/v1 or /apis/<group>/<version> (APIResourceList); None if not served."""
    raise NotImplementedError


def aggregated(core: bool) -> dict[str, Any]:
    """APIGroupDiscoveryList for /api (core=True) or /apis (core=False)."""
    raise NotImplementedError
