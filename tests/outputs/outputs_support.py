"""Helpers of the live output tests (OTLP/HTTP, webhook): a receiver on 127.0.0.1 that records every request, and
records built the way the sources build them (the Events source's ``handle`` for events, the
log parser + ``LogChunk`` for container logs)."""

from __future__ import annotations

import datetime as dt
import gzip
import ssl
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from aiohttp import web
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID
from opentelemetry.proto.collector.logs.v1 import logs_service_pb2
from tests.sources.source_events_support import Harness, core_event

from kubestream.config.settings import EventsSettings, LogsSettings
from kubestream.enrich.block import ContainerMeta
from kubestream.kube.reflector import EventType
from kubestream.model import LogChunk, Record
from kubestream.sim.apiserver import tls
from kubestream.sources.logs.formats import LogFormat
from kubestream.sources.logs.parser import FileParser

KUBE: dict[str, Any] = {
    "enrichment": "ok", "namespace": "shop", "namespace_labels": {"team": "pay"}, "object_kind": "Pod",
    "object_name": "web-7d9f8-abcde", "object_uid": "pod-uid-1", "labels": {"app": "web", "tier": "front"},
    "pod_name": "web-7d9f8-abcde", "pod_uid": "pod-uid-1", "pod_ip": "10.0.0.5", "container_name": "app",
    "container_image": "web:1.2", "owner_kind": "Deployment", "owner_name": "web", "owner_uid": "dep-1",
    "owners": [{"kind": "ReplicaSet", "name": "web-7d9f8", "uid": "rs-1"},
               {"kind": "Deployment", "name": "web", "uid": "dep-1"}],
    "node_name": "node-a", "services": ["web"], "object_deleted": False,
}
JOB_KUBE: dict[str, Any] = {
    **KUBE, "object_name": "backup-28000-x1", "object_uid": "pod-uid-2", "pod_name": "backup-28000-x1",
    "pod_uid": "pod-uid-2", "container_name": "main", "labels": {"job-name": "backup-28000"},
    "owner_kind": "CronJob", "owner_name": "backup", "owner_uid": "cj-1",
    "owners": [{"kind": "Job", "name": "backup-28000", "uid": "job-1"},
               {"kind": "CronJob", "name": "backup", "uid": "cj-1"}],
}
READ_TIME_NS = 1_767_225_700_000_000_000


def cri(second: int, stream: str, message: bytes, tag: str = "F") -> bytes:
    return b"2026-01-01T00:00:%02d.123456789Z %s %s %s\n" % (second, stream.encode(), tag.encode(), message)


LOG_DATA = (cri(1, "stdout", b"GET /healthz 200") + cri(2, "stderr", b"panic: boom")
            + cri(3, "stdout", b"part one ", "P") + cri(3, "stdout", b"and two") + cri(4, "stdout", b"caf\xc3\xa9"))


def log_record(kube: dict[str, Any] = KUBE, *, data: bytes = LOG_DATA, offset: int = 0, position: int = 0,
               file_key: str = "2049:77") -> Record:
    """A record of one chunk of lines, as the logs source builds it."""
    block = FileParser(LogFormat.CRI, LogsSettings()).feed(data, offset)
    path = f"/var/log/pods/{kube['namespace']}_{kube['pod_name']}_{kube['pod_uid']}/{kube['container_name']}/0.log"
    chunk = LogChunk(block, ContainerMeta.build(kube), path, file_key=file_key, read_time_ns=READ_TIME_NS)
    return Record(data={}, chunk=chunk, sort_key=chunk.sort_key, position=position, size_hint=chunk.size_hint)


async def event_records(tmp_path: Path) -> list[Record]:
    """Records made by the Events source from core/v1 Events (a Warning and a Normal about a pod,
    a Normal about a node)."""
    harness = Harness(tmp_path / "events.db", EventsSettings())
    try:
        await harness.listing([], list_rv=100)
        await harness.feed(EventType.ADDED, core_event("e1", 101, 3, namespace="shop", type_="Warning",
                                                       reason="BackOff", obj_name="web-7d9f8-abcde"))
        same_pod = core_event("e2", 102, 1, namespace="shop", reason="Pulled", obj_name="web-7d9f8-abcde")
        same_pod["involvedObject"]["uid"] = "u-e1"
        await harness.feed(EventType.ADDED, same_pod)
        await harness.feed(EventType.ADDED, core_event("e3", 103, 1, namespace="default", kind="Node",
                                                       reason="NodeReady", obj_name="node-a"))
        return harness.sink.all()
    finally:
        harness.close()


