"""``logs.parse_json``: a log message that is a JSON object becomes the record's ``parsed`` field.

Real files through the real source and pipeline (NDJSON and Parquet), the scope rules (global,
per namespace, pod annotation), ``keep_message``, the caps and the edge cases of the decoding, and
the query views over archives with and without the column."""

from __future__ import annotations

import asyncio
import contextlib
import subprocess
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import duckdb
import orjson
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from logs_source_support import CRI_TS, NODE, Rig, make_settings, pod, read_archive

from kubestream.archive.schema import conform, logs_schema_for, logs_table_from_ndjson
from kubestream.config.settings import EncodingSettings, KubeSettings, LogJsonSettings, Settings
from kubestream.enrich import Enricher
from kubestream.enrich.block import ContainerMeta
from kubestream.kube.client import KubeClient
from kubestream.model import LogChunk, Record
from kubestream.pipeline.encode import make_log_encoder
from kubestream.pipeline.encode.logs_parquet import batch_table
from kubestream.sim.server import SimServer
from kubestream.sim.testing import kubeconfig_for, running_sim
from kubestream.sources.logs.formats import LogFormat
from kubestream.sources.logs.json_fields import JsonRule, annotation_choice, parse_messages, rule_for
from kubestream.sources.logs.parser import FileParser

# -- the decoding: results and edge cases -------------------------------------------------------


def _one(message: bytes, rule: JsonRule | None = None) -> tuple[Any, str]:
    fields = parse_messages([message], rule or JsonRule())
    (result,) = fields.results
    value = fields.values[0]
    return (None if value is None else orjson.loads(value)), result


@pytest.mark.parametrize(("message", "expected", "result"), [
    (b'{"level":"info","n":1,"ok":true,"x":null,"f":1.5}', {"level": "info", "n": 1, "ok": True, "x": None, "f": 1.5},
     "parsed"),
    (b'  {"a": {"b": [1, 2, {"c": "d"}]}}  ', {"a": {"b": [1, 2, {"c": "d"}]}}, "parsed"),
    (b"{}", {}, "parsed"),
    # a key given twice: the last value wins
    (b'{"a":1,"b":2,"a":3}', {"a": 3, "b": 2}, "parsed"),
    # integers in the 64-bit ranges stay exact; beyond them they become the nearest double
    (b'{"n":18446744073709551615,"m":-9223372036854775808}', {"n": 18446744073709551615, "m": -9223372036854775808},
     "parsed"),
    (b'{"n":18446744073709551616}', {"n": 1.8446744073709552e19}, "parsed"),
    (b'{"n":123456789012345678901234567890}', {"n": 1.2345678901234568e29}, "parsed"),
    # escapes decode to their characters, a surrogate pair to one character
    (b'{"s":"\\u0000\\t\\ud83d\\ude00\\u00e9"}', {"s": "\x00\t\U0001F600\u00e9"}, "parsed"),
    (b'{"s":"caf\xc3\xa9"}', {"s": "caf\u00e9"}, "parsed"),
    # not JSON: text, NaN/Infinity, a number beyond the double range, a lone surrogate, garbage after
    (b"GET /healthz 200", None, "invalid"),
    (b'{"n":NaN}', None, "invalid"),
    (b'{"n":Infinity}', None, "invalid"),
    (b'{"n":1e400}', None, "invalid"),
    (b'{"s":"\\ud800"}', None, "invalid"),
    (b'{"s":"\\udc00x"}', None, "invalid"),
    (b'{"a":1} trailing', None, "invalid"),
    (b'{"a":1}\n{"b":2}', None, "invalid"),
    (b'{"a":', None, "invalid"),
    (b"", None, "invalid"),
    # JSON, not an object
    (b"[1,2]", None, "not_object"),
    (b'"text"', None, "not_object"),
    (b"42", None, "not_object"),
    (b"null", None, "not_object"),
    (b"true", None, "not_object"),
])
def test_decoding_results(message: bytes, expected: Any, result: str) -> None:
    assert _one(message) == (expected, result)


def test_written_json_is_compact_one_line_and_keeps_key_order() -> None:
    fields = parse_messages([b'{\n  "z": 1,\n  "a": [1,\n 2],\n  "z": 2\n}'], JsonRule())
    assert fields.values == [b'{"z":2,"a":[1,2]}']
    assert fields.size == len(b'{"z":2,"a":[1,2]}')


def _nested(depth: int) -> bytes:
    return b'{"a":' * (depth - 1) + b"{}" + b"}" * (depth - 1)


