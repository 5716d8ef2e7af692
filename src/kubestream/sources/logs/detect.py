"""Telling a CRI log file from a docker json-file log from its first bytes."""

from __future__ import annotations

import re

from kubestream.sources.logs.chunk import LogFormat

_CRI_HEAD = re.compile(rb"\d{4}-\d\d-\d\dT[0-9:.]+(?:Z|[+-]\d\d:\d\d) (?:stdout|stderr) [PF](?: |\n|$)")
_DOCKER_HEAD = re.compile(rb'\{\s*"(?:log|stream|time)"\s*:')
_ENOUGH = 64
"""Bytes after which an unrecognised head will not become recognisable by reading more."""


def detect_format(head: bytes) -> LogFormat | None:
    """CRI or docker from the start of a file; None if too little has been written to tell.

    A file whose first line is neither is read as CRI: its lines are kept as malformed messages
    (counted), which loses nothing.
    """
    if _CRI_HEAD.match(head):
        return LogFormat.CRI
    if _DOCKER_HEAD.match(head):
        return LogFormat.DOCKER
    if b"\n" in head or len(head) >= _ENOUGH:
        return LogFormat.CRI
    return None
