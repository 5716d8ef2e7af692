"""``/healthz``, ``/livez`` and ``/readyz`` (k8s.io/apiserver ``pkg/server/healthz/healthz.go``)
and which paths anonymous requests may reach.

``handleRootHealth`` answers ``ok`` in ``text/plain; charset=utf-8`` with nosniff; with
``?verbose`` it lists every check as ``[+]<name> ok`` (``[+]<name> excluded: ok`` for an
``?exclude=<name>``, a warning line for an exclusion that matches nothing) and ends with
``<endpoint> check passed``. ``/<endpoint>/<check>`` answers one check (``adaptCheckToHandler``:
``ok``). The simulator's checks always pass; the list is the generic server's own checks and a
subset of kube-apiserver's post-start hooks, in the registration order a real server shows.
"""

from __future__ import annotations

from aiohttp import web
from multidict import MultiMapping

_LIVE = ("ping", "log", "etcd")
_HOOKS = (
    "poststarthook/start-apiserver-admission-initializer",
    "poststarthook/generic-apiserver-start-informers",
    "poststarthook/priority-and-fairness-config-consumer",
    "poststarthook/priority-and-fairness-filter",
    "poststarthook/storage-object-count-tracker-hook",
    "poststarthook/start-system-namespaces-controller",
    "poststarthook/bootstrap-controller",
    "poststarthook/rbac/bootstrap-roles",
    "poststarthook/scheduling/bootstrap-system-priority-classes",
    "poststarthook/apiservice-registration-controller",
    "poststarthook/apiservice-discovery-controller",
)
CHECKS: dict[str, tuple[str, ...]] = {
    # healthz and livez: ping, log, etcd, hooks; readyz adds etcd-readiness, informer-sync and
    # shutdown (server/config.go AddReadyzChecks, the "shutdown" check of genericapiserver).
    "healthz": (*_LIVE, *_HOOKS),
    "livez": (*_LIVE, *_HOOKS),
    "readyz": (*_LIVE, "etcd-readiness", "informer-sync", *_HOOKS, "shutdown"),
}
PUBLIC_PATHS = frozenset({"/version", "/version/", "/healthz", "/livez", "/readyz"})
"""What the ``system:public-info-viewer`` ClusterRole grants ``system:unauthenticated``
(plugin/pkg/auth/authorizer/rbac/bootstrappolicy/policy.go). With a structured authentication
configuration whose ``anonymous.conditions`` list these paths (AnonymousAuthConfigurableEndpoints,
on by default since 1.32), a request without credentials to any other path is 401."""


def is_public(path: str) -> bool:
    """True for a path anonymous requests may read (the health endpoints' single checks too)."""
    root = "/" + path.strip("/").split("/", 1)[0]
    return path in PUBLIC_PATHS or root in ("/healthz", "/livez", "/readyz")


def _text(body: str, status: int = 200) -> web.Response:
    return web.Response(status=status, text=body, content_type="text/plain", charset="utf-8",
                        headers={"X-Content-Type-Options": "nosniff"})


def answer(path: str, query: MultiMapping[str]) -> web.Response | None:
    """The health endpoint's reply, or None when ``path`` is not one."""
    parts = [p for p in path.split("/") if p]
    if not parts or parts[0] not in CHECKS:
        return None
    endpoint, checks = parts[0], CHECKS[parts[0]]
    if len(parts) > 1:
        name = "/".join(parts[1:])
        return _text("ok") if name in checks else _text("404 page not found\n", 404)
    excluded = [e for value in query.getall("exclude", []) for e in value.split(",") if e]
    if "verbose" not in query:
        return _text("ok")
    lines = []
    for name in checks:
        lines.append(f"[+]{name} excluded: ok" if name in excluded else f"[+]{name} ok")
    unmatched = sorted({e for e in excluded if e not in checks})
    if unmatched:
        quoted = ",".join(f'"{e}"' for e in unmatched)
        lines.append(f"warn: some health checks cannot be excluded: no matches for {quoted}")
    return _text("\n".join(lines) + f"\n{endpoint} check passed\n")
