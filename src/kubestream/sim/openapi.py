"""OpenAPI v3: the /openapi/v3 index and per group-version documents (spec §6, `create -f`).

(Contract skeleton; implementation pending.)
"""

from __future__ import annotations

from typing import Any


def v3_index() -> dict[str, Any]:
    """{"paths": {"api/v1": {"serverRelativeURL": "/openapi/v3/api/v1?hash=..."}, ...}}."""
    raise NotImplementedError


def v3_document(gv_path: str) -> dict[str, Any] | None:
    """The document for "api/v1" or "apis/apps/v1"; None if not served."""
    raise NotImplementedError
