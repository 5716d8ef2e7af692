"""Authentication, authorization, rate limiting, TLS, error storms and request accounting
(spec §6; checklist 26-27)."""

from __future__ import annotations

import time
from pathlib import Path

import orjson
import urllib3
from kubernetes import client, config

from kubestream.sim.config import DenyRule
from kubestream.sim.server import SimServer
from kubestream.sim.testing import http


def test_bearer_tokens_and_rotation(sim_factory) -> None:  # type: ignore[no-untyped-def]
    server: SimServer = sim_factory(tokens=["t1"])
    missing = http(server, "GET", "/api/v1/pods")
    assert missing.json == {"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
                            "message": "Unauthorized", "reason": "Unauthorized", "code": 401}
    assert http(server, "GET", "/api/v1/pods", token="wrong").status == 401
    assert http(server, "GET", "/api/v1/pods", token="t1").status == 200
    server.set_tokens(["t2"])
    assert http(server, "GET", "/api/v1/pods", token="t1").status == 401
    assert http(server, "GET", "/api/v1/pods", token="t2").status == 200


def test_forbidden_messages(sim_factory) -> None:  # type: ignore[no-untyped-def]
    server: SimServer = sim_factory(tokens={"tok": "alice"}, deny=[DenyRule(verb="list", resource="pods"),
                                                                   DenyRule(verb="get", resource="leases.coordination.k8s.io")])
    cluster_wide = http(server, "GET", "/api/v1/pods", token="tok")
    assert cluster_wide.status == 403
    assert cluster_wide.json["message"] == ('pods is forbidden: User "alice" cannot list resource "pods" in API group "" '
                                            "at the cluster scope")
    assert cluster_wide.json["details"] == {"kind": "pods"}
    namespaced = http(server, "GET", "/api/v1/namespaces/default/pods", token="tok")
    assert namespaced.json["message"].endswith('in the namespace "default"')
    lease = http(server, "GET", "/apis/coordination.k8s.io/v1/namespaces/default/leases/x", token="tok")
    assert lease.json["message"] == ('leases.coordination.k8s.io "x" is forbidden: User "alice" cannot get resource '
                                     '"leases" in API group "coordination.k8s.io" in the namespace "default"')


def test_rate_limit_is_plain_text_429(sim_factory) -> None:  # type: ignore[no-untyped-def]
    server: SimServer = sim_factory(rate_limit_qps=0.5, rate_limit_burst=2)
    codes = [http(server, "GET", "/api/v1/pods").status for _ in range(4)]
    assert codes[:2] == [200, 200] and codes[-1] == 429
    reply = http(server, "GET", "/api/v1/pods")
    assert reply.raw == b"Too many requests, please try again later.\n"
    assert reply.headers["Retry-After"] == "1"


def test_error_storm_and_slow(sim_server: SimServer) -> None:
    sim_server.faults.error_storm(429, 0.3, retry_after=2, resource="pods", verbs=["list"])
    storm = http(sim_server, "GET", "/api/v1/pods")
    # spec §6: an injected 429 has flow control's shape (Go http.Error), not a JSON Status.
    assert (storm.status, storm.headers["Retry-After"], storm.raw) == (
        429, "2", b"Too many requests, please try again later.\n")
    assert storm.headers["Content-Type"] == "text/plain; charset=utf-8"
    assert storm.headers["X-Content-Type-Options"] == "nosniff"
    assert http(sim_server, "GET", "/api/v1/namespaces").status == 200  # other resources unaffected
    sim_server.faults.error_storm(429, 0.3, retry_after=2, resource="nodes", as_status=True)
    cache_not_ready = http(sim_server, "GET", "/api/v1/nodes")
    assert (cache_not_ready.json["reason"], cache_not_ready.json["details"]["retryAfterSeconds"]) == (
        "TooManyRequests", 2)
    time.sleep(0.35)
    assert http(sim_server, "GET", "/api/v1/pods").status == 200
    sim_server.faults.error_storm(503, 5)
    assert http(sim_server, "GET", "/api/v1/pods").json["reason"] == "ServiceUnavailable"
    sim_server.faults.clear()
    sim_server.faults.slow(0.2, 5)
    started = time.monotonic()
    assert http(sim_server, "GET", "/api/v1/pods").status == 200
    assert time.monotonic() - started >= 0.2


