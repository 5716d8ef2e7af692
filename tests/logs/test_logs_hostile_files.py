"""What a pod can leave under the pods directory, through the real LogsSource → Pipeline → Spool →
Delivery → FileSink: FIFOs, sockets and devices are skipped (never opened blocking), symlinks out
of the log roots are never followed, and two files starting with the same line are two files.
Every refusal is counted in ``files_skipped{reason}`` and logged once per file.

(Unreadable files need a process that obeys file modes: tests/agent/test_agent_hostile_files.py.)
"""

from __future__ import annotations

import asyncio
import logging
import os
import socket
import stat
import threading
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
from logs_source_support import (
    CRI_TS,
    Rig,
    archived_messages,
    container_log_path,
    eventually,
    make_settings,
    write_cri,
)

from kubestream.obs.metrics import Metrics
from kubestream.sources.files.fingerprint import fingerprint_of, identity_of, read_head
from kubestream.sources.files.guard import SYMLINK_OUTSIDE_ROOTS, Refusal, SkipReporter
from kubestream.sources.logs import checkpoint
from kubestream.sources.logs.paths import scope_of
from kubestream.state.store import StateStore

GUARD_LOGGER = "kubestream.sources.files.guard"


def skipped(rig: Rig, reason: str) -> float:
    return rig.metrics.registry.get_sample_value("kubestream_files_skipped_total", {"reason": reason}) or 0.0


def refusal_lines(caplog: pytest.LogCaptureFixture, path: Path) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.name == GUARD_LOGGER and f"{path}:" in r.getMessage()]


async def wait_archived(rig: Rig, expected: set[tuple[str, str]], within: float = 10.0) -> None:
    await eventually(lambda: expected <= set(archived_messages(rig.tmp / "out")), within)


@contextmanager
def unjammed_fifos(root: Path) -> Iterator[None]:
    """Keep opening every FIFO under ``root`` for writing, so that code blocked in ``open()`` on
    one is released (and this test fails on its assertions instead of hanging the run)."""
    stop = threading.Event()

    def unjam() -> None:
        while not stop.wait(0.05):
            for path in root.rglob("*"):
                try:
                    if stat.S_ISFIFO(os.lstat(path).st_mode):
                        os.close(os.open(path, os.O_WRONLY | os.O_NONBLOCK))
                except OSError:
                    pass  # ENXIO: nobody is blocked reading it

    thread = threading.Thread(target=unjam, daemon=True)
    thread.start()
    try:
        yield
    finally:
        stop.set()
        thread.join()


def bind_socket(path: Path) -> socket.socket:
    """A listening unix socket at ``path`` (through /proc/self/fd: tmp paths exceed sun_path)."""
    dir_fd = os.open(path.parent, os.O_PATH | os.O_DIRECTORY)
    try:
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        sock.bind(f"/proc/self/fd/{dir_fd}/{path.name}")
        sock.listen()
        return sock
    finally:
        os.close(dir_fd)


# -- FIFOs, sockets, devices -------------------------------------------------------------------


async def test_fifos_sockets_and_devices_are_skipped_and_every_good_line_is_archived(
        tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO)
    good = container_log_path(tmp_path, "good")
    write_cri(good, *(f"good {i}" for i in range(20)))
    fifo = container_log_path(tmp_path, "fifo")
    os.mkfifo(fifo)
    sock_path = container_log_path(tmp_path, "sock")
    device = container_log_path(tmp_path, "dev")
    os.mknod(device, stat.S_IFCHR | 0o600, os.makedev(1, 3))  # what /dev/null is
    sock = bind_socket(sock_path)
    swapped = container_log_path(tmp_path, "swapped")
    write_cri(swapped, *(f"swapped {i}" for i in range(5)))
    settings = make_settings(tmp_path, sweep_interval_s=0.1)
    rig = Rig(tmp_path, settings)
    try:
        with unjammed_fifos(tmp_path / "pods"):
            await rig.start()
            try:
                await wait_archived(rig, {("good", f"good {i}") for i in range(20)}
                                    | {("swapped", f"swapped {i}") for i in range(5)})
                # The runtime's file replaced by a FIFO mid-run (renamed over it), then new lines
                # elsewhere, in the same container's next file and in the good pod's file.
                tmp_fifo = swapped.with_name("0.log.tmp")
                os.mkfifo(tmp_fifo)
                os.rename(tmp_fifo, swapped)
                write_cri(swapped.with_name("1.log"), *(f"after {i}" for i in range(5)))
                write_cri(good, *(f"good {i}" for i in range(20, 40)))
                await wait_archived(rig, {("good", f"good {i}") for i in range(40)}
                                    | {("swapped", f"after {i}") for i in range(5)})
                await asyncio.sleep(0.5)  # several sweeps: still one count and one line per file
            finally:
                await rig.stop()
    finally:
        sock.close()
    assert skipped(rig, "not_regular") == 4
    for path in (fifo, sock_path, device, swapped):
        assert len(refusal_lines(caplog, path)) == 1, path
    got = archived_messages(tmp_path / "out")
    assert all(n == 1 for n in got.values())
    assert sum(got.values()) == 40 + 5 + 5


