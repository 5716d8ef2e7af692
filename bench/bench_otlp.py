"""OTLP log encode rate: log records per CPU-second, against the archive's NDJSON encoder.

    BENCH_OTLP_BYTES=50000000 python -m bench.bench_otlp     (default: a 64 MiB CRI file)

The CRI file comes from ``bench.gen_cri``; it is parsed once into 1 MiB chunks (untimed), 8 chunks
per batch, then every contender encodes the same batches. CPU time is user + system of this
process. Contenders:

* the baseline: ``NdjsonLogEncoder`` + gzip (what the archive writes for the same records);
* ``OtlpEncoder`` protobuf, gzip and uncompressed (the wire format written directly);
* ``OtlpEncoder`` JSON + gzip (spliced the same way);
* the same protobuf request built with the official ``opentelemetry-proto`` messages (one
  ``LogRecord`` message per line, ``SerializeToString``), on the first batches only — the
  alternative implementation the direct writer was measured against. Its output is checked to
  decode to the same request as ours.

The target is ≥ 200,000 OTLP log records per CPU-second.
"""

from __future__ import annotations

import os
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from opentelemetry.proto.collector.logs.v1 import logs_service_pb2
from opentelemetry.proto.common.v1 import common_pb2
from opentelemetry.proto.logs.v1 import logs_pb2

from bench.bench_logs import KUBERNETES, LOG_PATH, READ_BYTES
from bench.gen_cri import generate
from kubestream.config.outputs import OtlpSinkSettings
from kubestream.config.settings import EncodingSettings, LogsSettings
from kubestream.enrich.block import ContainerMeta
from kubestream.model import LogChunk, Record
from kubestream.pipeline.encode.logs_ndjson import NdjsonLogEncoder
from kubestream.pipeline.encode.otlp import (
    OtlpEncoder,
    _stamps_ns,
    log_resource_attributes,
    log_uid_prefix,
)
from kubestream.sources.logs.formats import LogFormat
from kubestream.sources.logs.parser import FileParser

DEFAULT_BYTES = 64 << 20
CHUNKS_PER_BATCH = 8
OFFICIAL_BATCHES = 3
TARGET_RATE = 200_000
CLUSTER = "prod-eu-1"


def _cpu() -> float:
    t = os.times()
    return t.user + t.system


def batches(path: Path) -> list[list[Record]]:
    meta = ContainerMeta.build(KUBERNETES)
    parser = FileParser(LogFormat.CRI, LogsSettings())
    out: list[list[Record]] = [[]]
    offset = 0
    with path.open("rb", buffering=0) as f:
        while data := f.read(READ_BYTES):
            block = parser.feed(data, offset)
            offset += len(data)
            chunk = LogChunk(block, meta, LOG_PATH, file_key="2049:1234")
            out[-1].append(Record(data={}, chunk=chunk, sort_key=chunk.sort_key, position=offset))
            if len(out[-1]) == CHUNKS_PER_BATCH:
                out.append([])
    return [b for b in out if b]


def official(records: list[Record]) -> bytes:
    """The same request through the official generated messages."""
    request = logs_service_pb2.ExportLogsServiceRequest()
    resource_logs = request.resource_logs.add()
    for key, value in log_resource_attributes(KUBERNETES, CLUSTER):
        resource_logs.resource.attributes.add(key=key, value=common_pb2.AnyValue(string_value=value))
    scope_logs = resource_logs.scope_logs.add()
    scope_logs.scope.name = "kubestream"
    scope_logs.scope.version = "0.1.0"
    for record in records:
        chunk = record.chunk
        block = chunk.block
        prefix = log_uid_prefix(record, CLUSTER)
        stamps = _stamps_ns(block.timestamps)
        for message, stamp, stream, offset in zip(block.messages, stamps, block.streams, block.offsets,
                                                  strict=True):
            log_record = logs_pb2.LogRecord(
                time_unix_nano=int.from_bytes(stamp or b"", "little"), observed_time_unix_nano=chunk.read_time_ns,
                body=common_pb2.AnyValue(string_value=message.decode()))
            log_record.attributes.add(key="log.iostream", value=common_pb2.AnyValue(string_value=stream.decode()))
            log_record.attributes.add(key="log.file.path", value=common_pb2.AnyValue(string_value=chunk.path))
            log_record.attributes.add(key="log.record.uid",
                                      value=common_pb2.AnyValue(string_value=f"{prefix}{offset}"))
            scope_logs.log_records.append(log_record)
    serialized: bytes = request.SerializeToString()
    return serialized