def test_size_and_depth_caps() -> None:
    rule = JsonRule(max_bytes=64, max_depth=4)
    assert _one(b'{"m":"' + b"x" * 50 + b'"}', rule)[1] == "parsed"          # 58 bytes
    assert _one(b'{"m":"' + b"x" * 60 + b'"}', rule)[1] == "too_large"       # 68 bytes
    assert _one(b"x" * 65, rule)[1] == "too_large"                             # checked before parsing
    assert _one(_nested(4), rule)[1] == "parsed"
    assert _one(_nested(5), rule)[1] == "too_deep"
    assert _one(b'{"a":[[[[]]]]}', rule)[1] == "too_deep"                     # arrays count as levels
    # brackets inside strings do not make an object deep
    assert _one(b'{"a":"[[[[[[{{{{{{"}', rule) == ({"a": "[[[[[[{{{{{{"}, "parsed")
    # deeper than orjson's own limit (1024): still a depth result, not a syntax error
    assert _one(_nested(2000), JsonRule(max_bytes=1 << 20, max_depth=512))[1] == "too_deep"


def test_results_are_counted_per_chunk() -> None:
    fields = parse_messages([b'{"a":1}', b"text", b"[1]", b'{"b":2}'], JsonRule())
    assert fields.results == {"parsed": 2, "invalid": 1, "not_object": 1}
    assert fields.values[1] is None and fields.values[2] is None
    # text lines are decided in bulk; a line over the size cap is too_large whatever it holds
    messages = [b"INFO ready", b" {\"a\":1}", b"GET /", b"x" * 100, b"42", b"", b"true", b'{"b":[1]}']
    fields = parse_messages(messages, JsonRule(max_bytes=64))
    assert fields.results == {"parsed": 2, "invalid": 3, "too_large": 1, "not_object": 2}
    assert [v is not None for v in fields.values] == [False, True, False, False, False, False, False, True]
    assert parse_messages(messages[:3], JsonRule(max_bytes=64)).results == {"parsed": 1, "invalid": 2}


# -- scope: global, per namespace, pod annotation ----------------------------------------------


@pytest.mark.parametrize(("value", "container", "expected"), [
    ("true", "app", True), ("FALSE", "app", False), (" true ", "sidecar", True),
    ("app=true;sidecar=false", "app", True), ("app=true;sidecar=false", "sidecar", False),
    ("app=true", "other", None),          # not listed: namespace / global decide
    ("yes", "app", None), ("app=maybe", "app", None), ("", "app", None), (None, "app", None),
])
def test_annotation_choice(value: str | None, container: str, expected: bool | None) -> None:
    assert annotation_choice(value, container) == expected


def test_rule_precedence_annotation_then_namespace_then_global() -> None:
    off = LogJsonSettings(namespaces={"payments": True}, keep_message=False, max_bytes=100, max_depth=3)
    assert rule_for(off, "default", None, "app") is None
    assert rule_for(off, "payments", None, "app") == JsonRule(keep_message=False, max_bytes=100, max_depth=3)
    assert rule_for(off, "payments", "false", "app") is None
    assert rule_for(off, "default", "app=true", "app") is not None
    on = LogJsonSettings(enabled=True, namespaces={"legacy": False})
    assert rule_for(on, "default", None, "app") == JsonRule()
    assert rule_for(on, "legacy", None, "app") is None
    assert rule_for(on, "legacy", "true", "app") is not None
    assert rule_for(on, "default", "sidecar=false", "app") is not None


# -- real files through the real source --------------------------------------------------------

LINES = [
    '{"level":"info","msg":"started","port":8080}',
    "plain text line",
    '{"level":"error","err":{"code":503,"retry":true},"tags":["a","b"]}',
    "[1,2,3]",
    '{"level":"warn","dup":1,"dup":2}',
    '{"broken":',
]


def _log_file(tmp: Path, namespace: str, pod_name: str, uid: str | None = None, container: str = "app") -> Path:
    path = tmp / "pods" / f"{namespace}_{pod_name}_{uid or uuid.uuid4()}" / container / "0.log"
    path.parent.mkdir(parents=True, exist_ok=True)
    return path


def _write(path: Path, messages: list[str], stream: bytes = b"stdout") -> None:
    with path.open("ab") as f:
        for message in messages:
            f.write(CRI_TS + b" " + stream + b" F " + message.encode() + b"\n")


async def _archive(rig: Rig, count: int) -> list[dict[str, Any]]:
    await rig.start()
    try:
        for _ in range(200):
            records = read_archive(rig.settings.sink.file.dir)
            if len(records) >= count:
                break
            await asyncio.sleep(0.05)
    finally:
        await rig.stop()
    return read_archive(rig.settings.sink.file.dir)


