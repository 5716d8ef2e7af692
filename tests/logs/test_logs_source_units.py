"""The small parts of the logs source: path parsing, fingerprints, the label selector and the
selection rules, inotify on a real directory, the checkpoint table."""

from __future__ import annotations

import os
import sqlite3
from pathlib import Path

import pytest

from kubestream.config.settings import LogsSettings
from kubestream.errors import ConfigError
from kubestream.sources.files.dirs import DirKind, DirWatcher
from kubestream.sources.files.fingerprint import FINGERPRINT_BYTES, fingerprint_of
from kubestream.sources.logs import checkpoint
from kubestream.sources.logs.discovery import scan_pods_dir
from kubestream.sources.logs.paths import parse_container_link, parse_log_path
from kubestream.sources.logs.selection import PodFacts, Selection, parse_label_selector
from kubestream.state.store import StateStore

ROOT = Path("/var/log/pods")
UID = "0a1b2c3d-1111-2222-3333-444455556666"


def test_paths_live_rotated_gzipped_and_foreign() -> None:
    live = parse_log_path(ROOT / f"kube-system_coredns-5d78c9869d-x2x7q_{UID}/coredns/3.log", ROOT)
    assert live is not None
    assert (live.namespace, live.pod, live.uid, live.container, live.restart) == (
        "kube-system", "coredns-5d78c9869d-x2x7q", UID, "coredns", 3)
    assert not live.rotated and not live.gz
    rotated = parse_log_path(ROOT / f"default_web-0_{UID}/app/0.log.20261121-050000", ROOT)
    gz = parse_log_path(ROOT / f"default_web-0_{UID}/app/0.log.20261121-050000.gz", ROOT)
    assert rotated is not None and rotated.rotated and not rotated.gz
    assert gz is not None and gz.rotated and gz.gz
    for bad in (f"default_web-0_{UID}/app/0.log.20261121-050000.tmp", f"default_web-0_{UID}/app/x.log",
                "nounderscores/app/0.log", f"default_web-0_{UID}/0.log"):
        assert parse_log_path(ROOT / bad, ROOT) is None, bad
    assert parse_log_path(Path("/elsewhere") / f"default_web-0_{UID}/app/0.log", ROOT) is None


def test_container_link_names() -> None:
    link = parse_container_link("web-0_default_istio-proxy-" + "ab" * 32 + ".log")
    assert link is not None
    assert (link.pod, link.namespace, link.container, link.container_id) == ("web-0", "default", "istio-proxy",
                                                                             "ab" * 32)
    assert parse_container_link("README") is None


def test_fingerprint_is_the_first_line_or_256_bytes() -> None:
    line = b"2026-11-21T05:00:00.123456789Z stdout F hello seq=1\n"
    assert fingerprint_of(line[:-1]) is None  # first line not complete yet: wait
    assert fingerprint_of(line) == fingerprint_of(line + b"more data that follows")
    assert fingerprint_of(line) != fingerprint_of(line.replace(b"seq=1", b"seq=2"))
    long_head = b"x" * (FINGERPRINT_BYTES + 10)
    assert fingerprint_of(long_head) == fingerprint_of(long_head[:FINGERPRINT_BYTES])
    assert fingerprint_of(long_head[:FINGERPRINT_BYTES - 1]) is None


def test_label_selector_syntax_and_semantics() -> None:
    reqs = parse_label_selector("app=web, tier!=db,env in (prod, staging),!legacy,canary,version notin (v1)")
    assert [(r.key, r.op) for r in reqs] == [("app", "="), ("tier", "!="), ("env", "in"), ("legacy", "!"),
                                             ("canary", "exists"), ("version", "notin")]
    labels = {"app": "web", "env": "prod", "canary": "1"}
    assert all(r.matches(labels) for r in reqs)
    assert not all(r.matches({**labels, "legacy": "y"}) for r in reqs)
    assert not all(r.matches({**labels, "tier": "db"}) for r in reqs)
    assert parse_label_selector("app==web")[0].values == ("web",)
    with pytest.raises(ConfigError):
        parse_label_selector("app in prod")