def decode_request(body: bytes, headers: dict[str, str]) -> logs_service_pb2.ExportLogsServiceRequest:
    """A request as an OTLP receiver reads it, with the official messages."""
    from google.protobuf import json_format

    if body.startswith(b"\x1f\x8b"):  # aiohttp's server inflates Content-Encoding: gzip bodies itself
        body = gzip.decompress(body)
    request = logs_service_pb2.ExportLogsServiceRequest()
    if headers.get("Content-Type") == "application/json":
        json_format.Parse(body, request)
    else:
        request.ParseFromString(body)
    return request


def attrs(message: Any) -> dict[str, Any]:
    """The ``attributes`` of a Resource or LogRecord as a plain dict."""
    out: dict[str, Any] = {}
    for kv in message.attributes:
        which = kv.value.WhichOneof("value")
        out[kv.key] = getattr(kv.value, which) if which else None
    return out


@dataclass
class Reply:
    status: int = 200
    headers: dict[str, str] = field(default_factory=dict)
    body: bytes = b""


@dataclass
class Seen:
    path: str
    headers: dict[str, str]
    body: bytes
    """As the server's ``request.read()`` gives it: aiohttp inflates a ``Content-Encoding: gzip`` body."""
    peer_cert: dict[str, Any] | None


class Receiver:
    """An HTTP server on 127.0.0.1 recording requests; ``replies`` are answered in order (then 200)."""

    def __init__(self) -> None:
        self.requests: list[Seen] = []
        self.replies: list[Reply] = []
        self.url = ""
        self._runner: web.AppRunner | None = None

    async def _handle(self, request: web.Request) -> web.Response:
        body = await request.read()
        transport = request.transport
        ssl_object = transport.get_extra_info("ssl_object") if transport is not None else None
        peer = ssl_object.getpeercert() if ssl_object is not None else None
        self.requests.append(Seen(request.path, dict(request.headers), body, peer))
        reply = self.replies.pop(0) if self.replies else Reply()
        return web.Response(status=reply.status, headers=reply.headers, body=reply.body)

    async def start(self, ssl_context: ssl.SSLContext | None = None) -> Receiver:
        app = web.Application(client_max_size=64 * 1024 * 1024)
        app.router.add_route("POST", "/{tail:.*}", self._handle)
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0, ssl_context=ssl_context)
        await site.start()
        server = site._server
        assert server is not None
        port = server.sockets[0].getsockname()[1]  # type: ignore[attr-defined]
        self.url = f"{'https' if ssl_context else 'http'}://127.0.0.1:{port}"
        return self

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()


@dataclass(frozen=True)
class MutualTls:
    ca_file: Path
    """Trusted by the client: signed the server's certificate."""
    client_cert: Path
    client_key: Path
    server: ssl.SSLContext
    """Serves the server certificate and requires a client certificate from the client CA."""
    server_cert: Path
    server_key: Path


def _client_certificate(directory: Path) -> tuple[Path, Path, Path]:
    now = dt.datetime.now(dt.UTC)
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "clients-ca")])
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca = (x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(ca_key.public_key())
          .serial_number(x509.random_serial_number()).not_valid_before(now - dt.timedelta(minutes=5))
          .not_valid_after(now + dt.timedelta(days=1))
          .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
          .sign(ca_key, hashes.SHA256()))
    key = ec.generate_private_key(ec.SECP256R1())
    cert = (x509.CertificateBuilder()
            .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "kubestream-agent")]))
            .issuer_name(name).public_key(key.public_key()).serial_number(x509.random_serial_number())
            .not_valid_before(now - dt.timedelta(minutes=5)).not_valid_after(now + dt.timedelta(days=1))
            .add_extension(x509.ExtendedKeyUsage([x509.oid.ExtendedKeyUsageOID.CLIENT_AUTH]), critical=False)
            .sign(ca_key, hashes.SHA256()))
    paths = directory / "clients-ca.crt", directory / "client.crt", directory / "client.key"
    paths[0].write_bytes(ca.public_bytes(serialization.Encoding.PEM))
    paths[1].write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    paths[2].write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                           serialization.NoEncryption()))
    return paths


def mutual_tls_files(tmp_path: Path) -> MutualTls:
    """A server certificate from a CA the client trusts, and a client certificate the server requires."""
    files = tls.generate(tmp_path / "tls")
    clients_ca, client_cert, client_key = _client_certificate(tmp_path / "tls")
    server = files.server_context()
    server.load_verify_locations(cafile=str(clients_ca))
    server.verify_mode = ssl.CERT_REQUIRED
    return MutualTls(files.ca_cert, client_cert, client_key, server, files.server_cert, files.server_key)


def tls_server_only(files: MutualTls) -> ssl.SSLContext:
    """A server context that serves the same certificate without asking for a client's."""
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(files.server_cert, files.server_key)
    return context


def write_spool(tmp_path: Path, payload: bytes, name: str = "part") -> Path:
    path = tmp_path / name
    path.write_bytes(payload)
    return path
