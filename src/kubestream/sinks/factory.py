"""Builds the configured sinks (``sink.type``, or each of ``sinks:``) behind the ``Sink`` protocol."""

from __future__ import annotations

from kubestream.config.settings import Settings, SinkSettings
from kubestream.obs.metrics import Metrics
from kubestream.sinks.base import Sink
from kubestream.sinks.file import FileSink


def make_sink(settings: Settings, metrics: Metrics | None = None) -> Sink:
    """The sink selected by ``settings.sink.type``; raises ``ConfigError`` on unusable settings."""
    return make_destination_sink(settings.sink, metrics)


def make_destination_sink(sink: SinkSettings, metrics: Metrics | None = None) -> Sink:
    """The sink of one destination (``sink:`` or an entry of ``sinks:``), by its ``type``."""
    # Object-store and HTTP sinks are imported only when chosen: the file sink must not pay for
    # loading their client libraries.
    if sink.type == "s3":
        from kubestream.sinks.s3 import S3Sink

        return S3Sink(sink.s3, prefix=sink.prefix, metrics=metrics)
    if sink.type == "gcs":
        from kubestream.sinks.objectstore import GCSSink

        return GCSSink(sink.gcs, prefix=sink.prefix, metrics=metrics)
    if sink.type == "azure":
        from kubestream.sinks.objectstore import AzureSink

        return AzureSink(sink.azure, prefix=sink.prefix, metrics=metrics)
    if sink.type == "otlp":
        from kubestream.sinks.otlp import OtlpSink

        return OtlpSink(sink.otlp, metrics=metrics)
    if sink.type == "http":
        from kubestream.sinks.http import HttpSink

        return HttpSink(sink.http, metrics=metrics)
    return FileSink(sink.file, metrics=metrics)