def test_tls_and_token_through_kubeconfig(sim_factory, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    server: SimServer = sim_factory(tls=True, tokens=["secret"])
    assert server.url.startswith("https://") and server.ca_cert_path is not None
    path = server.write_kubeconfig(tmp_path / "kc", token="secret")
    api = client.CoreV1Api(config.new_client_from_config(config_file=str(path)))
    assert [n.metadata.name for n in api.list_namespace().items] == ["default", "kube-node-lease", "kube-public",
                                                                      "kube-system"]
    unverified = urllib3.PoolManager(cert_reqs="CERT_REQUIRED")
    try:
        unverified.request("GET", server.url + "/api/v1/pods", retries=False)
        raise AssertionError("a certificate from an unknown CA must be rejected")
    except urllib3.exceptions.SSLError:
        pass


def test_request_accounting_and_admin_endpoints(sim_server: SimServer) -> None:
    http(sim_server, "GET", "/api/v1/namespaces/default/pods?labelSelector=a%3Db", headers={"User-Agent": "probe/1"})
    http(sim_server, "POST", "/apis/coordination.k8s.io/v1/namespaces/default/leases", {"metadata": {"name": "l"}})
    http(sim_server, "GET", "/api/v1/pods?watch=1&timeoutSeconds=1")
    http(sim_server, "GET", "/version")
    log = sim_server.requests
    assert log.count(verb="list", resource="pods", namespace="default") == 1
    assert log.count(verb="create", resource="leases.coordination.k8s.io") == 1
    assert log.count(verb="watch", watch=True) == 1
    assert log.counts()["version"] == 1
    record = log.records()[0]
    assert (record.label_selector, record.user_agent, record.code) == ("a=b", "probe/1", 200)
    admin = http(sim_server, "GET", "/_sim/requests").json
    assert admin["counts"]["list pods"] == 1
    fault = http(sim_server, "POST", "/_sim/faults", orjson.loads(b'{"action": "error_storm", "status": 500, "seconds": 5}'))
    assert fault.status == 200
    assert http(sim_server, "GET", "/api/v1/pods").status == 500
    http(sim_server, "POST", "/_sim/faults", {"action": "clear"})
    assert http(sim_server, "POST", "/_sim/faults", {"action": "nope"}).status == 400
    http(sim_server, "POST", "/_sim/requests/reset")
    assert log.records() == []


def test_requests_are_recorded_with_the_authenticated_user(sim_factory) -> None:  # type: ignore[no-untyped-def]
    server: SimServer = sim_factory(tokens={"ta": "alice", "tb": "bob"})
    http(server, "GET", "/api/v1/pods", token="ta")
    http(server, "GET", "/api/v1/nodes", token="tb")
    http(server, "GET", "/api/v1/nodes", token="wrong")
    assert [(r.user, r.resource, r.code) for r in server.requests.records()] == [
        ("alice", "pods", 200), ("bob", "nodes", 200), ("", "nodes", 401)]


def test_health_and_version_are_public_but_a_bad_token_is_not(sim_factory) -> None:  # type: ignore[no-untyped-def]
    server: SimServer = sim_factory(tokens=["t1"])
    for path in ("/healthz", "/livez", "/readyz", "/version", "/livez/ping"):
        reply = http(server, "GET", path)
        assert reply.status == 200, path
    assert http(server, "GET", "/readyz").raw == b"ok"
    assert http(server, "GET", "/healthz").headers["Content-Type"] == "text/plain; charset=utf-8"
    verbose = http(server, "GET", "/readyz?verbose&exclude=etcd&exclude=nope").raw.decode().splitlines()
    assert verbose[:4] == ["[+]ping ok", "[+]log ok", "[+]etcd excluded: ok", "[+]etcd-readiness ok"]
    assert verbose[-3:] == ["[+]shutdown ok", 'warn: some health checks cannot be excluded: no matches for "nope"',
                            "readyz check passed"]
    assert http(server, "GET", "/livez?verbose").raw.decode().endswith("\nlivez check passed\n")
    assert http(server, "GET", "/livez/nope").status == 404
    assert http(server, "GET", "/healthz", token="wrong").status == 401  # a bad token is never anonymous
    assert http(server, "GET", "/api/v1/pods").status == 401


def test_self_subject_review_and_access_review(sim_factory) -> None:  # type: ignore[no-untyped-def]
    server: SimServer = sim_factory(tokens={"t1": "alice"}, deny=[DenyRule(verb="delete", resource="pods",
                                                                          namespace="prod")])
    who = http(server, "POST", "/apis/authentication.k8s.io/v1/selfsubjectreviews",
               {"apiVersion": "authentication.k8s.io/v1", "kind": "SelfSubjectReview"}, token="t1")
    assert who.status == 201
    assert who.json["status"] == {"userInfo": {"username": "alice", "groups": ["system:authenticated"]}}
    path = "/apis/authorization.k8s.io/v1/selfsubjectaccessreviews"

    def can(**attrs: str) -> bool:
        reply = http(server, "POST", path, {"spec": {"resourceAttributes": attrs}}, token="t1")
        assert reply.status == 201 and reply.json["kind"] == "SelfSubjectAccessReview"
        return bool(reply.json["status"]["allowed"])

    assert can(verb="delete", resource="pods", namespace="dev")
    assert not can(verb="delete", resource="pods", namespace="prod")
    assert can(verb="get", resource="pods", namespace="prod")
    neither = http(server, "POST", path, {"spec": {}}, token="t1")
    assert (neither.status, neither.json["message"]) == (
        422, 'SelfSubjectAccessReview.authorization.k8s.io "" is invalid: spec.resourceAttributes: Invalid value: '
             '"null": exactly one of nonResourceAttributes or resourceAttributes must be specified')
    assert http(server, "GET", path, token="t1").status == 405
