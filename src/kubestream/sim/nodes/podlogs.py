"""``GET /api/v1/namespaces/{ns}/pods/{name}/log``, served from the node log writer's files.

kube-apiserver (pkg/registry/core/pod/rest/log.go) validates the PodLogOptions (422, wording of
pkg/apis/core/validation ``ValidatePodLogOptions``), picks the container (``validateContainer`` in
pkg/registry/core/pod/strategy.go: 400 when a pod with several containers gets none), and streams
the kubelet's answer as ``text/plain``; kubelet picks the container instance
(pkg/kubelet/kubelet_pods.go ``validateContainerLogStatus``: its errors come back as 400
BadRequest with kubelet's text) and reads its file (sim/nodes/logread.py).
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from aiohttp import web

from kubestream.sim.nodes import logread
from kubestream.sim.nodes.logfiles import NodeLogWriter
from kubestream.sim.nodes.staticpods import kubelet_uid
from kubestream.sim.storage import status as st

FOLLOW_POLL_S = 0.05
"""How often a follower looks for new lines (kubelet waits on fsnotify)."""
_TRUE = ("1", "t", "T", "TRUE", "true", "True")
_FALSE = ("0", "f", "F", "FALSE", "false", "False")


@dataclass(frozen=True, slots=True)
class PodLogOptions:
    """The query of a log request (core/v1 PodLogOptions)."""

    container: str = ""
    follow: bool = False
    previous: bool = False
    timestamps: bool = False
    since_seconds: int | None = None
    since_time: int | None = None
    """Nanoseconds since the epoch."""
    tail_lines: int | None = None
    limit_bytes: int | None = None


def _bool(query: Mapping[str, str], key: str) -> bool:
    value = query.get(key)
    if value is None or value == "":
        return False
    if value in _TRUE:
        return True
    if value in _FALSE:
        return False
    raise st.bad_request(f'strconv.ParseBool: parsing "{value}": invalid syntax')  # Go's conversion error


def _int(query: Mapping[str, str], key: str) -> int | None:
    value = query.get(key)
    if value is None or value == "":
        return None
    try:
        return int(value)
    except ValueError:
        raise st.bad_request(f'strconv.ParseInt: parsing "{value}": invalid syntax') from None


def parse_log_options(query: Mapping[str, str], pod_name: str) -> PodLogOptions:
    """Decode and validate; 400 for undecodable values, 422 PodLogOptions Invalid otherwise."""
    since_time = None
    if query.get("sinceTime"):
        since_time = logread.parse_stamp(query["sinceTime"])
        if since_time is None:
            raise st.bad_request(f'parsing time "{query["sinceTime"]}" as "2006-01-02T15:04:05Z07:00": '
                                 "cannot parse as RFC3339")
    opts = PodLogOptions(
        container=query.get("container", ""), follow=_bool(query, "follow"), previous=_bool(query, "previous"),
        timestamps=_bool(query, "timestamps"), since_seconds=_int(query, "sinceSeconds"), since_time=since_time,
        tail_lines=_int(query, "tailLines"), limit_bytes=_int(query, "limitBytes"))
    causes: list[dict[str, str]] = []
    if opts.tail_lines is not None and opts.tail_lines < 0:
        causes.append(st.field_error("Invalid", "tailLines", "must be greater than or equal to 0",
                                     str(opts.tail_lines)))
    if opts.limit_bytes is not None and opts.limit_bytes < 1:
        causes.append(st.field_error("Invalid", "limitBytes", "must be greater than 0", str(opts.limit_bytes)))
    if opts.since_seconds is not None and opts.since_time is not None:
        causes.append(st.field_error("Forbidden", "",
                                     "at most one of `sinceTime` or `sinceSeconds` may be specified"))
    elif opts.since_seconds is not None and opts.since_seconds < 1:
        causes.append(st.field_error("Invalid", "sinceSeconds", "must be greater than 0",
                                     str(opts.since_seconds)))
    if causes:
        raise st.invalid("PodLogOptions", "", "PodLogOptions", pod_name, causes)
    return opts


def _container_names(spec: dict[str, Any]) -> list[str]:
    # podutil.VisitContainers order: init containers, containers, ephemeral containers.
    return [str(c["name"]) for key in ("initContainers", "containers", "ephemeralContainers")
            for c in spec.get(key) or []]


def pick_container(pod: dict[str, Any], requested: str) -> str:
    """strategy.go ``validateContainer``."""
    spec = pod.get("spec") or {}
    name = pod["metadata"]["name"]
    if not requested:
        containers = spec.get("containers") or []
        if len(containers) == 1:
            return str(containers[0]["name"])
        if not containers:
            raise st.bad_request(f"a container name must be specified for pod {name}")
        raise st.bad_request(f"a container name must be specified for pod {name}, choose one of: "
                             f"[{' '.join(_container_names(spec))}]")
    if requested not in _container_names(spec):
        raise st.bad_request(f"container {requested} is not valid for pod {name}")
    return requested


def _status_of(pod: dict[str, Any], container: str) -> dict[str, Any] | None:
    status = pod.get("status") or {}
    for key in ("initContainerStatuses", "containerStatuses", "ephemeralContainerStatuses"):
        for cs in status.get(key) or []:
            if cs.get("name") == container:
                return dict(cs)
    return None


def pick_instance(pod: dict[str, Any], container: str, previous: bool) -> int:
    """kubelet ``validateContainerLogStatus``: which instance's file (by restart count) to read."""
    pod_name = pod["metadata"]["name"]
    cs = _status_of(pod, container)
    if cs is None:
        raise st.bad_request(f'container "{container}" in pod "{pod_name}" is not available')
    restart = int(cs.get("restartCount", 0))
    state, last = cs.get("state") or {}, cs.get("lastState") or {}
    last_done = (last.get("terminated") or {}).get("containerID")
    if previous:
        if not last_done:
            raise st.bad_request(f'previous terminated container "{container}" in pod "{pod_name}" not found')
        return restart - 1
    if "running" in state:
        return restart
    if "terminated" in state:
        if (state["terminated"] or {}).get("containerID"):
            return restart
        if last_done:
            return restart - 1
        raise st.bad_request(f'container "{container}" in pod "{pod_name}" is terminated')
    if last.get("terminated") is not None:
        if not last_done:
            raise st.bad_request(f'container "{container}" in pod "{pod_name}" is terminated')
        return restart - 1
    reason = (state.get("waiting") or {}).get("reason", "")
    if reason == "ErrImagePull":
        reason = "image can't be pulled"
    elif reason == "ImagePullBackOff":
        reason = "trying and failing to pull image"
    raise st.bad_request(f'container "{container}" in pod "{pod_name}" is waiting to start: {reason}')


