"""A node's container log files, written the way kubelet + containerd (or Docker's json-file
driver) write them, with a ledger of every line.

Layout (kubelet ``BuildContainerLogsDirectory``/``BuildPodLogsDirectory``)::

    <root>/<namespace>_<pod>_<uid>/<container>/<restart>.log           the file the runtime writes
    <containers_dir>/<pod>_<namespace>_<container>-<containerid>.log   symlink to it

Formats:

* ``cri`` (containerd ``pkg/cri/io/logger.go``): ``<RFC3339Nano> <stream> <P|F> <content>\\n``;
  a line longer than ``max_line_bytes`` (containerd ``max_container_log_line_size``, 16 KiB) is
  cut into ``P`` parts and a final ``F`` part. Timestamps are Go ``RFC3339Nano`` (trailing zeros
  trimmed, so their width varies).
* ``docker`` (json-file driver): ``{"log":"...","stream":"stdout","time":"..."}\\n``; messages
  over 16 KiB are split into entries whose ``log`` has no trailing ``\\n`` except the last; the
  encoder escapes ``<``, ``>``, ``&`` as ``\\u003c``… and replaces invalid UTF-8 with U+FFFD.
  Files keep the kubelet layout above (as cri-dockerd's symlinked paths present them).

Rotation follows kubelet's ``containerLogManager.rotateLog``: delete the oldest rotated files so
at most ``max_files - 2`` remain, gzip every remaining uncompressed rotated file (``.tmp`` then
rename), then rename ``N.log`` → ``N.log.<YYYYMMDD-HHMMSS>`` and reopen a fresh ``N.log``.
``copytruncate`` mode instead copies the file and truncates it in place (logrotate style).

Every line carries one ``seq=<n>`` token, the last thing on the line, ASCII, so it survives
P/F merging, Docker splits and lossy decoding of invalid UTF-8: ``extract_seqs()`` finds it.
"""

from __future__ import annotations

import gzip
import logging
import os
import random
import re
import shutil
import threading
import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal, Protocol

import orjson

from kubestream.sim.nodes.log_ledger import LogLedger, LogLine
from kubestream.sim.nodes.staticpods import kubelet_uid
from kubestream.sim.storage.names import Clock, WallNanos, random_hex, rfc3339_nano, rotation_suffix

log = logging.getLogger(__name__)

LineKind = Literal["plain", "json", "stack", "long", "invalid_utf8"]
LINE_KINDS: tuple[LineKind, ...] = ("plain", "json", "stack", "long", "invalid_utf8")
_SEQ = re.compile(rb"seq=(\d+)")
_DOCKER_ESCAPES = ((b"<", b"\\u003c"), (b">", b"\\u003e"), (b"&", b"\\u0026"))


def extract_seqs(message: str | bytes) -> list[int]:
    """Every sequence id in an archived message (one per physical line the writer wrote)."""
    data = message.encode("utf-8", "surrogateescape") if isinstance(message, str) else message
    return [int(m) for m in _SEQ.findall(data)]


class PodLister(Protocol):
    """The part of ``SimCluster`` the writer needs to follow a node's pods."""

    def list(
        self,
        plural: str,
        namespace: str | None = None,
        *,
        group: str = "",
        version: str = "v1",
        label_selector: str | None = None,
        field_selector: str | None = None,
    ) -> list[dict[str, Any]]: ...


@dataclass(slots=True)
class NodeLogConfig:
    """How one node's logs are written."""

    root: Path
    """kubelet's pod log root (``/var/log/pods``)."""
    node: str = "node-0"
    containers_dir: Path | None = None
    """Where the ``/var/log/containers`` symlinks go; default ``<root>/../containers``."""
    seed: int = 0
    format: Literal["cri", "docker"] = "cri"
    max_line_bytes: int = 16 * 1024
    rotate_bytes: int = 10 * 1024 * 1024
    """kubelet ``containerLogMaxSize`` (10Mi)."""
    max_files: int = 5
    """kubelet ``containerLogMaxFiles``, counting the live file."""
    rotation: Literal["rename", "copytruncate"] = "rename"
    compress: bool = True
    remove_after_s: float = 60.0
    """A deleted pod's log directory goes this long after the pod left the API."""
    lines_per_s: float = 200.0
    """Background mode: lines per second over all containers of the node."""
    sync_every_s: float = 1.0
    """Background mode: how often to re-list the node's pods."""
    stderr_fraction: float = 0.2
    long_line_bytes: int = 1024 * 1024 + 4321
    kind_weights: dict[str, float] = field(default_factory=lambda: {
        "plain": 0.6, "json": 0.3, "stack": 0.07, "long": 0.005, "invalid_utf8": 0.025,
    })

    @property
    def links_dir(self) -> Path:
        """The ``/var/log/containers`` directory in use."""
        return self.containers_dir if self.containers_dir is not None else self.root.parent / "containers"


