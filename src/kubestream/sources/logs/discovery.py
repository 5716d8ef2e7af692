"""Finding container log files: a stat walk of kubelet's ``pods_dir`` layout (+ ``containers_dir``
symlinks), over the file layer's cached listings (``sources.files.dirs``); the file layer's
inotify watches on the directories turn kernel events into "look at this path" calls.

The walk is the truth (it runs at start and every ``sweep_interval_s``); inotify only makes
things fast. Discovery is by the filesystem, not by the API: a pod that lived two seconds and
that the pod watch never showed still left its directory, and it is read.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from kubestream.sources.files.dirs import DirCache, list_dir
from kubestream.sources.logs.paths import LOG_NAME, LogPath, PodDir, parse_container_link, parse_pod_dir

log = logging.getLogger(__name__)

TEMP_SUFFIX = ".tmp"
"""kubelet compresses into ``<f>.tmp`` and renames it: never read a half-written gzip."""


@dataclass(slots=True)
class Scan:
    """One walk of ``pods_dir``: the log files and the directories to watch."""

    files: list[LogPath] = field(default_factory=list)
    pod_dirs: list[Path] = field(default_factory=list)
    container_dirs: list[Path] = field(default_factory=list)
    linked_dirs: list[Path] = field(default_factory=list)
    """Pod or container "directories" that are symlinks: never walked into (see guard.py)."""


def scan_pods_dir(pods_dir: Path, cache: DirCache | None = None) -> Scan:
    """Every log file under ``pods_dir`` (live, rotated and gzipped), sorted by path.

    With a ``cache``, directories whose mtime has not changed are not listed again.
    """
    cache = cache if cache is not None else DirCache()
    scan = Scan()
    seen: set[str] = set()
    for pod_entry in list_dir(pods_dir):
        pod = parse_pod_dir(pod_entry.name)
        if pod is None:
            continue
        if not pod_entry.is_dir(follow_symlinks=False):
            if pod_entry.is_symlink():
                scan.linked_dirs.append(cache.path(pod_entry.path))
            continue
        pod_dir = cache.path(pod_entry.path)
        scan.pod_dirs.append(pod_dir)
        for container_dir, linked in cache.listing(pod_entry.path, seen, _container_dirs):
            if linked:
                scan.linked_dirs.append(container_dir)
                continue
            scan.container_dirs.append(container_dir)
            scan.files.extend(cache.listing(str(container_dir), seen, _file_lister(container_dir, pod)))
    cache.retain(seen)
    scan.files.sort(key=lambda p: str(p.path))
    return scan


def _file_lister(container_dir: Path, pod: PodDir) -> Callable[[str], list[LogPath]]:
    return lambda _: _container_files(container_dir, pod, container_dir.name)


def _container_dirs(pod_dir: str) -> list[tuple[Path, bool]]:
    """(path, is a symlink) of the container directories of a pod directory."""
    return [(Path(e.path), not is_dir) for e in list_dir(Path(pod_dir))
            if (is_dir := e.is_dir(follow_symlinks=False)) or e.is_symlink()]


def scan_container_dir(container_dir: Path, pods_dir: Path) -> list[LogPath]:
    """The log files of one container directory (``.tmp`` files excluded)."""
    try:
        relative = container_dir.relative_to(pods_dir).parts
    except ValueError:
        return []
    pod = parse_pod_dir(relative[0]) if len(relative) == 2 else None
    return _container_files(container_dir, pod, relative[1]) if pod is not None else []


def _container_files(container_dir: Path, pod: PodDir, container: str) -> list[LogPath]:
    # Built from the already parsed directory names: the sweep walks every file every time, and
    # re-parsing full paths was most of its cost.
    found: list[LogPath] = []
    for entry in list_dir(container_dir):
        name = entry.name
        if name.endswith(TEMP_SUFFIX):
            continue
        match = LOG_NAME.fullmatch(name)
        if match is not None:
            found.append(LogPath(
                path=container_dir / name, namespace=pod.namespace, pod=pod.pod, uid=pod.uid, container=container,
                restart=int(match["restart"]), rotated=match["rotated"] is not None, gz=match["gz"] is not None))
    return found


def scan_container_links(containers_dir: Path, pods_dir: Path,
                         uid_for: Callable[[str, str], str | None]) -> list[LogPath]:
    """Files named by ``/var/log/containers`` symlinks that live *outside* ``pods_dir``.

    Links into ``pods_dir`` are skipped (the walk finds those files with their full identity).
    Outside files (dockershim's ``/var/lib/docker/containers/<id>/<id>-json.log``) carry no uid in
    their path; ``uid_for(namespace, pod)`` asks the pod cache, else the uid is "". Whether such
    a file may be read at all (inside ``logs.extra_roots``, a regular file) is the file table's
    call (guard.py): the link is kept in ``LogPath.link`` for what it tells the operator.
    """
    found: list[LogPath] = []
    real_pods = os.path.realpath(pods_dir) + os.sep
    lexical_pods = os.path.abspath(pods_dir) + os.sep
    for entry in list_dir(containers_dir):
        link = parse_container_link(entry.name)
        if link is None:
            continue
        try:
            pointed = os.readlink(entry.path)
        except OSError:
            continue
        # kubelet's links are absolute paths into pods_dir: decided without resolving them.
        if pointed.startswith(lexical_pods) or pointed.startswith(real_pods):
            continue
        target = os.path.realpath(entry.path)
        if target.startswith(real_pods):
            continue
        found.append(LogPath(
            path=Path(target), namespace=link.namespace, pod=link.pod,
            uid=uid_for(link.namespace, link.pod) or "", container=link.container,
            restart=0, rotated=False, gz=False, link=Path(entry.path),
        ))
    return found


