"""Which archived objects are data: the names of a compaction and ``live_keys``.

A compaction of one partition folder ``P/`` (``<prefix>/<stream>/dt=…/hour=…/``) lives under
``P/~compacted/<id>/``::

    P/<stream_uid>-<first>-<last>.<ext>        sources, as the agent writes them
    P/~compacted/<id>/_manifest.json           the commit point (written last, atomically)
    P/~compacted/<id>/covers/<source name>     one empty marker per source the compaction replaces
    P/~compacted/<id>/parts/<stream_uid>-compacted-00000.parquet   the compacted rows

``<id>`` is derived from the names of the sources it covers, so a compactor restarted after a
crash rewrites the same names. Parts and markers are written first; the manifest commits them;
the sources are deleted after it, then their markers. Whatever the moment, the listing of ``P/``
resolves (``live_keys``) to every record exactly once:

* no manifest yet: the sources are the data, the parts and markers are ignored;
* a manifest: its parts are the data, and the sources its markers name are skipped even while
  they still exist (deleting them takes many requests; a crash can stop it half-way).

Why ``~`` and the order inside ``<id>/``: object stores list keys in byte order, page by page,
not as one snapshot. ``~`` sorts after every character of a stream uid, so a reader sees the
sources of ``P/`` before the compaction folder, and ``_manifest.json`` before ``covers/`` and
``parts/``. Parts and markers exist before the manifest, so a reader that sees the manifest also
sees them; a source is deleted before its marker, so one that the reader saw but whose marker
is gone is absent when it is read, and the reader lists again (``archive.read``).
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

COMPACTED_DIR = "~compacted"
"""The folder, inside a partition, that holds its compactions."""
MANIFEST_NAME = "_manifest.json"
COVERS_DIR = "covers"
PARTS_DIR = "parts"
PART_EXTENSION = "parquet"
_ID_LENGTH = 16


@dataclass(frozen=True, slots=True)
class CompactionKeys:
    """The keys of one compaction of partition folder ``partition`` (ends with ``/`` unless empty)."""

    partition: str
    compaction_id: str

    @property
    def folder(self) -> str:
        """``P/~compacted/<id>/``."""
        return f"{self.partition}{COMPACTED_DIR}/{self.compaction_id}/"

    @property
    def manifest(self) -> str:
        """The commit point."""
        return f"{self.folder}{MANIFEST_NAME}"

    def cover(self, source_key: str) -> str:
        """The marker saying ``source_key`` (a key in ``partition``) is replaced by this compaction."""
        return f"{self.folder}{COVERS_DIR}/{basename(source_key)}"

    def part(self, index: int, stream_uid: str = "") -> str:
        """The ``index``-th compacted file, named after the stream it holds like its sources."""
        stem = f"{stream_uid}-compacted" if stream_uid else "compacted"
        return f"{self.folder}{PARTS_DIR}/{stem}-{index:05d}.{PART_EXTENSION}"


def basename(key: str) -> str:
    """The last segment of a key."""
    return key.rsplit("/", 1)[-1]


def stream_uid_of(key: str) -> str:
    """The ``<stream_uid>`` of a source named ``<stream_uid>-<first>-<last>.<ext>`` (``""`` if not)."""
    stem = basename(key).split(".", 1)[0]
    uid, *positions = stem.rsplit("-", 2)
    return uid if len(positions) == 2 and all(p.isdigit() for p in positions) else ""


def partition_of(key: str) -> str:
    """The folder of a source key, with its trailing ``/`` (``""`` for a key at the root)."""
    head, sep, _ = key.rpartition("/")
    return f"{head}{sep}"


def compaction_id(source_keys: Iterable[str]) -> str:
    """The deterministic id of the compaction of exactly these sources (order does not matter)."""
    digest = hashlib.sha256("\n".join(sorted(basename(k) for k in source_keys)).encode())
    return digest.hexdigest()[:_ID_LENGTH]


@dataclass(frozen=True, slots=True)
class _Artifact:
    """A key under ``P/~compacted/<id>/``: the manifest, a marker or a part."""

    partition: str
    compaction_id: str
    role: str
    name: str


def _artifact(key: str) -> _Artifact | None:
    """How ``key`` belongs to a compaction, or None for a key outside any compaction folder."""
    marker = f"/{COMPACTED_DIR}/"
    at = key.rfind(marker)
    if at < 0:
        if not key.startswith(f"{COMPACTED_DIR}/"):
            return None
        partition, rest = "", key[len(COMPACTED_DIR) + 1:]
    else:
        partition, rest = key[:at + 1], key[at + len(marker):]
    cid, _, inner = rest.partition("/")
    if inner == MANIFEST_NAME:
        return _Artifact(partition, cid, MANIFEST_NAME, "")
    role, _, name = inner.partition("/")
    return _Artifact(partition, cid, role, name)


def is_hidden(key: str) -> bool:
    """Temporary files and write probes (``.name``) are never data."""
    return basename(key).startswith(".")


def live_keys(keys: Sequence[str]) -> list[str]:
    """The keys a reader must read, given every key listed under one (or more) partition folders.

    Committed compactions (``_manifest.json`` present) contribute their parts and hide the
    sources their markers name; uncommitted parts, markers, manifests and hidden temporary files
    are never data. The result is sorted.
    """
    artifacts = [(key, _artifact(key)) for key in keys]
    committed = {(a.partition, a.compaction_id) for _, a in artifacts if a is not None and a.role == MANIFEST_NAME}
    covered: set[tuple[str, str]] = set()
    live: list[str] = []
    for key, a in artifacts:
        if a is None or (a.partition, a.compaction_id) not in committed:
            continue
        if a.role == COVERS_DIR and a.name:
            covered.add((a.partition, a.name))
        elif a.role == PARTS_DIR and a.name and not a.name.startswith("."):
            live.append(key)
    for key, a in artifacts:
        if a is None and not is_hidden(key) and (partition_of(key), basename(key)) not in covered:
            live.append(key)
    return sorted(set(live))


def source_keys(keys: Sequence[str]) -> list[str]:
    """The keys that are not part of any compaction (the agent's own objects), sorted."""
    return sorted({key for key in keys if _artifact(key) is None and not is_hidden(key)})


def committed_compactions(keys: Sequence[str]) -> list[CompactionKeys]:
    """The committed compactions among ``keys`` (their manifests are present)."""
    found = {(a.partition, a.compaction_id) for a in map(_artifact, keys) if a is not None and a.role == MANIFEST_NAME}
    return [CompactionKeys(p, c) for p, c in sorted(found)]


def covered_sources(keys: Sequence[str]) -> set[str]:
    """Source keys (present or not) named by a marker of a committed compaction among ``keys``."""
    committed = {(c.partition, c.compaction_id) for c in committed_compactions(keys)}
    return {f"{a.partition}{a.name}" for a in map(_artifact, keys)
            if a is not None and a.role == COVERS_DIR and a.name and (a.partition, a.compaction_id) in committed}
