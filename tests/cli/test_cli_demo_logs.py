"""The demo's logs check against the node log writer's ledger: it says "exactly once" only when
every written line is archived once with its pod's metadata, and names what differs otherwise."""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

from kubestream.cli.demo_logs import check_logs, format_requests, requests_by_agent
from kubestream.sim.accounting import RequestRecord
from kubestream.sim.nodes.log_ledger import LogLedger
from kubestream.sim.nodes.logfiles import NodeLogConfig, NodeLogWriter


def _pod(name: str, uid: str) -> dict[str, Any]:
    return {"metadata": {"name": name, "namespace": "shop", "uid": uid},
            "spec": {"nodeName": "node-a", "containers": [{"name": "app"}]},
            "status": {"phase": "Running", "containerStatuses": [
                {"name": "app", "restartCount": 0, "containerID": f"containerd://{uid.replace('-', '') * 2}"}]}}


def _written(tmp: Path) -> LogLedger:
    writer = NodeLogWriter(NodeLogConfig(root=tmp / "pods", node="node-a", seed=3, kind_weights={"plain": 1.0}))
    writer.follow([_pod("web-0", "0000-1111"), _pod("web-1", "2222-3333")])
    writer.write_burst(20)
    writer.stop()
    return writer.ledger


def _archived(ledger: LogLedger) -> list[dict[str, Any]]:
    """The records a correct agent would have archived for these lines."""
    return [{"kind": "log", "stream": line.stream, "message": f"hello seq={line.seq}",
             "kubernetes": {"namespace": line.namespace, "pod_name": line.pod, "pod_uid": line.pod_uid,
                            "container_name": line.container, "enrichment": "ok"}}
            for line in ledger.lines()]


def test_a_complete_archive_passes(tmp_path: Path) -> None:
    ledger = _written(tmp_path)
    check = check_logs(_archived(ledger), ledger)
    assert check.ok and check.written == check.archived == 20 and check.pods == 2
    assert check.verdict() == "every line exactly once with its pod's metadata"


def test_missing_duplicated_and_mislabelled_lines_fail_and_are_counted(tmp_path: Path) -> None:
    ledger = _written(tmp_path)
    records = _archived(ledger)
    records.append(copy.deepcopy(records[0]))  # delivered twice
    del records[1]  # lost
    records[2]["kubernetes"]["pod_name"] = "someone-else"  # right uid, wrong pod name
    check = check_logs(records, ledger)
    assert not check.ok
    assert (check.missing, check.duplicated, check.wrong_metadata, check.extra) == (1, 1, 1, 0)
    assert "1 missing, 1 duplicated, 0 unknown, 1 with wrong pod metadata" in check.verdict()


def test_nothing_written_is_not_a_pass(tmp_path: Path) -> None:
    assert not check_logs([], LogLedger()).ok


def test_requests_are_told_apart_by_user_and_grouped_by_verb() -> None:
    def req(user: str, verb: str, resource: str, selector: str | None = None) -> RequestRecord:
        return RequestRecord(verb=verb, resource=resource, namespace=None, watch=verb == "watch", code=200,
                             label_selector=None, field_selector=selector, user_agent="", path="/", time=0.0,
                             user=user)

    by_agent = requests_by_agent([req("a", "list", "events"), req("a", "watch", "events"), req("a", "list", "pods"),
                                  req("b", "list", "pods", "spec.nodeName=n1"), req("b", "list", "pods", "spec.nodeName=n1")])
    assert format_requests(by_agent["a"]) == "list 2 (events, pods); watch 1 (events)"
    assert format_requests(by_agent["b"]) == "list 2 (pods[spec.nodeName=n1] 2)"
    assert format_requests({}) == "none"
