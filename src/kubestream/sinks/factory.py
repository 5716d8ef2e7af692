"""Builds the configured sink (``sink.type``) behind the ``Sink`` protocol."""

from __future__ import annotations

from kubestream.config.settings import Settings
from kubestream.obs.metrics import Metrics
from kubestream.sinks.base import Sink
from kubestream.sinks.file import FileSink


def make_sink(settings: Settings, metrics: Metrics | None = None) -> Sink:
    """The sink selected by ``settings.sink.type``; raises ``ConfigError`` on unusable settings."""
    sink = settings.sink
    # Object-store sinks are imported only when chosen: the file sink must not pay for loading
    # the obstore client.
    if sink.type == "s3":
        from kubestream.sinks.s3 import S3Sink

        return S3Sink(sink.s3, prefix=sink.prefix, metrics=metrics)
    if sink.type == "gcs":
        from kubestream.sinks.objectstore import GCSSink

        return GCSSink(sink.gcs, prefix=sink.prefix, metrics=metrics)
    if sink.type == "azure":
        from kubestream.sinks.objectstore import AzureSink

        return AzureSink(sink.azure, prefix=sink.prefix, metrics=metrics)
    return FileSink(sink.file, metrics=metrics)