@dataclass(slots=True)
class _Container:
    namespace: str
    pod: str
    uid: str
    name: str
    container_id: str
    restart: int
    path: Path
    link: Path
    fd: int = -1
    size: int = 0

    @property
    def sort_key(self) -> tuple[str, str, str]:
        return (self.namespace, self.pod, self.name)


def _container_ids(pod: dict[str, Any]) -> dict[str, tuple[str, int]]:
    """Container name → (runtime id, restart count) from the pod's status."""
    status = pod.get("status") or {}
    out: dict[str, tuple[str, int]] = {}
    for key in ("initContainerStatuses", "containerStatuses"):
        for cs in status.get(key) or []:
            cid = str(cs.get("containerID") or "")
            out[cs["name"]] = (cid.partition("://")[2] or cid, int(cs.get("restartCount", 0)))
    return out


class NodeLogWriter:
    """Writes container logs for the pods of one node (see the module docstring)."""

    def __init__(
        self,
        config: NodeLogConfig,
        *,
        cluster: PodLister | None = None,
        ledger: LogLedger | None = None,
        clock: Clock = time.time,
    ) -> None:
        self.config = config
        self._cluster = cluster
        self.ledger = ledger if ledger is not None else LogLedger()
        self._clock = clock
        self._nanos = WallNanos(clock)
        self._rng = random.Random(config.seed)
        self._kinds = [k for k in LINE_KINDS if config.kind_weights.get(k, 0) > 0]
        self._weights = [config.kind_weights[k] for k in self._kinds]
        self._seq = 0
        self._live: dict[tuple[str, str], _Container] = {}
        self._dead: list[_Container] = []
        """Exited instances whose files stay until their pod goes (kubelet keeps one per container)."""
        self._pods: dict[str, tuple[str, str]] = {}
        """uid → (namespace, name) of every pod with a log directory."""
        self._gone_at: dict[str, float] = {}
        self._lock = threading.RLock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        config.root.mkdir(parents=True, exist_ok=True)
        config.links_dir.mkdir(parents=True, exist_ok=True)

    @property
    def clock(self) -> Clock:
        """The node's wall clock (also what ``pods/log`` ``sinceSeconds`` counts back from)."""
        return self._clock

    # ---- following pods -------------------------------------------------------------------

    def sync_pods(self) -> None:
        """List the node's pods from the cluster and follow them (new, restarted, gone)."""
        if self._cluster is None:
            raise RuntimeError("sync_pods needs a cluster")
        pods = self._cluster.list("pods", field_selector=f"spec.nodeName={self.config.node}")
        self.follow(pods)

    def follow(self, pods: Iterable[dict[str, Any]]) -> None:
        """Make the tracked set match these pods: the node's complete pod list."""
        seen: set[str] = set()
        with self._lock:
            for pod in pods:
                uid = kubelet_uid(pod)
                seen.add(uid)
                self.track_pod(pod)
            for uid in list(self._pods):
                if uid not in seen:
                    self.pod_deleted(uid)

    def track_pod(self, pod: dict[str, Any]) -> None:
        """Start (or keep) writing for a Running pod's containers; stop for any other phase."""
        meta = pod["metadata"]
        # A static pod's directory carries its own UID, not its mirror's (staticpods.py).
        uid, namespace, name = kubelet_uid(pod), str(meta["namespace"]), str(meta["name"])
        phase = (pod.get("status") or {}).get("phase", "")
        # Containers exist only once kubelet reports the pod Running; a terminating pod's
        # containers are being stopped, so they write no more.
        stopped = bool(meta.get("deletionTimestamp")) or phase != "Running"
        ids = _container_ids(pod)
        with self._lock:
            if uid in self._gone_at:
                return
            self._pods[uid] = (namespace, name)
            for spec in (pod.get("spec") or {}).get("containers") or []:
                cname = str(spec["name"])
                current = self._live.get((uid, cname))
                if stopped:
                    if current is not None:
                        self._retire(current)
                    continue
                cid, restart = ids.get(cname, ("", 0))
                if current is not None and current.restart >= restart:
                    continue
                if current is not None:
                    self._retire(current)
                self._open(namespace, name, uid, cname, cid or self._fallback_id(uid, cname, restart), restart)

    def pod_deleted(self, uid: str) -> None:
        """The pod left the API: stop writing; its directory goes after ``remove_after_s``."""
        with self._lock:
            if uid not in self._pods or uid in self._gone_at:
                return
            for key in [k for k in self._live if k[0] == uid]:
                self._retire(self._live[key])
            self._gone_at[uid] = self._clock()

    def collect_garbage(self) -> list[Path]:
        """Remove directories (and symlinks) of pods gone longer than ``remove_after_s``."""
        removed: list[Path] = []
        now = self._clock()
        with self._lock:
            for uid, gone in list(self._gone_at.items()):
                if now - gone < self.config.remove_after_s:
                    continue
                namespace, name = self._pods.pop(uid)
                del self._gone_at[uid]
                for dead in [c for c in self._dead if c.uid == uid]:
                    self._dead.remove(dead)
                    dead.link.unlink(missing_ok=True)
                pod_dir = self.pod_dir(namespace, name, uid)
                shutil.rmtree(pod_dir, ignore_errors=True)
                removed.append(pod_dir)
        return removed

    def _fallback_id(self, uid: str, container: str, restart: int) -> str:
        # Pods made without a status (tests) still need a stable runtime id for the symlink.
        return random_hex(random.Random(f"{uid}/{container}/{restart}"), 64)

    def pod_dir(self, namespace: str, pod: str, uid: str) -> Path:
        """``<root>/<namespace>_<pod>_<uid>``."""
        return self.config.root / f"{namespace}_{pod}_{uid}"

    def _open(self, namespace: str, pod: str, uid: str, name: str, cid: str, restart: int) -> None:
        path = self.pod_dir(namespace, pod, uid) / name / f"{restart}.log"
        path.parent.mkdir(parents=True, exist_ok=True)
        link = self.config.links_dir / f"{pod}_{namespace}_{name}-{cid}.log"
        container = _Container(namespace, pod, uid, name, cid, restart, path, link)
        container.fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o640)
        container.size = os.fstat(container.fd).st_size
        if not link.is_symlink():
            link.symlink_to(path)
        self._live[(uid, name)] = container
        # kubelet keeps the previous instance's log for `kubectl logs --previous`, older ones go.
        for old in [c for c in self._dead if c.uid == uid and c.name == name and c.restart < restart - 1]:
            self._dead.remove(old)
            old.link.unlink(missing_ok=True)
            for f in old.path.parent.glob(f"{old.restart}.log*"):
                f.unlink(missing_ok=True)

    def _retire(self, container: _Container) -> None:
        os.close(container.fd)
        container.fd = -1
        del self._live[(container.uid, container.name)]
        self._dead.append(container)

    def containers(self) -> list[tuple[str, str, Path]]:
        """(pod uid, container, live file) of every container being written, sorted by name."""
        with self._lock:
            return [(c.uid, c.name, c.path) for c in sorted(self._live.values(), key=lambda c: c.sort_key)]

    def symlink(self, uid: str, container: str) -> Path:
        """The ``/var/log/containers`` link of a live container."""
        with self._lock:
            return self._live[(uid, container)].link

    # ---- writing --------------------------------------------------------------------------

    def write_burst(self, n: int, *, kinds: Iterable[LineKind] | None = None) -> list[LogLine]:
        """Write ``n`` lines spread over the live containers (a stack trace counts its lines).

        ``kinds`` forces the line kinds in order, cycling (e.g. ``["long"]``); otherwise they are
        drawn from ``config.kind_weights``.
        """
        forced = list(kinds) if kinds is not None else []
        written: list[LogLine] = []
        with self._lock:
            live = sorted(self._live.values(), key=lambda c: c.sort_key)
            if not live:
                return written
            while len(written) < n:
                container = self._rng.choice(live)
                kind = forced[len(written) % len(forced)] if forced else self._pick_kind()
                written.extend(self._write_kind(container, kind, n - len(written)))
        return written

    def write_line(self, uid: str, container: str, kind: LineKind = "plain",
                   stream: Literal["stdout", "stderr"] | None = None) -> list[LogLine]:
        """Write one message of a given kind to one container (a stack trace: several lines)."""
        with self._lock:
            return self._write_kind(self._live[(uid, container)], kind, 1 << 30, stream)

    def _pick_kind(self) -> LineKind:
        return self._rng.choices(self._kinds, self._weights)[0]

    def _write_kind(self, c: _Container, kind: LineKind, room: int,
                    stream: Literal["stdout", "stderr"] | None = None) -> list[LogLine]:
        if stream is None:
            stream = "stderr" if kind == "stack" or self._rng.random() < self.config.stderr_fraction else "stdout"
        bodies = self._bodies(kind, room)
        out: list[LogLine] = []
        for body in bodies:
            self._seq += 1
            message = body + b" seq=%d" % self._seq
            self._append(c, stream, message)
            line = LogLine(c.uid, c.name, stream, self._seq, c.namespace, c.pod, kind, len(message))
            self.ledger.record(line)
            out.append(line)
        self._rotate_if_needed(c)
        return out

    def _bodies(self, kind: LineKind, room: int) -> list[bytes]:
        rng = self._rng
        if kind == "plain":
            return [_plain_line(rng)]
        if kind == "json":
            return [_json_line(rng)]
        if kind == "stack":
            return _stack_trace(rng)[: max(1, room)]
        if kind == "long":
            return [_long_line(rng, self.config.long_line_bytes)]
        return [_invalid_utf8_line(rng)]

    def _append(self, c: _Container, stream: str, message: bytes) -> None:
        stamp = rfc3339_nano(self._nanos())
        step = self.config.max_line_bytes
        parts = [message[i:i + step] for i in range(0, len(message), step)] or [b""]
        if self.config.format == "cri":
            head = f"{stamp} {stream} ".encode()
            data = b"".join(
                head + (b"F " if i == len(parts) - 1 else b"P ") + part + b"\n" for i, part in enumerate(parts)
            )
        else:
            data = b"".join(
                _docker_entry(part + (b"\n" if i == len(parts) - 1 else b""), stream, stamp)
                for i, part in enumerate(parts)
            )
        # One write per message: a tailer may still see a torn line, as with a real runtime.
        os.write(c.fd, data)
        c.size += len(data)

    # ---- rotation -------------------------------------------------------------------------

    def _rotate_if_needed(self, c: _Container) -> None:
        if c.size >= self.config.rotate_bytes:
            self._rotate(c)

    def rotate(self, uid: str, container: str) -> Path:
        """Rotate one container's live file now; returns the rotated file's path."""
        with self._lock:
            return self._rotate(self._live[(uid, container)])

    def _rotate(self, c: _Container) -> Path:
        rotated = self._prepare_rotation(c)
        if self.config.rotation == "copytruncate":
            shutil.copyfile(c.path, rotated)
            os.ftruncate(c.fd, 0)
        else:
            os.close(c.fd)
            os.rename(c.path, rotated)
            # The runtime reopens the path (CRI ReopenContainerLog).
            c.fd = os.open(c.path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o640)
        c.size = 0
        return rotated

    def _prepare_rotation(self, c: _Container) -> Path:
        """kubelet ``rotateLog`` up to the rename: clean up, trim, compress; pick the new name."""
        rotated = sorted(p for p in c.path.parent.glob(f"{c.path.name}.*") if not p.name.endswith(".tmp"))
        for p in c.path.parent.glob(f"{c.path.name}.*.tmp"):
            p.unlink()
        keep = max(0, self.config.max_files - 2)
        for p in rotated[: max(0, len(rotated) - keep)]:
            p.unlink()
        if self.config.compress:
            for p in rotated[max(0, len(rotated) - keep):]:
                if p.suffix != ".gz":
                    _gzip(p)
        # kubelet names by the second and would overwrite on a clash; it rotates at most every
        # 10 s, we may rotate faster, so step to the next free second instead of losing a file.
        ts = self._clock()
        while True:
            target = c.path.with_name(f"{c.path.name}.{rotation_suffix(ts)}")
            if not target.exists() and not target.with_name(target.name + ".gz").exists():
                return target
            ts += 1

    # ---- background mode ------------------------------------------------------------------

    def start(self) -> None:
        """Write ``lines_per_s`` lines per second in a thread, following the node's pods."""
        if self._thread is not None:
            raise RuntimeError("already started")
        self._stop.clear()
        self._thread = threading.Thread(target=self._run, name=f"nodelogs-{self.config.node}", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        """Stop the thread and close every open file (directories stay)."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=10)
            self._thread = None
        with self._lock:
            for c in list(self._live.values()):
                self._retire(c)

    def _run(self) -> None:
        period = 0.05
        carry = 0.0
        next_sync = 0.0
        while not self._stop.is_set():
            now = time.monotonic()
            try:
                if self._cluster is not None and now >= next_sync:
                    self.sync_pods()
                    next_sync = now + self.config.sync_every_s
                self.collect_garbage()
                carry += self.config.lines_per_s * period
                if int(carry) > 0:
                    carry -= len(self.write_burst(int(carry)))
                    carry = max(carry, 0.0)
            except Exception:  # keep writing through a transient failure, but say so
                log.exception("node log writer for %s failed a round", self.config.node)
            self._stop.wait(period)


def _gzip(path: Path) -> None:
    """kubelet ``compressLog``: write ``<f>.tmp``, rename to ``<f>.gz``, drop the original."""
    tmp = path.with_name(path.name + ".tmp")
    with path.open("rb") as src, gzip.open(tmp, "wb") as dst:
        shutil.copyfileobj(src, dst)
    tmp.rename(path.with_name(path.name + ".gz"))
    path.unlink()


def _docker_entry(chunk: bytes, stream: str, stamp: str) -> bytes:
    entry = orjson.dumps({"log": chunk.decode("utf-8", "replace"), "stream": stream, "time": stamp})
    for raw, escaped in _DOCKER_ESCAPES:
        entry = entry.replace(raw, escaped)
    return entry + b"\n"


_PATHS = ("/api/v1/orders", "/api/v1/items", "/healthz", "/checkout", "/cart/add", "/metrics", "/login")
_LEVELS = ("INFO", "INFO", "INFO", "DEBUG", "WARN", "ERROR")
_WORDS = ("cache", "worker", "db", "http", "queue", "auth", "scheduler", "grpc")


def _plain_line(rng: random.Random) -> bytes:
    level = rng.choice(_LEVELS)
    return (
        f"{level:<5} [{rng.choice(_WORDS)}-{rng.randint(0, 7)}] {rng.choice(('GET', 'POST', 'PUT'))} "
        f"{rng.choice(_PATHS)} status={rng.choice((200, 200, 201, 204, 404, 500))} "
        f"dur={rng.randint(1, 900)}ms client=10.{rng.randint(0, 255)}.{rng.randint(0, 255)}.{rng.randint(1, 254)} "
        f"<{rng.choice(_WORDS)}> & done"
    ).encode()


def _json_line(rng: random.Random) -> bytes:
    return orjson.dumps({
        "level": rng.choice(("info", "info", "debug", "warn", "error")),
        "logger": rng.choice(_WORDS),
        "msg": f"request served {rng.choice(_PATHS)}",
        "status": rng.choice((200, 201, 404, 500)),
        "duration_ms": round(rng.random() * 250, 3),
        "trace_id": random_hex(rng, 32),
        "user": {"id": rng.randint(1, 10_000), "tier": rng.choice(("free", "pro"))},
        "note": "üñí©ødé ✓",
    })


def _stack_trace(rng: random.Random) -> list[bytes]:
    if rng.random() < 0.5:
        frames = [f"\tat com.example.{rng.choice(_WORDS).title()}Service.handle(Service.java:{rng.randint(10, 400)})"
                  for _ in range(rng.randint(3, 8))]
        return [f'Exception in thread "main" java.lang.IllegalStateException: {rng.choice(_WORDS)} unavailable'
                .encode(), *(f.encode() for f in frames)]
    frames = []
    for _ in range(rng.randint(2, 5)):
        frames += [f'  File "/app/{rng.choice(_WORDS)}.py", line {rng.randint(5, 300)}, in handler',
                   "    return process(request)"]
    return [b"Traceback (most recent call last):", *(f.encode() for f in frames),
            f"ValueError: invalid {rng.choice(_WORDS)} payload".encode()]


def _long_line(rng: random.Random, size: int) -> bytes:
    unit = "".join(rng.choice("abcdefghijklmnopqrstuvwxyz0123456789") for _ in range(64)).encode()
    body = b"payload " + unit * (size // len(unit) + 1)
    return body[:size]


def _invalid_utf8_line(rng: random.Random) -> bytes:
    # 0xFF never occurs in UTF-8, so the line is invalid whatever else is drawn.
    junk = b"\xff" + bytes(rng.choice((0xFE, 0xC3, 0x80, 0xE2, 0x28)) for _ in range(rng.randint(1, 7)))
    return b"binary frame " + junk + b" len=%d" % rng.randint(1, 9999)
