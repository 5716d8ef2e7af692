"""A log file's identity that survives renames, gzip and restarts: a hash of its first bytes.

Paths change under rotation (``0.log`` → ``0.log.<ts>`` → ``0.log.<ts>.gz``) and inodes change
under gzip, so checkpoints are keyed by content. The head taken is the first physical line, or
the first ``FINGERPRINT_BYTES`` if that line is longer: every runtime line starts with a
nanosecond timestamp, so the first line of one container file is as unique as a 256-byte head,
and a short-lived container that wrote a single short line still gets an identity (a fixed
256-byte head would make such a file wait forever). A file whose first line is not complete yet
has no fingerprint yet: it is looked at again when it grows.

Copytruncate keeps the inode but restarts the content, so the fingerprint changes with it: that
is how the truncated file and its copy are told apart.
"""

from __future__ import annotations

import gzip
import hashlib
import os
import zlib
from pathlib import Path

FINGERPRINT_BYTES = 256


def fingerprint_of(head: bytes) -> str | None:
    """The fingerprint of a file starting with ``head`` (give at least ``FINGERPRINT_BYTES``)."""
    newline = head.find(b"\n", 0, FINGERPRINT_BYTES)
    if newline >= 0:
        prefix = head[: newline + 1]
    elif len(head) >= FINGERPRINT_BYTES:
        prefix = head[:FINGERPRINT_BYTES]
    else:
        return None
    # The prefix length is part of the identity, so a line-based and a 256-byte head never meet.
    return f"{len(prefix)}:{hashlib.blake2b(prefix, digest_size=16).hexdigest()}"


def read_head(fd: int) -> bytes:
    """The first ``FINGERPRINT_BYTES`` of an open plain file."""
    return os.pread(fd, FINGERPRINT_BYTES, 0)


def read_gzip_head(path: Path) -> bytes:
    """The first ``FINGERPRINT_BYTES`` of a gzipped file's content (b"" if unreadable)."""
    try:
        with gzip.open(path, "rb") as stream:
            return stream.read(FINGERPRINT_BYTES)
    except (OSError, EOFError, zlib.error):
        return b""
