"""A generated archive (the agent's real encoders and names) and a reader checked against its ledger."""

from __future__ import annotations

import datetime as dt
from collections import Counter
from pathlib import Path
from typing import Any

from bench.gen_archive import Ledger, write_events, write_logs

from kubestream.archive.compact import find_partitions
from kubestream.archive.formats import read_records
from kubestream.archive.store import ArchiveStore, read_live
from kubestream.config.settings import EncodingSettings, Settings

START = dt.datetime(2024, 5, 1, 10, tzinfo=dt.UTC)
LATER = dt.datetime(2030, 1, 1, tzinfo=dt.UTC)


def build_archive(root: Path, *, hours: int = 2, objects_per_hour: int = 8, records: int = 15) -> Ledger:
    """Events (NDJSON gzip and protobuf zstd streams) and logs (NDJSON gzip and Parquet nodes)."""
    ledger = Ledger()
    write_events(root, ledger, start=START, hours=hours, objects_per_hour=objects_per_hour, records_per_object=records)
    write_events(root, ledger, start=START, hours=1, objects_per_hour=objects_per_hour // 2, records_per_object=records,
                 encoding=EncodingSettings(format="protobuf", compression="zstd"), stream_uid="pb")
    write_logs(root, ledger, start=START, hours=hours, objects_per_hour=objects_per_hour, lines_per_object=records * 4)
    write_logs(root, ledger, start=START, hours=1, objects_per_hour=objects_per_hour, lines_per_object=records * 4,
               parquet=True, stream_uid="node-001", node=1)
    return ledger


def file_settings(root: Path, state: Path, **compaction: Any) -> Settings:
    return Settings.model_validate({
        "sink": {"type": "file", "file": {"dir": str(root)}}, "state": {"dir": str(state)},
        "compaction": {"grace_s": 0, **compaction},
    })


async def read_everything(store: ArchiveStore) -> tuple[Counter[tuple[str, int]], Counter[tuple[str, int]]]:
    """Every record a reader sees now: (uid, count) of events, (path, offset) of log lines."""
    events: Counter[tuple[str, int]] = Counter()
    logs: Counter[tuple[str, int]] = Counter()
    for partition in await find_partitions(store, "", ["events", "logs"]):
        for key, data in await read_live(store, partition.prefix):
            for record in read_records(key, data):
                if partition.stream == "events":
                    events[(record["event"]["uid"], record["event"]["count"])] += 1
                else:
                    logs[(record["file"]["path"], record["file"]["offset"])] += 1
    return events, logs


async def assert_reader_sees_the_ledger(store: ArchiveStore, ledger: Ledger) -> None:
    events, logs = await read_everything(store)
    assert set(events) == ledger.events and max(events.values()) == 1, "events: missing or twice"
    assert set(logs) == ledger.logs and max(logs.values()) == 1, "logs: missing or twice"
