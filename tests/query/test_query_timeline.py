"""``kubestream timeline`` on the real agent's archive: a StatefulSet's events and log lines in
one chronological view joined on pod UID (a pod re-created under the same name is another pod),
and its ``--html`` page rendered by a real headless chromium."""

from __future__ import annotations

from collections import Counter, defaultdict
from pathlib import Path
from typing import Any

import orjson
import pytest
from tests.query.browser import inspect_page
from tests.query.conftest import AgentArchive, run_cli

from kubestream.query.timeline import parse_target


def _recreated_statefulset(archive: AgentArchive) -> tuple[str, str, dict[str, set[str]]]:
    """A StatefulSet of the archive whose pods were re-created: (namespace, name, pod name → uids)."""
    uids: dict[tuple[str, str], dict[str, set[str]]] = defaultdict(lambda: defaultdict(set))
    logged: set[str] = set()
    for r in archive.records:
        k8s = r["kubernetes"]
        if k8s.get("owner_kind") == "StatefulSet" and k8s.get("pod_uid"):
            uids[(k8s["namespace"], k8s["owner_name"])][k8s["pod_name"]].add(k8s["pod_uid"])
            if r["kind"] == "log":
                logged.add(k8s["pod_uid"])
    for (namespace, name), pods in sorted(uids.items()):
        if any(len(u & logged) > 1 for u in pods.values()):
            return namespace, name, pods
    pytest.fail(f"no StatefulSet pod was re-created while the agent ran: {dict(uids)}")


def logged_uids(archive: AgentArchive) -> set[str]:
    return {r["kubernetes"]["pod_uid"] for r in archive.logs}


def _uid_of(record: dict[str, Any]) -> str | None:
    k8s = record.get("kubernetes", {})
    if k8s.get("pod_uid"):
        return str(k8s["pod_uid"])
    involved = record.get("involved", {})
    return str(involved["uid"]) if involved.get("kind") == "Pod" and involved.get("uid") else None


def _timeline(archive: AgentArchive, *args: str) -> list[dict[str, Any]]:
    done = run_cli("timeline", *args, "--archive", str(archive.root), "--since", "1d", "-o", "jsonl")
    assert done.returncode == 0, done.stderr
    return [orjson.loads(line) for line in done.stdout.splitlines()]


def test_statefulset_timeline_joins_events_and_logs_on_pod_uid(agent_archive: AgentArchive) -> None:
    namespace, name, pods = _recreated_statefulset(agent_archive)
    uids = set().union(*pods.values())
    rows = _timeline(agent_archive, f"sts/{name}", "-n", namespace)
    # Every log line and every event of those pod incarnations, nothing else of pods.
    want_logs = [r for r in agent_archive.logs if r["kubernetes"]["pod_uid"] in uids]
    want_pod_events = [r for r in agent_archive.events if _uid_of(r) in uids]
    got_logs = [r for r in rows if r["source"] == "log"]
    got_events = [r for r in rows if r["source"] == "event"]
    assert len(got_logs) == len(want_logs) > 0
    assert Counter(r["message"] for r in got_logs) == Counter(r["message"] for r in want_logs)
    assert {r["pod_uid"] for r in rows if r["pod_uid"]} == uids
    assert sum(1 for r in got_events if r["pod_uid"]) == len(want_pod_events) > 0
    # Events about the StatefulSet itself (no pod) are on its timeline too.
    about_sts = [r for r in agent_archive.events
                 if r["involved"]["kind"] == "StatefulSet" and r["involved"]["name"] == name]
    assert sum(1 for r in got_events if r["object"] == f"statefulset/{name}") == len(about_sts)
    # Chronological; severities are the event type and the log stream.
    times = [r["time"] for r in rows]
    assert times == sorted(times)
    assert {r["severity"] for r in got_logs} <= {"stdout", "stderr"}
    assert {r["severity"] for r in got_events} <= {"Normal", "Warning"}
    # Same pod name, two UIDs: two objects, each with its own lines.
    pod_name = next(p for p, u in pods.items() if len(u & logged_uids(agent_archive)) > 1)
    objects = {r["object"] for r in got_logs if r["object"].startswith(f"pod/{pod_name} (")}
    assert len(objects) == len(pods[pod_name] & logged_uids(agent_archive)) >= 2


