"""``kubestream validate``: check a configuration file (and optionally the sink) without running.

It runs the agent's own preflight (kubestream.agent.preflight) after loading, the same function
``kubestream run`` calls before it starts anything, so the two accept and refuse the same
configurations with the same line.
"""

from __future__ import annotations

import asyncio
import sys
from dataclasses import replace
from pathlib import Path

from kubestream.config.loader import LoadedConfig, load_config
from kubestream.config.settings import Settings, SinkSettings
from kubestream.errors import SinkError, SinkFatalError

EXIT_OK = 0
EXIT_SINK = 3


def validate_command(path: Path, *, check_sinks: bool, server_host: str | None = None) -> int:
    """Print ``config OK`` and a summary, or raise ``ConfigError``; with ``check_sinks`` also
    build the sink and verify it is writable (exit 3 with one line if it is not).

    Preflight warnings go to stderr, one ``kubestream: warning:`` line each."""
    loaded = load_config(path)
    if server_host is not None:
        server = loaded.settings.server.model_copy(update={"host": server_host})
        loaded = replace(loaded, settings=loaded.settings.model_copy(update={"server": server}))
    # Imported here: preflight builds the sink, which loads its client library.
    from kubestream.agent.preflight import preflight

    for warning in asyncio.run(preflight(loaded.settings)):
        print(f"kubestream: warning: {warning}", file=sys.stderr)
    print(summary(loaded))
    if not check_sinks:
        return EXIT_OK
    try:
        name = asyncio.run(_check_sink(loaded.settings))
    except SinkError as exc:
        kind = "unusable" if isinstance(exc, SinkFatalError) else "not reachable now"
        print(f"kubestream: sink {kind}: {_one_line(exc)}", file=sys.stderr)
        return EXIT_SINK
    print(f"sink OK: {name} is writable")
    return EXIT_OK


def summary(loaded: LoadedConfig) -> str:
    """``config OK`` followed by the options an operator most often gets wrong."""
    s = loaded.settings
    origin = "k8stream config.json (translated)" if loaded.k8stream_compat else "kubestream"
    encoding: str = s.encoding.format
    if s.encoding.format == "protobuf":
        encoding += f" ({s.encoding.protobuf_message} message)"
    lines = [
        f"config OK: {loaded.path}",
        f"  format:   {origin}",
        f"  kube:     kubeconfig={s.kube.kubeconfig or '(in-cluster, else ~/.kube/config)'}"
        + (f" context={s.kube.context}" if s.kube.context else ""),
        f"  cluster:  {s.cluster.name}" + (" (a cluster= level in object keys)" if s.cluster.partition else ""),
        f"  events:   {'enabled' if s.events.enabled else 'disabled'} api={s.events.api} since={s.events.since}",
        f"  batch:    max_records={s.batch.max_records} max_bytes={s.batch.max_bytes} max_age_s={s.batch.max_age_s:g}",
        f"  encoding: {encoding} + {s.encoding.compression}",
        *([f"  sink:     {_sink_summary(s.sink)}"] if not s.sinks else
          [f"  sinks[{i}]: {d.name} streams={','.join(d.streams)} {_sink_summary(d)}"
           + (" (the archive)" if d == s.archive_destination() else "") for i, d in enumerate(s.sinks)]),
        f"  state:    {s.state.dir} (spool {s.spool_dir})",
        "  server:   " + (f"{s.server.host}:{s.server.port}" if s.server.enabled else "disabled"),
    ]
    return "\n".join(lines)


def _sink_summary(sink: SinkSettings) -> str:
    common = f"prefix={sink.prefix!r} stream_uid={sink.stream_uid}"
    if sink.type == "file":
        return f"file dir={sink.file.dir} {common}"
    if sink.type == "otlp":
        return f"otlp {sink.otlp.endpoint}"
    if sink.type == "http":
        return f"http {sink.http.url}"
    where = f"s3://{sink.s3.bucket}"
    if sink.s3.endpoint_url:
        where += f" endpoint={sink.s3.endpoint_url}"
    if sink.s3.region:
        where += f" region={sink.s3.region}"
    return f"{where} {common}"


async def _check_sink(settings: Settings) -> str:
    # Imported here: the sinks pull in their client libraries, which plain validation skips.
    from kubestream.obs.metrics import Metrics
    from kubestream.sinks.factory import make_destination_sink

    names = []
    destinations: list[SinkSettings] = list(settings.sinks) or [settings.sink]
    for destination in destinations:
        sink = make_destination_sink(destination, Metrics())
        try:
            await sink.check()
        finally:
            await sink.close()
        names.append(str(sink.name))
    return ", ".join(names)


def _one_line(exc: BaseException) -> str:
    return " ".join(str(exc).split()) or type(exc).__name__
