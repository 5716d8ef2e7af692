"""The on-disk formats of container log files."""

from __future__ import annotations

import enum


class LogFormat(enum.StrEnum):
    """The on-disk format of a container log file."""

    CRI = "cri"
    """containerd / CRI-O: ``<RFC3339Nano> <stdout|stderr> <P|F> <message>\\n``."""
    DOCKER = "docker"
    """Docker's json-file driver: ``{"log":"...\\n","stream":"stdout","time":"..."}\\n``."""