def test_pod_and_namespace_targets(agent_archive: AgentArchive) -> None:
    namespace, _, pods = _recreated_statefulset(agent_archive)
    pod_name = next(p for p, u in pods.items() if len(u) > 1)
    rows = _timeline(agent_archive, f"pod/{pod_name}", "-n", namespace)
    assert {r["pod_uid"] for r in rows} == pods[pod_name]
    everything = _timeline(agent_archive, "-n", namespace)
    want = [r for r in agent_archive.records
            if (r.get("kubernetes", {}).get("namespace") if r["kind"] == "log" else
                r["event"]["namespace"] or r["kubernetes"].get("namespace")) == namespace]
    assert len(everything) == len(want)


def test_target_forms() -> None:
    assert parse_target("deploy/checkout", "shop").describe() == "deployment/checkout in namespace shop"
    assert parse_target("web-0", None).kind == "Pod"
    assert parse_target("cronjob/report", None).kind == "CronJob"
    assert parse_target(None, "shop").kind == "Namespace"


def test_bad_target_is_one_line(agent_archive: AgentArchive) -> None:
    done = run_cli("timeline", "svc/web", "--archive", str(agent_archive.root))
    assert done.returncode == 2 and "unknown kind 'svc'" in done.stderr and len(done.stderr.splitlines()) == 1


_PROBES = {
    "points": "Array.from(document.querySelectorAll('rect.point')).map(r => [r.closest('figure').id, "
              "r.dataset.series, r.dataset.minute, +r.dataset.count])",
    "rows": "document.querySelectorAll('#timeline tbody tr').length",
    "width": "document.querySelector('#events-chart svg').getBoundingClientRect().width",
    "filtered": "(() => { const box = document.getElementById('filter'); box.value = 'stderr'; "
                "box.dispatchEvent(new Event('input')); return [document.getElementById('shown').textContent, "
                "Array.from(document.querySelectorAll('#timeline tbody tr')).filter(r => !r.hidden).length]; })()",
}


def test_html_page_renders_offline_with_its_data_points(agent_archive: AgentArchive, tmp_path: Path) -> None:
    namespace, name, _ = _recreated_statefulset(agent_archive)
    page = tmp_path / "timeline.html"
    rows = _timeline(agent_archive, f"sts/{name}", "-n", namespace, "--html", str(page))
    report = inspect_page(page, _PROBES)
    assert not report.console_errors and not report.exceptions, (report.console_errors, report.exceptions)
    assert report.requests == [page.resolve().as_uri()], "the page must load nothing but itself"
    assert report.values["rows"] == len(rows) and report.values["width"] > 100
    # The charts hold exactly the table's counts per minute: events by reason, logs by pod.
    want: Counter[tuple[str, str, str]] = Counter()
    for r in rows:
        chart, series = ("events-chart", r["reason"]) if r["source"] == "event" else ("logs-chart", r["object"])
        want[(chart, series, r["time"][:16] + "Z")] += 1
    got = Counter({(chart, series, minute): count for chart, series, minute, count in report.values["points"]})
    assert got == want
    # The inline script works: the filter keeps the stderr rows.
    shown, visible = report.values["filtered"]
    assert int(shown) == visible == sum(1 for r in rows if "stderr" in " ".join(str(v) for v in r.values()))


def test_the_browser_check_sees_errors_and_requests(tmp_path: Path) -> None:
    """The checks above can fail: a page with a console error, an exception and a fetch."""
    page = tmp_path / "bad.html"
    page.write_text("<!DOCTYPE html><html><body><img src='http://127.0.0.1:9/x.png'>"
                    "<script>console.error('boom'); null.x;</script></body></html>")
    report = inspect_page(page, {})
    assert "boom" in " ".join(report.console_errors) and report.exceptions
    assert "http://127.0.0.1:9/x.png" in report.requests
