"""Where the archive is: a directory or an object store, opened with the sinks' own readers.

``--config FILE`` reads the archive the agent of that configuration writes (the same sink
settings, credentials and prefix). ``--archive URL`` names one directly: a directory (or
``file://``), ``s3://bucket/prefix``, ``gs://bucket/prefix``, ``az://container/prefix``. Object
stores take their credentials from the same chain as the sink (environment, shared profiles,
instance metadata, workload identity); ``endpoint`` points at an S3-compatible server or an
emulator.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol
from urllib.parse import urlsplit

from kubestream.config.settings import (
    AzureSinkSettings,
    FileSinkSettings,
    GCSSinkSettings,
    S3SinkSettings,
    SinkSettings,
)
from kubestream.errors import ConfigError


class ArchiveReader(Protocol):
    """What the query side needs of a sink (``sinks.base.SinkReader`` plus ``close``)."""

    async def list_keys(self, prefix: str) -> list[str]: ...

    async def get(self, key: str) -> bytes: ...

    async def close(self) -> None: ...


@dataclass(frozen=True)
class ArchiveLocation:
    """The sink settings that address one archive, and how to name it in messages."""

    sink: SinkSettings
    description: str

    @property
    def prefix(self) -> str:
        return self.sink.prefix.strip("/")


_SCHEMES = {"s3": "s3", "gs": "gcs", "gcs": "gcs", "az": "azure", "azure": "azure", "abfs": "azure"}


def location_from_url(url: str, *, endpoint: str | None = None, region: str | None = None) -> ArchiveLocation:
    """The archive at ``url`` (see the module docstring); ``ConfigError`` when it names none."""
    parts = urlsplit(url)
    scheme = parts.scheme.lower()
    if scheme in ("", "file") or (len(scheme) == 1 and os.name == "nt"):
        directory = Path(parts.path if scheme == "file" else url).expanduser()
        return ArchiveLocation(SinkSettings(type="file", file=FileSinkSettings(dir=directory)), f"directory {directory}")
    kind = _SCHEMES.get(scheme)
    if kind is None:
        raise ConfigError(f"{url!r}: expected a directory, s3://, gs:// or az:// URL", key="--archive")
    bucket, prefix = parts.netloc, parts.path.strip("/")
    if not bucket:
        raise ConfigError(f"{url!r} names no bucket or container", key="--archive")
    if kind == "s3":
        sink = SinkSettings(type="s3", prefix=prefix, s3=S3SinkSettings(
            bucket=bucket, endpoint_url=endpoint or os.environ.get("AWS_ENDPOINT_URL_S3")
            or os.environ.get("AWS_ENDPOINT_URL"), region=region))
    elif kind == "gcs":
        sink = SinkSettings(type="gcs", prefix=prefix, gcs=GCSSinkSettings(bucket=bucket, endpoint_url=endpoint))
    else:
        sink = SinkSettings(type="azure", prefix=prefix, azure=AzureSinkSettings(
            container=bucket, account=os.environ.get("AZURE_STORAGE_ACCOUNT_NAME")
            or os.environ.get("AZURE_STORAGE_ACCOUNT"),
            connection_string=os.environ.get("AZURE_STORAGE_CONNECTION_STRING"), endpoint_url=endpoint))
    return ArchiveLocation(sink, f"{url}" + (f" at {endpoint}" if endpoint else ""))


def location_from_sink(sink: SinkSettings) -> ArchiveLocation:
    """The archive an agent with these sink settings writes."""
    if sink.type == "file":
        where = f"directory {sink.file.dir}"
    elif sink.type == "s3":
        where = f"s3://{sink.s3.bucket}/{sink.prefix.strip('/')}"
    elif sink.type == "gcs":
        where = f"gs://{sink.gcs.bucket}/{sink.prefix.strip('/')}"
    else:
        where = f"az://{sink.azure.container}/{sink.prefix.strip('/')}"
    return ArchiveLocation(sink, where)


def open_reader(location: ArchiveLocation) -> ArchiveReader:
    """A reader for the archive (the sink class of its type; nothing is contacted yet)."""
    sink = location.sink
    # The object-store sinks pull in obstore: imported only when the archive is in one.
    if sink.type == "s3":
        from kubestream.sinks.s3 import S3Sink

        return S3Sink(sink.s3, prefix=sink.prefix)
    if sink.type == "gcs":
        from kubestream.sinks.objectstore import GCSSink

        return GCSSink(sink.gcs, prefix=sink.prefix)
    if sink.type == "azure":
        from kubestream.sinks.objectstore import AzureSink

        return AzureSink(sink.azure, prefix=sink.prefix)
    from kubestream.sinks.file import FileSink

    directory = Path(sink.file.dir)
    if not directory.is_dir():
        raise ArchiveUnreachable(f"directory {directory} does not exist")
    return FileSink(sink.file)


class ArchiveUnreachable(Exception):
    """Listing or reading the archive failed; the message is one line for the user."""
