"""The EndpointSlice controller: a Service's endpoints follow its ready pods."""

from __future__ import annotations

from kubestream.sim.workload.base import WorkloadBase
from kubestream.sim.workload.bodies import _ZONES
from kubestream.sim.workload.cluster_model import _Pod


class ServiceEndpoints(WorkloadBase):
    """EndpointSlices that follow the pods behind each Service."""

    # ---- services -------------------------------------------------------------------------

    def _dirty_endpoints(self, pod: _Pod) -> None:
        for svc in self._services:
            if svc.namespace == pod.namespace and svc.app == pod.app:
                svc.dirty = True

    def _update_endpoints(self) -> None:
        for svc in self._services:
            if not svc.dirty:
                continue
            svc.dirty = False
            endpoints = [{
                "addresses": [p.ip], "conditions": {"ready": not p.crashloop, "serving": not p.crashloop,
                                                    "terminating": False},
                "nodeName": p.node.name if p.node else "", "zone": _ZONES[p.node.index % len(_ZONES)] if p.node else "",
                "targetRef": {"kind": "Pod", "namespace": p.namespace, "name": p.name, "uid": p.uid},
            } for p in self._pods.values() if p.app == svc.app and p.namespace == svc.namespace and p.ip
                and p.stage == "running"]
            with self._tolerate(f"update endpointslice {svc.namespace}/{svc.slice_name}"):
                self._api.patch("endpointslices", svc.namespace, svc.slice_name, {"endpoints": endpoints},
                                patch_type="merge", group="discovery.k8s.io")