# -- symlinks ----------------------------------------------------------------------------------


async def test_symlinks_out_of_the_roots_are_never_followed(tmp_path: Path,
                                                           caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO)
    outside = tmp_path / "outside"
    outside.mkdir()
    secret = outside / "shadow"
    write_cri(secret, "SECRET in a file")
    good = container_log_path(tmp_path, "good")
    write_cri(good, *(f"good {i}" for i in range(10)))
    # A log file that is a link to a secret file, and one to another file outside.
    pods_link = container_log_path(tmp_path, "evil")
    pods_link.symlink_to(secret)
    other = outside / "other.log"
    write_cri(other, "SECRET other file")
    container_link = tmp_path / "containers" / f"evil_default_app-{'ab' * 32}.log"
    container_link.parent.mkdir()
    container_link.symlink_to(other)
    # An alias of another pod's file: read once, at its own path, with its own pod's metadata.
    alias = container_log_path(tmp_path, "alias")
    alias.symlink_to(good)
    # Directories that are links out of the roots, made while the source runs (inotify path).
    pod_dir_target = outside / "poddir"
    (pod_dir_target / "app").mkdir(parents=True)
    write_cri(pod_dir_target / "app" / "0.log", "SECRET via a pod dir link")
    container_dir_target = outside / "cdir"
    container_dir_target.mkdir()
    write_cri(container_dir_target / "0.log", "SECRET via a container dir link")

    rig = Rig(tmp_path, make_settings(tmp_path, sweep_interval_s=0.1))
    await rig.start()
    try:
        await wait_archived(rig, {("good", f"good {i}") for i in range(10)})
        pod_dir_link = tmp_path / "pods" / f"default_evil2_{uuid.uuid4()}"
        pod_dir_link.symlink_to(pod_dir_target)
        evil3 = tmp_path / "pods" / f"default_evil3_{uuid.uuid4()}"
        evil3.mkdir()
        container_dir_link = evil3 / "app"
        container_dir_link.symlink_to(container_dir_target)
        write_cri(good, *(f"good {i}" for i in range(10, 20)))
        await wait_archived(rig, {("good", f"good {i}") for i in range(20)})
        await eventually(lambda: skipped(rig, SYMLINK_OUTSIDE_ROOTS) >= 4)
        await asyncio.sleep(0.5)  # several sweeps
    finally:
        await rig.stop()
    got = archived_messages(tmp_path / "out")
    assert not [m for _, m in got if "SECRET" in m], got
    assert set(got) == {("good", f"good {i}") for i in range(20)} and all(n == 1 for n in got.values())
    assert skipped(rig, SYMLINK_OUTSIDE_ROOTS) == 4
    for path in (pods_link, container_link, pod_dir_link, container_dir_link):
        assert len(refusal_lines(caplog, path)) == 1, path


