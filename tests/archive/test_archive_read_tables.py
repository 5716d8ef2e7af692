"""``formats.read_tables``: small NDJSON events objects parsed as one stream, sliced back per object."""

from __future__ import annotations

import gzip

import orjson
import pytest

from kubestream.archive.formats import UnreadableObjectError, read_table, read_tables


def _object(n: int, count: int) -> bytes:
    return gzip.compress(b"".join(orjson.dumps({
        "kind": "event", "reason": f"R{n}", "message": f"object {n} event {i}",
        "involvedObject": {"kind": "Pod", "name": f"p{n}", "namespace": "ns", "uid": f"u{n}"},
    }) + b"\n" for i in range(count)))


def test_read_tables_gives_each_object_the_table_it_reads_alone() -> None:
    objects = [(f"o{n}.ndjson.gz", _object(n, n + 1)) for n in range(5)]
    joint = read_tables(objects, "events")
    assert [t.num_rows for t in joint] == [1, 2, 3, 4, 5]
    for (key, data), table in zip(objects, joint, strict=True):
        assert table.equals(read_table(key, data, "events"))


def test_read_tables_names_the_damaged_object() -> None:
    objects = [("good.ndjson.gz", _object(1, 3)), ("bad.ndjson.gz", b"not gzip"), ("next.ndjson.gz", _object(2, 2))]
    with pytest.raises(UnreadableObjectError, match=r"bad\.ndjson\.gz"):
        read_tables(objects, "events")
