"""``as=PartialObjectMetadata`` / ``as=PartialObjectMetadataList`` (``g=meta.k8s.io;v=v1``): the
metadata-only views client-go's metadata informers and ``kubectl get -o name`` style clients ask
for (k8s.io/apiserver ``endpoints/handlers/response.go`` ``asPartialObjectMetadata`` and
``asPartialObjectMetadataList``: each item carries kind ``PartialObjectMetadata`` and apiVersion
``meta.k8s.io/v1``; the list keeps resourceVersion, continue and remainingItemCount). A watch
sends each event's object as a PartialObjectMetadata.

Negotiation follows the Table's: the first media range the server can serve wins, so a
protobuf range listed first (which client-go sends) is skipped for the JSON one after it.
"""

from __future__ import annotations

from typing import Any

from kubestream.sim.apiserver.negotiation import parse_accept

KIND = "PartialObjectMetadata"
LIST_KIND = "PartialObjectMetadataList"
API_VERSION = "meta.k8s.io/v1"


def wanted(accept: str) -> str | None:
    """``PartialObjectMetadata`` or ``PartialObjectMetadataList`` when the Accept header asks for
    one before anything else the simulator serves; else None."""
    if "as=PartialObjectMetadata" not in accept:
        return None  # the common case: no parsing
    for media in parse_accept(accept):
        if media.mime == "application/json":
            for kind in (KIND, LIST_KIND):
                if media.names("meta.k8s.io", "v1", kind):
                    return kind
        if media.is_plain_json or (media.mime == "application/json" and "as" in media.params):
            return None
    return None


def of(obj: dict[str, Any]) -> dict[str, Any]:
    """One object's PartialObjectMetadata."""
    return {"kind": KIND, "apiVersion": API_VERSION, "metadata": obj.get("metadata", {})}


def list_of(items: list[dict[str, Any]], list_meta: dict[str, Any]) -> dict[str, Any]:
    """A list's PartialObjectMetadataList."""
    return {"kind": LIST_KIND, "apiVersion": API_VERSION, "metadata": list_meta, "items": [of(o) for o in items]}