async def test_links_into_an_extra_root_are_read(tmp_path: Path) -> None:
    """Dockershim-era nodes: /var/log/pods/.../0.log and /var/log/containers links point into
    /var/lib/docker/containers; listed in ``extra_roots``, those files are read."""
    docker = tmp_path / "docker"
    (docker / "c1").mkdir(parents=True)
    (docker / "c2").mkdir()
    write_cri(docker / "c1" / "c1-json.log", *(f"via pods {i}" for i in range(5)))
    write_cri(docker / "c2" / "c2-json.log", *(f"via containers {i}" for i in range(5)))
    container_log_path(tmp_path, "dockerpod").symlink_to(docker / "c1" / "c1-json.log")
    link = tmp_path / "containers" / f"web-0_default_app-{'cd' * 32}.log"
    link.parent.mkdir()
    link.symlink_to(docker / "c2" / "c2-json.log")
    rig = Rig(tmp_path, make_settings(tmp_path, extra_roots=[docker]))
    await rig.start()
    try:
        await wait_archived(rig, {("dockerpod", f"via pods {i}") for i in range(5)}
                            | {("web-0", f"via containers {i}") for i in range(5)})
    finally:
        await rig.stop()
    assert skipped(rig, SYMLINK_OUTSIDE_ROOTS) == 0
    assert all(n == 1 for n in archived_messages(tmp_path / "out").values())


# -- identical first lines ---------------------------------------------------------------------


async def test_files_with_the_same_first_line_are_two_files_also_across_a_restart(tmp_path: Path) -> None:
    banner = CRI_TS + b" stdout F starting server v1.2.3\n"
    files = {name: container_log_path(tmp_path, name) for name in ("web-0", "web-1")}
    for name, path in files.items():
        write_cri(path, *(f"{name} {i}" for i in range(10)), first_line=banner)
    with files["web-0"].open("rb") as a, files["web-1"].open("rb") as b:
        assert fingerprint_of(read_head(a.fileno())) == fingerprint_of(read_head(b.fileno()))
    settings = make_settings(tmp_path)
    expected = {(name, "starting server v1.2.3") for name in files}
    expected |= {(name, f"{name} {i}") for name in files for i in range(10)}
    rig = Rig(tmp_path, settings)
    await rig.start()
    try:
        await wait_archived(rig, expected)
    finally:
        await rig.stop()
    for name, path in files.items():  # written while the source is down
        write_cri(path, *(f"{name} {i}" for i in range(10, 20)))
    expected |= {(name, f"{name} {i}") for name in files for i in range(10, 20)}
    rig = Rig(tmp_path, settings)
    await rig.start()
    try:
        await wait_archived(rig, expected)
        await asyncio.sleep(0.3)
    finally:
        await rig.stop()
    got = archived_messages(tmp_path / "out")
    assert set(got) == expected and all(n == 1 for n in got.values()), got


def test_positions_recorded_before_identities_were_scoped_are_kept(tmp_path: Path) -> None:
    """An upgrade re-keys each old row by the directory it was read in: the file resumes."""
    head = CRI_TS + b" stdout F hello\n"
    old = fingerprint_of(head)
    assert old is not None
    path = f"/var/log/pods/default_web-0_{uuid.uuid4()}/app/0.log"
    state = StateStore(tmp_path / "state.db")
    state.register_schema(checkpoint.SCHEMA)
    with state.transaction() as conn:
        checkpoint.FileCheckpoint(fingerprint=old, offset=1234, path=path, dev=1, ino=2, pod_uid="u",
                                  container="app", last_line=9).apply(conn)
    saved = checkpoint.load(state)
    state.close()
    assert saved.offsets == {identity_of(head, scope_of(Path(path))): 1234}
    assert saved.line_seq == 9


def test_refusals_are_counted_each_and_logged_within_a_budget(caplog: pytest.LogCaptureFixture) -> None:
    now = [0.0]
    metrics = Metrics()
    reporter = SkipReporter(metrics, clock=lambda: now[0])
    caplog.set_level(logging.INFO)
    total = SkipReporter.LOG_BURST + 5
    for i in range(total):
        for _ in range(3):  # seen by three sweeps
            reporter.report(Path(f"/p/{i}"), Refusal("not_regular", (1, i), "a FIFO"))
    lines = [r.getMessage() for r in caplog.records if r.name == GUARD_LOGGER]
    assert len(lines) == SkipReporter.LOG_BURST
    assert metrics.registry.get_sample_value("kubestream_files_skipped_total", {"reason": "not_regular"}) == total
    now[0] += SkipReporter.LOG_WINDOW_S
    reporter.report(Path("/p/late"), Refusal("not_regular", (1, 999), "a FIFO"))
    last = [r.getMessage() for r in caplog.records if r.name == GUARD_LOGGER][-1]
    assert "/p/late" in last and "5 more files skipped" in last
