"""In-house async reflector: paged list → watch with bookmarks → relist on 410, with backoff.

See docs/design-kube-access.md for why this is not the official client's informer.
(Skeleton: signatures are the contract; the implementation fills them in.)
"""

from __future__ import annotations

import enum
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

T = TypeVar("T")


class EventType(enum.StrEnum):
    LISTED = "LISTED"
    """An item of a (re)list. After the last page comes one SYNCED."""
    SYNCED = "SYNCED"
    """A (re)list completed at ``rv``; items not LISTED since the previous SYNCED are gone."""
    ADDED = "ADDED"
    MODIFIED = "MODIFIED"
    DELETED = "DELETED"
    BOOKMARK = "BOOKMARK"
    """The watch reached ``rv`` (no object)."""


@dataclass(slots=True)
class ReflectorEvent(Generic[T]):
    type: EventType
    obj: T | None
    """The decoded object (None for SYNCED and BOOKMARK)."""
    rv: int
    """resourceVersion of the object (watch events), of the list (LISTED/SYNCED) or the bookmark."""


@dataclass(frozen=True, slots=True)
class ResourceRef:
    """A collection URL: ``/api/v1/pods`` or ``/apis/apps/v1/replicasets`` (namespace optional)."""

    group: str
    version: str
    plural: str
    namespace: str | None = None

    @property
    def path(self) -> str:
        base = f"/apis/{self.group}/{self.version}" if self.group else f"/api/{self.version}"
        if self.namespace:
            base += f"/namespaces/{self.namespace}"
        return f"{base}/{self.plural}"


Handler = Callable[[ReflectorEvent[Any]], Awaitable[None]]
