"""The HTTP side of server-side apply: PatchOptions validation and the apply-patch+yaml body
(k8s.io/apiserver ``endpoints/handlers/patch.go``; the merge itself is storage/apply.py)."""

from __future__ import annotations

from typing import Any

import yaml
from aiohttp import web

from kubestream.sim.apiserver.requestinfo import RequestInfo
from kubestream.sim.storage import status as st
from kubestream.sim.storage.apply import ApplyRequest, apply_obj
from kubestream.sim.storage.cluster import SimCluster
from kubestream.sim.storage.keyspace import Obj
from kubestream.sim.storage.resources import ResourceType


def check_patch_options(request: web.Request, *, apply: bool) -> None:
    """apimachinery ``validation.ValidatePatchOptions``, one 422 with every cause: ``force`` only
    on an apply, ``fieldManager`` required on one (kubectl defaults it to ``kubectl``; other
    clients must set it), ``dryRun`` only ``All``."""
    causes: list[dict[str, str]] = []
    if not apply and "force" in request.query:
        causes.append(st.field_error("Forbidden", "force", "may not be specified for non-apply patch"))
    if apply and not request.query.get("fieldManager"):
        causes.append(st.field_error("Required", "fieldManager", "is required for apply patch"))
    values = request.query.getall("dryRun", [])
    if any(v != "All" for v in values):
        causes.append(st.field_error("NotSupported", "dryRun", 'supported values: "All"',
                                     "[]string{" + ", ".join(f'"{v}"' for v in values) + "}"))
    if causes:
        raise st.invalid("PatchOptions.meta.k8s.io", "meta.k8s.io", "PatchOptions", "", causes)


def decode(raw: bytes) -> Any:
    """The configuration: YAML (JSON is YAML); ``applyPatcher`` answers 400 on a bad document."""
    try:
        return yaml.safe_load(raw)
    except yaml.YAMLError as exc:
        raise st.bad_request(f"error decoding YAML: {exc}") from None


def run(cluster: SimCluster, request: web.Request, info: RequestInfo, rtype: ResourceType,
        config: Any) -> tuple[Obj, bool]:
    """Apply the configuration with the request's options: (object, created)."""
    force = request.query.get("force", "false").lower() == "true"
    apply = ApplyRequest(config=config, manager=request.query["fieldManager"], force=force,
                         subresource=info.subresource, dry_run=bool(request.query.getall("dryRun", [])))
    return apply_obj(cluster, rtype, info.namespace, str(info.name), apply)