class PodLogServer:
    """Serves log requests for pods on the nodes whose writers it knows."""

    def __init__(self, writers: Mapping[str, NodeLogWriter]) -> None:
        self._writers = writers

    async def serve(self, request: web.Request, pod: dict[str, Any], container: str | None = None) -> web.StreamResponse:
        """Answer one request for ``pod`` (its API view); ``container`` from the path (kubelet's
        ``/containerLogs/{ns}/{pod}/{container}``) instead of the ``container`` query option."""
        meta = pod["metadata"]
        opts = parse_log_options(request.query, meta["name"])
        container = pick_container(pod, container if container is not None else opts.container)
        node = (pod.get("spec") or {}).get("nodeName")
        writer = self._writers.get(node) if node else None
        if writer is None:
            # An unscheduled pod has no location (LogLocation returns nil): an empty body; a node
            # without a log writer is treated the same.
            return self._text(b"")
        instance = pick_instance(pod, container, opts.previous)
        pod_dir = writer.pod_dir(meta["namespace"], meta["name"], kubelet_uid(pod))
        path = pod_dir / container / f"{instance}.log"
        since = opts.since_time
        if opts.since_seconds is not None:
            # kubelet counts back from its own clock: the node's, i.e. the writer's.
            since = int((writer.clock() - opts.since_seconds) * 1_000_000_000)
        fmt = logread.Formatter(timestamps=opts.timestamps, since_nanos=since, limit=opts.limit_bytes)
        lines, offset, inode = logread.read_all(path)
        body = b"".join(self._render(fmt, logread.tail_lines(lines, opts.tail_lines)))
        if not opts.follow or fmt.exhausted:
            return self._text(body)
        return await self._follow(request, writer, path, fmt, body, logread.Follower(path, offset, inode))

    @staticmethod
    def _render(fmt: logread.Formatter, lines: list[bytes]) -> list[bytes]:
        return [fmt.render(r) for r in map(logread.decode, lines) if r is not None]

    @staticmethod
    def _text(body: bytes) -> web.Response:
        return web.Response(body=body, headers={"Content-Type": "text/plain"})

    async def _follow(self, request: web.Request, writer: NodeLogWriter, path: Path, fmt: logread.Formatter,
                      first: bytes, follower: logread.Follower) -> web.StreamResponse:
        response = web.StreamResponse(headers={"Content-Type": "text/plain"})
        response.enable_chunked_encoding()
        await response.prepare(request)
        try:
            await response.write(first)
            while not fmt.exhausted:
                running = _is_live(writer, path)
                chunk = b"".join(self._render(fmt, list(follower.poll())))
                if chunk:
                    await response.write(chunk)
                if not running:  # kubelet ends a follow once the container is no longer running
                    break
                await asyncio.sleep(FOLLOW_POLL_S)
            await response.write_eof()
        except (ConnectionResetError, ConnectionError):
            pass  # the client left
        return response


def _is_live(writer: NodeLogWriter, path: Path) -> bool:
    return any(p == path for _, _, p in writer.containers())