def _by_message_or_parsed(records: list[dict[str, Any]]) -> list[tuple[Any, Any]]:
    return sorted(((r.get("message"), r.get("parsed")) for r in records), key=repr)


def _parse_json(**options: Any) -> LogJsonSettings:
    return LogJsonSettings(**options)


async def test_source_writes_parsed_objects_and_counts_results(tmp_path: Path) -> None:
    settings = make_settings(tmp_path, parse_json=_parse_json(enabled=True))
    _write(_log_file(tmp_path, "default", "web-0"), LINES)
    rig = Rig(tmp_path, settings)
    records = await _archive(rig, len(LINES))
    assert len(records) == len(LINES)
    got = {r["message"]: r.get("parsed") for r in records}
    assert got == {
        LINES[0]: {"level": "info", "msg": "started", "port": 8080},
        LINES[1]: None,
        LINES[2]: {"level": "error", "err": {"code": 503, "retry": True}, "tags": ["a", "b"]},
        LINES[3]: None,
        LINES[4]: {"level": "warn", "dup": 2},
        LINES[5]: None,
    }
    assert all("parsed" not in r for r in records if r["message"] in (LINES[1], LINES[3], LINES[5]))
    # the rest of the record is as without the option
    first = next(r for r in records if r["message"] == LINES[0])
    assert list(first) == ["kind", "timestamp", "stream", "message", "parsed", "file", "kubernetes"]
    counts = {result: rig.metrics.registry.get_sample_value("kubestream_log_json_parse_total", {"result": result})
              for result in ("parsed", "invalid", "not_object")}
    assert counts == {"parsed": 3.0, "invalid": 2.0, "not_object": 1.0}


async def test_keep_message_false_drops_the_raw_message_of_parsed_lines_only(tmp_path: Path) -> None:
    settings = make_settings(tmp_path, parse_json=_parse_json(enabled=True, keep_message=False),
                             invalid_utf8="lossless")
    path = _log_file(tmp_path, "default", "web-0")
    _write(path, LINES[:2])
    _write(path, ['{"level":"debug"}'], stream=b"stderr")
    with path.open("ab") as f:  # invalid UTF-8 inside a JSON object: U+FFFD, raw bytes kept in base64
        f.write(CRI_TS + b' stdout F {"bad":"\xff"}\n')
    records = await _archive(Rig(tmp_path, settings), 4)
    in_file_order = sorted(records, key=lambda r: r["file"]["offset"])
    assert [(r["stream"], r.get("message"), r.get("parsed")) for r in in_file_order] == [
        ("stdout", None, {"level": "info", "msg": "started", "port": 8080}),
        ("stdout", "plain text line", None),
        ("stderr", None, {"level": "debug"}),
        ("stdout", None, {"bad": "\ufffd"}),
    ]
    assert all("message" not in r for r in records if "parsed" in r)
    bad = next(r for r in records if r.get("parsed") == {"bad": "\ufffd"})
    assert bad["message_base64"] == "eyJiYWQiOiL/In0="


async def test_namespace_override_and_off_by_default(tmp_path: Path) -> None:
    settings = make_settings(tmp_path, parse_json=_parse_json(namespaces={"payments": True}))
    _write(_log_file(tmp_path, "payments", "api-0"), LINES[:1])
    _write(_log_file(tmp_path, "default", "web-0"), LINES[:1])
    records = await _archive(Rig(tmp_path, settings), 2)
    by_namespace = {r["kubernetes"]["namespace"]: r.get("parsed") for r in records}
    assert by_namespace == {"payments": {"level": "info", "msg": "started", "port": 8080}, "default": None}


async def test_multiline_json_record_is_parsed_whole(tmp_path: Path) -> None:
    settings = make_settings(tmp_path, parse_json=_parse_json(enabled=True),
                             multiline=[{"start_pattern": r"^\{$"}], multiline_timeout_s=0.1)
    _write(_log_file(tmp_path, "default", "web-0"), ["{", '  "level": "info",', '  "n": 2', "}"])
    records = await _archive(Rig(tmp_path, settings), 1)
    assert [(r["message"], r.get("parsed")) for r in records] == [('{\n  "level": "info",\n  "n": 2\n}',
                                                                   {"level": "info", "n": 2})]


@pytest.fixture
def sim_server() -> Iterator[SimServer]:
    with running_sim(bookmark_interval_s=0.5) as server:
        yield server


