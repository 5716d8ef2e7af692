"""Configuration of the simulated API server (one frozen-ish dataclass, no agent settings)."""

from __future__ import annotations

from dataclasses import dataclass, field

from kubestream.sim.versions import DEFAULT_KUBE_VERSION, KubeVersion, kube_version

MIB = 1024 * 1024


@dataclass(frozen=True, slots=True)
class DenyRule:
    """Deny matching requests with 403 Forbidden (a small stand-in for RBAC).

    ``None`` matches anything. ``resource`` is the group resource as in Status messages
    (``pods``, ``leases.coordination.k8s.io``); ``user`` the authenticated user name.
    """

    verb: str | None = None
    resource: str | None = None
    namespace: str | None = None
    user: str | None = None

    def matches(self, verb: str, resource: str, namespace: str | None, user: str) -> bool:
        """True when every set field equals the request's value."""
        return (
            (self.verb is None or self.verb == verb)
            and (self.resource is None or self.resource == resource)
            and (self.namespace is None or self.namespace == namespace)
            and (self.user is None or self.user == user)
        )


@dataclass(slots=True)
class SimConfig:
    """Knobs of the simulated kube-apiserver; defaults follow a real kube-apiserver (spec §1-§7)."""

    host: str = "127.0.0.1"
    port: int = 0
    """0 picks a free port; read the real one from ``SimServer.url``."""
    tls: bool = False
    tokens: dict[str, str] | list[str] | None = None
    """Bearer tokens accepted (list: user "sim-user"; dict: token → user name). None: no auth."""
    deny: list[DenyRule] = field(default_factory=list)
    event_ttl_s: float = 3600.0
    """spec §5 TTL: kube-apiserver --event-ttl defaults to 1h."""
    history_min_s: float = 75.0
    """spec §2: the watch cache keeps at least 75 s of events ..."""
    history_min_events: int = 100
    """... and between 100 ..."""
    history_max_events: int = 102400
    """... and 102400 events per resource."""
    bookmark_interval_s: float = 60.0
    """spec §2: the cacher sends a bookmark about every minute."""
    pod_grace_s: float = 1.0
    """Graceful pod deletion delay of an in-process delete that sets none. HTTP deletes take the
    pod's ``terminationGracePeriodSeconds`` (default 30 s) as kube-apiserver does."""
    continue_ttl_s: float = 300.0
    """spec §1: continue tokens expire after about 5 minutes (etcd compaction)."""
    rate_limit_qps: float | None = None
    rate_limit_burst: int = 10
    aggregated_discovery: bool = True
    max_body_bytes: int = 3 * MIB
    too_large_rv_wait_s: float = 3.0
    """spec §2: the watch cache blocks up to 3 s for a too-new resourceVersion (blockTimeout)."""
    min_request_timeout_s: float = 1800.0
    """spec §2: a watch without timeoutSeconds lasts a random time in [this, 2x this]."""
    auto_namespaces: tuple[str, ...] = ("default", "kube-node-lease", "kube-public", "kube-system")
    kube_version: str = DEFAULT_KUBE_VERSION
    """Which kube-apiserver's response shapes to give (sim/versions.py: 1.32, 1.34, 1.35)."""
    start_rv: int = 1
    """The etcd revision the server starts at. A fresh watch cache starts there: watches and
    exact lists from an older resourceVersion get 410 (spec §2)."""
    compaction_interval_s: float | None = None
    """kube-apiserver's etcd compactor (``--etcd-compaction-interval``, real default 5 min): each
    tick compacts to the revision seen at the previous tick. None: only explicit compactions."""

    kubelets: bool = False
    """Serve a kubelet API (HTTPS, per-node port) for every Node (sim/nodes/kubelet.py)."""
    kubelet_sync_s: float = 0.5
    """How often the kubelet fleet looks for new or deleted Nodes."""

    def __post_init__(self) -> None:
        kube_version(self.kube_version)  # fail at construction, not at the first request

    @property
    def version(self) -> KubeVersion:
        """The profile of ``kube_version``."""
        return kube_version(self.kube_version)

    def user_for_token(self, token: str | None) -> str | None:
        """The user a bearer token authenticates as, or None if it is not accepted."""
        if self.tokens is None:
            return "system:anonymous"
        if token is None:
            return None
        if isinstance(self.tokens, dict):
            return self.tokens.get(token)
        return "sim-user" if token in self.tokens else None
