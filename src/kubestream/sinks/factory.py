"""Builds the configured sink (``sink.type``) behind the ``Sink`` protocol."""

from __future__ import annotations

from kubestream.config.settings import Settings
from kubestream.obs.metrics import Metrics
from kubestream.sinks.base import Sink
from kubestream.sinks.file import FileSink


def make_sink(settings: Settings, metrics: Metrics | None = None) -> Sink:
    """The sink selected by ``settings.sink.type``; raises ``ConfigError`` on unusable settings."""
    if settings.sink.type == "s3":
        # Imported only when chosen: the file sink must not pay for loading the S3 client.
        from kubestream.sinks.s3 import S3Sink

        return S3Sink(settings.sink.s3, prefix=settings.sink.prefix, metrics=metrics)
    return FileSink(settings.sink.file, metrics=metrics)