def test_selection_rules() -> None:
    settings = LogsSettings(include_paths=["default_*", "kube-system_*"], exclude_paths=["*/istio-proxy/*"],
                            namespaces_exclude=["kube-system"], label_selector="app")
    sel = Selection(settings, own_pod=("default", "kubestream-abc"))
    assert sel.path_excluded("default", "web-0", f"default_web-0_{UID}/app/0.log") is None
    assert sel.path_excluded("other", "web-0", f"other_web-0_{UID}/app/0.log") == "include_paths"
    assert sel.path_excluded("default", "web-0", f"default_web-0_{UID}/istio-proxy/0.log") == "exclude_paths"
    assert sel.path_excluded("kube-system", "dns", f"kube-system_dns_{UID}/dns/0.log") == "namespaces_exclude"
    assert sel.path_excluded("default", "kubestream-abc", f"default_kubestream-abc_{UID}/a/0.log") == "own_pod"
    ok = PodFacts(labels={"app": "web"}, annotations={}, namespace_labels={})
    assert sel.pod_excluded("app", ok) is None
    assert sel.pod_excluded("app", PodFacts(None, None, None)) == "label_selector"  # unknown pod
    assert sel.pod_excluded("app", PodFacts({"app": "w", "kubestream.io/exclude": "true"}, {}, {})) == "pod_label"
    assert sel.pod_excluded("app", PodFacts({"app": "w"}, {}, {"kubestream.io/exclude": "true"})) == "namespace_label"
    facts = PodFacts({"app": "w"}, {"kubestream.io/exclude-containers": "sidecar, debug"}, {})
    assert sel.pod_excluded("debug", facts) == "container_annotation"
    assert sel.pod_excluded("app", facts) is None
    # Without a label selector an unknown pod is read (nothing excluded it).
    assert Selection(LogsSettings()).pod_excluded("app", PodFacts(None, None, None)) is None
    assert Selection(LogsSettings(exclude_own_pod=False), own_pod=("default", "k")).path_excluded(
        "default", "k", "x") is None


def test_inotify_reports_creation_writes_renames_and_removal(tmp_path: Path) -> None:
    container_dir = tmp_path / f"default_web-0_{UID}" / "app"
    container_dir.mkdir(parents=True)
    watcher = DirWatcher()
    try:
        watcher.watch(DirKind.ROOT, tmp_path)
        watcher.watch(DirKind.CONTAINER, container_dir)
        live = container_dir / "0.log"
        live.write_bytes(b"line\n")
        os.rename(live, container_dir / "0.log.20261121-050000")
        (tmp_path / "default_api-0_x").mkdir()
        events = [e for e in watcher.events() if e is not None]
        seen = {(e.kind, e.path.name, e.created, e.modified, e.removed) for e in events}
        assert (DirKind.CONTAINER, "0.log", True, False, False) in seen
        assert (DirKind.CONTAINER, "0.log", False, True, False) in seen
        assert (DirKind.CONTAINER, "0.log", False, False, True) in seen  # moved away
        assert (DirKind.CONTAINER, "0.log.20261121-050000", True, False, False) in seen
        assert (DirKind.ROOT, "default_api-0_x", True, False, False) in seen
        assert watcher.events() == []  # drained, non-blocking
    finally:
        watcher.close()


def test_scan_finds_live_rotated_and_gz_but_not_tmp(tmp_path: Path) -> None:
    d = tmp_path / f"default_web-0_{UID}" / "app"
    d.mkdir(parents=True)
    for name in ("0.log", "0.log.20261121-050000", "0.log.20261121-040000.gz", "0.log.20261121-030000.tmp"):
        (d / name).write_bytes(b"x\n")
    (tmp_path / "not-a-pod-dir").mkdir()
    scan = scan_pods_dir(tmp_path)
    assert sorted(p.path.name for p in scan.files) == ["0.log", "0.log.20261121-040000.gz", "0.log.20261121-050000"]
    assert scan.container_dirs == [d]


def test_checkpoint_rows_only_advance_and_carry_the_line_number(tmp_path: Path) -> None:
    state = StateStore(tmp_path / "state.db")
    try:
        saved = checkpoint.load(state)
        assert saved.offsets == {} and saved.line_seq == 0
        with state.transaction() as conn:
            checkpoint.FileCheckpoint("fp1", 100, "/p/0.log", 1, 2, UID, "app", last_line=10).apply(conn)
            checkpoint.FileCheckpoint("fp1", 50, "/p/0.log", 1, 2, UID, "app", last_line=5).apply(conn)
            checkpoint.FileCheckpoint("fp2", 7, "/p/1.log", 1, 3, UID, "app", last_line=12).apply(conn)
        saved = checkpoint.load(state)
        assert saved.offsets == {"fp1": 100, "fp2": 7} and saved.line_seq == 12

        class Boom(Exception):
            pass

        with pytest.raises(Boom), state.transaction() as conn:
            checkpoint.FileCheckpoint("fp1", 900, "/p/0.log", 1, 2, UID, "app", last_line=99).apply(conn)
            raise Boom  # the batch registration failed: the position must not move
        assert checkpoint.committed_offset(state, "fp1") == 100
        assert checkpoint.forget(state, ["fp2"]) == 1
        assert checkpoint.known_fingerprints(state) == {"fp1"}
        assert isinstance(state.conn, sqlite3.Connection)
    finally:
        state.close()
