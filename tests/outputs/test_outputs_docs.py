"""docs/operations.md "Live outputs" and docs/schema.md "OTLP mapping" stay true: the examples
validate, and every attribute the encoder writes is in the mapping table."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml
from opentelemetry.proto.collector.logs.v1 import logs_service_pb2
from tests.outputs.outputs_support import JOB_KUBE, KUBE, event_records, log_record, mutual_tls_files

from kubestream.config.interpolate import interpolate_tree
from kubestream.config.outputs import OTLP_DEFAULT_ENDPOINT, HttpSinkSettings, OtlpSinkSettings
from kubestream.config.settings import DestinationSettings
from kubestream.pipeline.encode.otlp import OtlpEncoder

DOCS = Path(__file__).resolve().parents[2] / "docs"
ENV = {"LOKI_TENANT": "tenant-1", "ELASTIC_API_KEY": "k"}


def _examples(marker: str) -> list[Any]:
    text = (DOCS / "operations.md").read_text()
    blocks = re.findall(rf"<!-- example: {marker}[^>]*-->\s*```yaml\n(.*?)```", text, re.DOTALL)
    return [yaml.safe_load(block) for block in blocks]


def _section(doc: str, title: str) -> str:
    text = (DOCS / doc).read_text()
    return text.split(f"## {title}", 1)[1].split("\n## ", 1)[0]


def test_the_destination_examples_validate() -> None:
    seen = {"otlp": 0, "http": 0}
    for example in _examples("otlp") + _examples("http"):
        for entry in interpolate_tree(example, ENV)["sinks"]:  # type: ignore[index]
            kind = entry["type"]
            common = {k: v for k, v in entry.items() if k not in ("type", "otlp", "http")}
            DestinationSettings.model_validate(common)
            if kind == "otlp":
                settings: OtlpSinkSettings | HttpSinkSettings = OtlpSinkSettings.model_validate(entry["otlp"])
            elif kind == "http":
                settings = HttpSinkSettings.model_validate(entry["http"])
            else:
                continue
            seen[kind] += 1
            assert settings.model_dump()
    assert seen == {"otlp": 3, "http": 1}


def test_the_collector_example_listens_where_the_default_endpoint_points() -> None:
    (collector,) = _examples("collector")
    endpoint = collector["receivers"]["otlp"]["protocols"]["http"]["endpoint"]
    assert endpoint.rsplit(":", 1)[1] == OTLP_DEFAULT_ENDPOINT.split(":")[2].split("/")[0]
    assert collector["service"]["pipelines"]["logs"]["receivers"] == ["otlp"]
    assert OTLP_DEFAULT_ENDPOINT.endswith("/v1/logs")


def _keys(request: logs_service_pb2.ExportLogsServiceRequest) -> set[str]:
    keys: set[str] = set()
    for rl in request.resource_logs:
        keys |= {kv.key for kv in rl.resource.attributes}
        for sl in rl.scope_logs:
            for record in sl.log_records:
                keys |= {kv.key for kv in record.attributes}
    return keys


def _documented(key: str, text: str) -> bool:
    if key.startswith("k8s.pod.label."):
        return "`k8s.pod.label.<key>`" in text
    head, tail = key.rsplit(".", 1)
    return f"`{key}`" in text or (f"`.{tail}`" in text and f"`{head}." in text)


async def test_every_attribute_written_is_in_the_mapping_table(tmp_path: Path) -> None:
    from kubestream.config.settings import LogsSettings
    from kubestream.enrich.block import ContainerMeta
    from kubestream.model import LogChunk, Record
    from kubestream.sources.logs.formats import LogFormat
    from kubestream.sources.logs.parser import FileParser

    encoder = OtlpEncoder(OtlpSinkSettings(compression="none"), stream="logs", cluster="c")
    lossless = FileParser(LogFormat.CRI, LogsSettings(invalid_utf8="lossless", max_line_bytes=1024)).feed(
        b"2026-01-01T00:00:01Z stdout F caf\xff\n2026-01-01T00:00:02Z stdout F " + b"x" * 2000 + b"\n", 0)
    hostile = Record(data={}, chunk=LogChunk(lossless, ContainerMeta.build(KUBE), "/p"), sort_key="", position=0)
    requests = [encoder.encode([log_record(KUBE), log_record(JOB_KUBE), hostile]),
                OtlpEncoder(OtlpSinkSettings(compression="none"), stream="events", cluster="c")
                .encode(await event_records(tmp_path))]
    keys = set().union(*(_keys(logs_service_pb2.ExportLogsServiceRequest.FromString(r)) for r in requests))
    assert {"k8s.cronjob.name", "k8s.event.reason", "kubestream.message_bytes", "kubestream.truncated"} <= keys
    text = _section("schema.md", "OTLP mapping")
    assert [key for key in sorted(keys) if not _documented(key, text)] == []
    live = _section("operations.md", "Live outputs")
    assert "`log.record.uid`" in live and "`record_uid`" in live and "exactly once" in live


KUBECONFIG = ("clusters: [{name: c, cluster: {server: 'https://127.0.0.1:6443'}}]\n"
              "users: [{name: u, user: {}}]\ncontexts: [{name: c, context: {cluster: c, user: u}}]\n"
              "current-context: c\n")


@pytest.mark.parametrize("marker", ["otlp collector", "otlp loki", "otlp elasticsearch", "http webhook"])
def test_each_destination_example_is_a_complete_config_that_validate_accepts(tmp_path: Path, marker: str) -> None:
    """Every example is a whole configuration (an archive plus the live destination, every
    enabled stream taken): ``kubestream validate`` accepts it as it stands."""
    (example,) = _examples(marker)
    kinds = [entry["type"] for entry in example["sinks"]]
    assert kinds[0] in ("file", "s3") and kinds[1] in ("otlp", "http"), kinds
    # The files the example names are mounted Secrets in a pod: here real ones in their place.
    tls = mutual_tls_files(tmp_path)
    stand_ins = {"ca_file": tls.ca_file, "client_cert_file": tls.client_cert, "client_key_file": tls.client_key}
    for entry in example["sinks"]:
        for key, value in list(entry.get(entry["type"], {}).items()):
            if key.endswith("_file"):
                stand_in = stand_ins.get(key)
                if stand_in is None:
                    stand_in = tmp_path / Path(value).name
                    stand_in.write_text("secret\n")
                entry[entry["type"]][key] = str(stand_in)
    (tmp_path / "kubeconfig").write_text(KUBECONFIG)
    config = tmp_path / "kubestream.yaml"
    config.write_text(yaml.safe_dump({"state": {"dir": "./state"}, **example}))
    result = subprocess.run([sys.executable, "-m", "kubestream.cli.main", "validate", "--config", str(config)],
                            capture_output=True, text=True, timeout=60, check=False, cwd=tmp_path,
                            env={"PATH": "/usr/bin:/bin", "KUBECONFIG": str(tmp_path / "kubeconfig"),
                                 "NODE_NAME": "n1", **ENV})
    assert result.returncode == 0, result.stdout + result.stderr