async def test_pod_annotation_chooses_per_container(sim_server: SimServer, tmp_path: Path) -> None:
    base = make_settings(tmp_path, parse_json=_parse_json(enabled=False))
    kube = KubeSettings(kubeconfig=str(kubeconfig_for(sim_server, tmp_path)), backoff_initial_s=0.05,
                        backoff_max_s=0.2)
    settings = base.model_copy(update={"kube": kube})
    body = pod("web-0", containers=("app", "sidecar"), annotations={"kubestream.io/parse-json": "app=true"})
    body = {**body, "metadata": {k: v for k, v in body["metadata"].items() if k != "uid"}}
    created = sim_server.cluster.create("pods", body)
    uid = created["metadata"]["uid"]
    _write(_log_file(tmp_path, "default", "web-0", uid, "app"), LINES[:1])
    _write(_log_file(tmp_path, "default", "web-0", uid, "sidecar"), LINES[:1])
    client = await KubeClient.create(settings.kube)
    enricher = Enricher(client, settings, node_name=NODE)
    task = asyncio.create_task(enricher.run())
    try:
        await asyncio.wait_for(enricher.synced.wait(), 10)
        records = await _archive(Rig(tmp_path, settings, enricher=enricher), 2)
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
        await client.close()
    by_container = {r["kubernetes"]["container_name"]: r.get("parsed") for r in records}
    assert by_container == {"app": {"level": "info", "msg": "started", "port": 8080}, "sidecar": None}


# -- Parquet, and the query views over archives with and without ``parsed`` ----------------------


def _parquet_settings(tmp: Path, **parse_json: Any) -> Settings:
    base = make_settings(tmp, parse_json=_parse_json(**parse_json))
    # Each run its own stream uid: their objects are copied into one archive.
    sink = base.sink.model_copy(update={"stream_uid": f"node-{tmp.name}"})
    return base.model_copy(update={"encoding": EncodingSettings(format="parquet"), "sink": sink})


async def _run_parquet(tmp: Path, settings: Settings, messages: list[str], pod_name: str) -> None:
    _write(_log_file(tmp, "default", pod_name), messages)
    rig = Rig(tmp, settings)
    await rig.start()
    try:
        for _ in range(200):
            if sum(pq.read_metadata(p).num_rows for p in (tmp / "out").rglob("*.parquet")
                   if not p.name.startswith(".")) >= len(messages):
                break
            await asyncio.sleep(0.05)
    finally:
        await rig.stop()


def _query(archive: Path, sql: str) -> list[dict[str, Any]]:
    """``kubestream query --archive ARCHIVE SQL`` as a real process, its rows."""
    done = subprocess.run([sys.executable, "-m", "kubestream.cli.main", "query", "--archive", str(archive),
                           "--format", "jsonl", sql], capture_output=True, text=True, timeout=120, check=False)
    assert done.returncode == 0, done.stderr
    return [orjson.loads(line) for line in done.stdout.splitlines()]


def _parquet_files(out: Path) -> list[Path]:
    return sorted(p for p in out.rglob("*.parquet") if not p.name.startswith("."))


async def test_parquet_json_column_and_query_over_old_and_new_archives(tmp_path: Path) -> None:
    archive = tmp_path / "out"
    # An "old" archive first (option off: no parsed column), then new batches in the same archive.
    old = tmp_path / "old"
    await _run_parquet(old, _parquet_settings(old), ["old text line", '{"level":"info"}'], "old-0")
    assert all("parsed" not in pq.read_schema(p).names for p in _parquet_files(old / "out"))
    new = tmp_path / "new"
    await _run_parquet(new, _parquet_settings(new, enabled=True, keep_message=False), LINES, "new-0")
    new_files = _parquet_files(new / "out")
    schema = pq.read_schema(new_files[0])
    assert schema.field("parsed").type == pa.json_()
    assert "(JSON)" in str(pq.read_metadata(new_files[0]).schema)  # the Parquet JSON logical type
    for source in (old / "out", new / "out"):
        for path in _parquet_files(source):
            target = archive / path.relative_to(source)
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_bytes(path.read_bytes())

    # DuckDB on the agent's files: json_extract on the JSON column, NULL where not parsed.
    rows = duckdb.connect().sql(
        f"SELECT message, json_extract(parsed, '$.level')::VARCHAR, json_extract_string(parsed, '$.err.code') "
        f"FROM read_parquet('{new / 'out'}/logs/**/*.parquet') ORDER BY file.offset").fetchall()
    assert rows == [(None, '"info"', None), ("plain text line", None, None), (None, '"error"', "503"),
                    ("[1,2,3]", None, None), (None, '"warn"', None), ('{"broken":', None, None)]

    # kubestream query over the mixed archive: the logs view has parsed, NULL for the old files.
    query = ("select pod, message, json_extract_string(parsed, '$.level') as level from logs "
             "order by pod, file_offset")
    got = [(r["pod"], r["message"], r["level"]) for r in await asyncio.to_thread(_query, archive, query)]
    assert got == [("new-0", None, "info"), ("new-0", "plain text line", None), ("new-0", None, "error"),
                   ("new-0", "[1,2,3]", None), ("new-0", None, "warn"), ("new-0", '{"broken":', None),
                   ("old-0", "old text line", None), ("old-0", '{"level":"info"}', None)]


