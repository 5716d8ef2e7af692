"""Field validation for create/update/patch with ``fieldValidation=Strict|Warn|Ignore``.

(Contract skeleton; implementation pending.)
"""

from __future__ import annotations

from typing import Any

from kubestream.sim.resources import ResourceType


def unknown_fields(rtype: ResourceType, obj: dict[str, Any]) -> list[str]:
    """Dotted paths of fields the type's schema does not know, e.g. ["spec.foo"]."""
    raise NotImplementedError
