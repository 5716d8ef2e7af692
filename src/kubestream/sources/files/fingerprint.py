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

A file's *identity* is its content fingerprint scoped to its container directory
(``LogPath.scope``): every name a file takes under rotation, gzip or copytruncate stays in that
directory, while two pods writing the same banner as their first line are two files, not one
file seen twice. Identities written before scoping (no ``@``) are migrated by checkpoint.py.
"""

from __future__ import annotations

import contextlib
import gzip
import hashlib
import os
import re
import zlib

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


def identity_of(head: bytes, scope: str) -> str | None:
    """The identity of a file starting with ``head`` in container directory ``scope``."""
    fingerprint = fingerprint_of(head)
    return scoped(fingerprint, scope) if fingerprint is not None else None


def scoped(fingerprint: str, scope: str) -> str:
    """``fingerprint`` made unique to one container directory."""
    where = hashlib.blake2b(scope.encode("utf-8", "surrogateescape"), digest_size=8).hexdigest()
    return f"{fingerprint}@{where}"


def content_of(identity: str) -> str:
    """The content fingerprint inside an identity (what a copy or a truncation is compared by)."""
    return identity.partition("@")[0]


_UNSCOPED = re.compile(r"\d+:[0-9a-f]{32}")


def is_unscoped(identity: str) -> bool:
    """True for an identity recorded before identities were scoped to a directory (a bare
    ``fingerprint_of``)."""
    return _UNSCOPED.fullmatch(identity) is not None


def read_head(fd: int) -> bytes:
    """The first ``FINGERPRINT_BYTES`` of an open plain file."""
    return os.pread(fd, FINGERPRINT_BYTES, 0)


def read_gzip_head(fd: int) -> bytes:
    """The first ``FINGERPRINT_BYTES`` of an open gzipped file's content (b"" if unreadable).

    Reads from the start of ``fd`` and leaves its position back at 0, for the stream that reads it.
    """
    try:
        os.lseek(fd, 0, os.SEEK_SET)
        with open(fd, "rb", closefd=False) as raw, gzip.GzipFile(fileobj=raw, mode="rb") as stream:
            return stream.read(FINGERPRINT_BYTES)
    except (OSError, EOFError, zlib.error):
        return b""
    finally:
        with contextlib.suppress(OSError):
            os.lseek(fd, 0, os.SEEK_SET)