async def test_query_over_an_ndjson_archive_with_parsed(tmp_path: Path) -> None:
    settings = make_settings(tmp_path, parse_json=_parse_json(enabled=True))
    _write(_log_file(tmp_path, "default", "web-0"), LINES[:3])
    await _archive(Rig(tmp_path, settings), 3)
    got = await asyncio.to_thread(
        _query, tmp_path / "out", "select json_extract(parsed, '$.err.code')::INT code, parsed from logs order by file_offset")
    assert [r["code"] for r in got] == [None, None, 503]
    assert got[0]["parsed"] is not None and orjson.loads(got[0]["parsed"]) == {
        "level": "info", "msg": "started", "port": 8080}
    assert got[1]["parsed"] is None


def test_option_off_leaves_chunks_and_parquet_as_before() -> None:
    block = FileParser(LogFormat.CRI, Settings().logs).feed(CRI_TS + b' stdout F {"a":1}\n', 0)
    chunk = LogChunk(block, ContainerMeta.build({"namespace": "default"}), "/var/log/pods/x/app/0.log")
    assert chunk.parsed is None
    assert "parsed" not in batch_table([chunk]).column_names
    encoder = make_log_encoder(Settings())
    record = Record(data={}, chunk=chunk, sort_key=chunk.sort_key, position=1, size_hint=chunk.size_hint)
    assert "parsed" not in encoder.decode(encoder.encode([record]))[0]


def test_compaction_keeps_parsed_from_ndjson_and_parquet_batches() -> None:
    block = FileParser(LogFormat.CRI, Settings().logs).feed(
        CRI_TS + b' stdout F {"level":"info"}\n' + CRI_TS + b" stdout F text\n", 0)
    chunk = LogChunk(block, ContainerMeta.build({"namespace": "default"}), "/var/log/pods/x/app/0.log")
    chunk.parsed = parse_messages(block.messages, JsonRule()).values
    record = Record(data={}, chunk=chunk, sort_key=chunk.sort_key, position=1, size_hint=chunk.size_hint)
    ndjson = make_log_encoder(Settings(encoding=EncodingSettings(compression="none"))).encode([record])
    from_ndjson = logs_table_from_ndjson(ndjson)
    assert from_ndjson.column("parsed").type == pa.json_()
    assert from_ndjson.column("parsed").to_pylist() == ['{"level":"info"}', None]
    from_parquet = batch_table([chunk])
    old = batch_table([LogChunk(block, chunk.meta, chunk.path)])  # written without the option
    schema = logs_schema_for([old.schema, from_parquet.schema, from_ndjson.schema])
    merged = pa.concat_tables([conform(t, schema) for t in (old, from_parquet, from_ndjson)])
    assert merged.column("parsed").to_pylist() == [None, None, '{"level":"info"}', None, '{"level":"info"}', None]


def _reference_result(message: bytes) -> str:
    """The result by orjson alone (what the pre-check that skips most text lines must agree with)."""
    try:
        value = orjson.loads(message)
    except orjson.JSONDecodeError:
        return "invalid"
    return "parsed" if isinstance(value, dict) else "not_object"


@pytest.mark.parametrize("message", [
    b" 42 ", b"-", b"-0", b"01", b"1.", b"1e5", b"1e400", b"-1.5E-3", b"10.0.3.17 - - GET /", b"2026-01-01 boot",
    b"tru", b"true", b"true story", b"null", b"nullx", b"\tfalse\r\n", b'"', b'"a', b'"a"', b'"a" "b"', b"[",
    b"[]", b"[1,", b"[1] [2]", b"{", b"{}", b"{} ", b"\x0c{}", b"{}\x0c", b" \n{\"a\":1}\n ", b'{"a":"}"',
    b'{"a":1}}', b"{{}}", b"}", b"]", b"ERROR something", "\u00e9t\u00e9".encode(), b"\xef\xbb\xbf{}",
])
def test_the_text_pre_check_agrees_with_orjson(message: bytes) -> None:
    assert _one(message)[1] == _reference_result(message)
