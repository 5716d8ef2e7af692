"""``live_keys``: what a reader reads at every stage of a compaction, from the names alone."""

from __future__ import annotations

from kubestream.archive.catalog import (
    COMPACTED_DIR,
    CompactionKeys,
    compaction_id,
    covered_sources,
    live_keys,
    stream_uid_of,
)

P = "prod/events/dt=2024-05-01/hour=10/"
SOURCES = [f"{P}kubestream-{i}-{i + 9}.ndjson.gz" for i in range(0, 50, 10)]
LATE = f"{P}kubestream-900-909.ndjson.gz"
C = CompactionKeys(P, compaction_id(SOURCES))
PARTS = [C.part(0, "kubestream"), C.part(1, "kubestream")]
COVERS = [C.cover(s) for s in SOURCES]


def test_without_a_manifest_the_sources_are_the_data_and_the_compactions_files_are_not() -> None:
    assert live_keys(SOURCES) == SOURCES
    assert live_keys([*SOURCES, *PARTS]) == SOURCES
    assert live_keys([*SOURCES, *PARTS, *COVERS]) == SOURCES


def test_a_committed_manifest_replaces_the_sources_it_covers_even_while_they_exist() -> None:
    everything = [*SOURCES, LATE, *PARTS, *COVERS, C.manifest]
    assert live_keys(everything) == sorted([LATE, *PARTS])
    # Sources deleted one by one, then the markers: the answer never changes.
    for cut in range(len(SOURCES) + 1):
        assert live_keys([*SOURCES[cut:], LATE, *PARTS, *COVERS, C.manifest]) == sorted([LATE, *PARTS])
    assert live_keys([LATE, *PARTS, C.manifest]) == sorted([LATE, *PARTS])


def test_temporary_files_and_another_partitions_markers_are_never_data() -> None:
    other = CompactionKeys("prod/events/dt=2024-05-01/hour=11/", C.compaction_id)
    keys = [*SOURCES, f"{P}.kubestream-50-59.ndjson.gz.tmp", f"{C.folder}parts/.x.parquet.compacting",
            other.manifest, *(other.cover(s) for s in SOURCES)]
    assert live_keys(keys) == SOURCES


def test_the_id_depends_on_the_set_of_sources_only() -> None:
    assert compaction_id(SOURCES) == compaction_id(list(reversed(SOURCES)))
    assert compaction_id(SOURCES) != compaction_id([*SOURCES, LATE])
    assert covered_sources([*COVERS, C.manifest]) == set(SOURCES)
    assert covered_sources(COVERS) == set()


def test_listing_order_puts_sources_before_the_manifest_before_markers_and_parts() -> None:
    """Object stores list in byte order, page by page: the order a racing reader sees things."""
    listed = sorted([*SOURCES, *PARTS, *COVERS, C.manifest, f"{P}zzz-1-2.ndjson.gz"])
    assert listed.index(C.manifest) > max(listed.index(s) for s in [*SOURCES, f"{P}zzz-1-2.ndjson.gz"])
    assert all(listed.index(C.manifest) < listed.index(k) for k in [*COVERS, *PARTS])
    assert COMPACTED_DIR.startswith("~")


def test_stream_uid_of_a_source_name() -> None:
    assert stream_uid_of(f"{P}node-a-7-12-3-9.ndjson.gz") == "node-a-7-12"
    assert stream_uid_of(f"{P}notes.txt") == ""
