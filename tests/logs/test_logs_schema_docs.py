"""The log query documented in docs/schema.md runs on real Parquet log batches and answers right."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import duckdb

from kubestream.config.settings import EncodingSettings, LogsSettings, Settings
from kubestream.enrich.block import ContainerMeta
from kubestream.model import LogChunk, Record
from kubestream.pipeline.encode import make_log_encoder
from kubestream.sources.logs.formats import LogFormat
from kubestream.sources.logs.parser import FileParser

SCHEMA_DOC = Path(__file__).resolve().parents[2] / "docs" / "schema.md"

CHECKOUT: dict[str, Any] = {
    "namespace": "shop", "object_kind": "Pod", "object_name": "checkout-api-7d9f-abcde", "object_uid": "u-1",
    "labels": {"app": "checkout-api"}, "pod_name": "checkout-api-7d9f-abcde", "pod_uid": "u-1",
    "container_name": "app", "owner_kind": "Deployment", "owner_name": "checkout-api", "owner_uid": "d-1",
    "owners": [{"kind": "ReplicaSet", "name": "checkout-api-7d9f", "uid": "rs-1"},
               {"kind": "Deployment", "name": "checkout-api", "uid": "d-1"}],
    "node_name": "node-a", "enrichment": "ok",
}
OTHER = {**CHECKOUT, "pod_name": "search-1", "object_name": "search-1", "pod_uid": "u-2", "owner_name": "search"}


def _cri(ts: str, stream: str, message: str) -> bytes:
    return f"2026-01-01T{ts}Z {stream} F {message}\n".encode()


def _record(kube: dict[str, Any], data: bytes, position: int) -> Record:
    block = FileParser(LogFormat.CRI, LogsSettings()).feed(data, 0)
    chunk = LogChunk(block, ContainerMeta.build(kube), f"/var/log/pods/x_{kube['pod_uid']}/app/0.log", file_key="1:1")
    return Record(data={}, chunk=chunk, sort_key=chunk.sort_key, position=position, size_hint=chunk.size_hint)


def test_documented_log_query_runs_on_parquet_batches(tmp_path: Path) -> None:
    queries = [q for q in re.findall(r"```sql\n(.*?)```", SCHEMA_DOC.read_text(), re.S) if "out/logs/" in q]
    assert len(queries) == 1
    data = (_cri("09:59:00.000000001", "stderr", "before the window")
            + _cri("10:05:00.5", "stderr", "connection refused")
            + _cri("10:06:00.25", "stdout", "GET /healthz 200")
            + _cri("10:07:00.125", "stderr", "retrying"))
    encoder = make_log_encoder(Settings(encoding=EncodingSettings(format="parquet")))
    out = tmp_path / "out" / "logs" / "dt=2026-01-01" / "hour=10"
    out.mkdir(parents=True)
    (out / f"demo-1-2.{encoder.extension}").write_bytes(
        encoder.encode([_record(CHECKOUT, data, 1), _record(OTHER, data, 2)]))
    query = queries[0].replace("'out/logs/", f"'{tmp_path}/out/logs/").strip().rstrip(";")
    rows = duckdb.connect().sql(f"SELECT pod_name, message FROM ({query})").fetchall()
    assert rows == [("checkout-api-7d9f-abcde", "connection refused"), ("checkout-api-7d9f-abcde", "retrying")]
