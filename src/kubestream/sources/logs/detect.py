"""Telling a CRI log file from a docker json-file log from its first bytes.

Every complete line of the head is evidence: the format more of them are well-formed in wins
(the first well-formed line breaks a tie), so a docker file whose first line was cut (it starts
inside a line) is not taken for CRI. Only when no complete line is either, the start of the
unterminated one is looked at. A head that proves nothing is read as CRI: the parser treats the
format as a hint until a line proves it (``parser`` switches on the first well-formed line of the
other format), and until then every line is kept as a malformed message (counted), the same in
either format.
"""

from __future__ import annotations

import re

from kubestream.sources.logs.cri import is_cri_line
from kubestream.sources.logs.docker import is_docker_line
from kubestream.sources.logs.formats import LogFormat

_CRI_HEAD = re.compile(
    rb"\d{4}-\d\d-\d\d[Tt][0-9:.]+(?:[Zz]|[+-]\d\d:\d\d) (?:stdout|stderr) [PF](?::[^ \n]*)?(?: |\n|$)")
_DOCKER_HEAD = re.compile(rb'\{\s*"(?:log|stream|time)"\s*:')
_ENOUGH = 64
"""Bytes after which an unrecognised head will not become recognisable by reading more."""
_MAX_LINES = 16
"""Complete lines of the head looked at."""


def detect_format(head: bytes) -> LogFormat | None:
    """CRI or docker from the start of a file; None if too little has been written to tell."""
    lines = head.split(b"\n")
    tail = lines.pop()
    decided = _by_lines(lines[:_MAX_LINES])
    if decided is not None:
        return decided
    if _CRI_HEAD.match(tail):
        return LogFormat.CRI
    if _DOCKER_HEAD.match(tail):
        return LogFormat.DOCKER
    if lines or len(head) >= _ENOUGH:
        return LogFormat.CRI
    return None


def _by_lines(lines: list[bytes]) -> LogFormat | None:
    """The format most of ``lines`` are well-formed in (the first one's on a tie), None if none is."""
    cri = [is_cri_line(line) for line in lines]
    docker = [is_docker_line(line) for line in lines]
    n_cri, n_docker = sum(cri), sum(docker)
    if n_cri == n_docker == 0:
        return None
    if n_cri != n_docker:
        return LogFormat.CRI if n_cri > n_docker else LogFormat.DOCKER
    return LogFormat.CRI if cri.index(True) < docker.index(True) else LogFormat.DOCKER
