"""What a container log file's path says about it.

kubelet lays logs out as ``<pods_dir>/<namespace>_<pod>_<uid>/<container>/<restart>.log``
(``BuildPodLogsDirectory`` / ``BuildContainerLogsDirectory``); rotation renames the live file to
``<restart>.log.<YYYYMMDD-HHMMSS>`` and later gzips it to ``....gz`` (through a ``.tmp`` file that
is never read). Namespaces and pod names are DNS names without ``_``, so the directory name splits
unambiguously on its first and last ``_``.

The ``/var/log/containers/<pod>_<namespace>_<container>-<id>.log`` symlinks name the same files;
they only matter when they point outside ``pods_dir`` (dockershim-era Docker nodes).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

LOG_NAME = re.compile(r"(?P<restart>\d+)\.log(?P<rotated>\.\d{8}-\d{6})?(?P<gz>\.gz)?")
_LINK_NAME = re.compile(r"(?P<pod>[^_]+)_(?P<namespace>[^_]+)_(?P<container>.+)-(?P<id>[0-9a-f]{6,})\.log")


@dataclass(frozen=True, slots=True)
class PodDir:
    """The identity in a pod log directory name."""

    namespace: str
    pod: str
    uid: str


@dataclass(frozen=True, slots=True)
class LogPath:
    """A parsed container log file path."""

    path: Path
    namespace: str
    pod: str
    uid: str
    container: str
    restart: int
    rotated: bool
    """A renamed (``.log.<ts>``) or copied file: the runtime no longer writes it."""
    gz: bool
    link: Path | None = None
    """The ``containers_dir`` symlink this file was found by (a file outside ``pods_dir``)."""

    @property
    def scope(self) -> str:
        """The container directory this file's identity is unique in (see ``scope_of``)."""
        return scope_of(self.path)

    @property
    def shown(self) -> Path:
        """The name to tell the operator: the link it was found by, else its path."""
        return self.link if self.link is not None else self.path

    @property
    def container_key(self) -> tuple[str, str]:
        """(pod uid, container): what metadata and selection are kept per."""
        return (self.uid, self.container)

    @property
    def pod_dir(self) -> Path:
        """The ``<namespace>_<pod>_<uid>`` directory holding this file."""
        return self.path.parent.parent


def parse_pod_dir(name: str) -> PodDir | None:
    """``<namespace>_<pod>_<uid>`` → its parts; None for anything else."""
    namespace, sep, rest = name.partition("_")
    pod, sep2, uid = rest.rpartition("_")
    if not (sep and sep2 and namespace and pod and uid):
        return None
    return PodDir(namespace, pod, uid)


def scope_of(path: Path) -> str:
    """``<namespace>_<pod>_<uid>/<container>`` for a file named like kubelet's (whatever
    ``pods_dir`` is mounted as, so a checkpoint row's path gives the same answer); the absolute
    directory for anything else (a runtime's own file named by a ``containers_dir`` link)."""
    if LOG_NAME.fullmatch(path.name) and parse_pod_dir(path.parent.parent.name) is not None:
        return f"{path.parent.parent.name}/{path.parent.name}"
    return str(path.parent)


def parse_log_path(path: Path, pods_dir: Path) -> LogPath | None:
    """Parse ``<pods_dir>/<ns>_<pod>_<uid>/<container>/<restart>.log[.<ts>][.gz]``; None otherwise."""
    try:
        parts = path.relative_to(pods_dir).parts
    except ValueError:
        return None
    if len(parts) != 3:
        return None
    pod_dir = parse_pod_dir(parts[0])
    match = LOG_NAME.fullmatch(parts[2])
    if pod_dir is None or match is None:
        return None
    return LogPath(
        path=path, namespace=pod_dir.namespace, pod=pod_dir.pod, uid=pod_dir.uid, container=parts[1],
        restart=int(match["restart"]), rotated=match["rotated"] is not None, gz=match["gz"] is not None,
    )


@dataclass(frozen=True, slots=True)
class ContainerLink:
    """A ``/var/log/containers`` symlink name: pod, namespace, container and runtime id."""

    pod: str
    namespace: str
    container: str
    container_id: str


def parse_container_link(name: str) -> ContainerLink | None:
    """``<pod>_<namespace>_<container>-<id>.log`` → its parts; None otherwise."""
    match = _LINK_NAME.fullmatch(name)
    if match is None:
        return None
    return ContainerLink(match["pod"], match["namespace"], match["container"], match["id"])