class Result:
    def __init__(self, name: str, lines: int, cpu_s: float, out_bytes: int) -> None:
        self.name, self.lines, self.cpu_s, self.out_bytes = name, lines, cpu_s, out_bytes

    @property
    def rate(self) -> float:
        return self.lines / self.cpu_s if self.cpu_s else 0.0

    def show(self) -> str:
        per_line = self.out_bytes / self.lines if self.lines else 0.0
        return f"{self.name:<40} {self.rate:>12,.0f} records/CPU-s  {self.cpu_s:7.2f} CPU-s  {per_line:6.1f} B/record out"


def run(name: str, work: list[list[Record]], encode: Callable[[list[Record]], bytes]) -> Result:
    lines = sum(r.chunk.block.count for batch in work for r in batch)
    start = _cpu()
    out = sum(len(encode(batch)) for batch in work)
    return Result(name, lines, _cpu() - start, out)


def main() -> int:
    size = int(os.environ.get("BENCH_OTLP_BYTES", DEFAULT_BYTES))
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "cri.log"
        t0 = time.monotonic()
        written, physical = generate(path, size)
        work = batches(path)
    lines = sum(r.chunk.block.count for batch in work for r in batch)
    print(f"input: {written:,} bytes, {physical:,} physical lines, {lines:,} records in {len(work)} batches "
          f"(generated and parsed in {time.monotonic() - t0:.1f} s, untimed)")
    ndjson = NdjsonLogEncoder(EncodingSettings(compression="gzip"), cluster=CLUSTER)
    pb_gzip = OtlpEncoder(OtlpSinkSettings(), stream="logs", cluster=CLUSTER)
    pb_plain = OtlpEncoder(OtlpSinkSettings(compression="none"), stream="logs", cluster=CLUSTER)
    as_json = OtlpEncoder(OtlpSinkSettings(encoding="json"), stream="logs", cluster=CLUSTER)
    few = work[:OFFICIAL_BATCHES]
    # The two implementations give the same request.
    same = all(logs_service_pb2.ExportLogsServiceRequest.FromString(official(batch))
               == logs_service_pb2.ExportLogsServiceRequest.FromString(pb_plain.encode(batch)) for batch in few[:1])
    print(f"official messages and the direct writer decode to the same request: {same}")
    results = [
        run("baseline: NDJSON + gzip (archive)", work, ndjson.encode),
        run("OTLP protobuf + gzip (direct wire)", work, pb_gzip.encode),
        run("OTLP protobuf, no compression", work, pb_plain.encode),
        run("OTLP JSON + gzip", work, as_json.encode),
        run("OTLP protobuf via official messages", few, official),
    ]
    for result in results:
        print(result.show())
    base = results[0].rate
    print("\nratios against the NDJSON baseline (same records, same run):")
    for result in results[1:]:
        print(f"  {result.name:<40} {result.rate / base:5.2f}x")
    direct, messages = results[1].rate, results[4].rate
    print(f"\ndirect wire writer vs official messages: {direct / messages:.1f}x faster")
    ok = direct >= TARGET_RATE and same
    print(f"target {TARGET_RATE:,} records/CPU-s (protobuf + gzip): {'PASS' if ok else 'FAIL'}")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
