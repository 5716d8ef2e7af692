"""The configuration as a typed tree (pydantic). Every option and default is documented in
docs/configuration.md; keep the two in step.

Unknown keys are rejected (``extra="forbid"``) so a typo fails validation with its key path
instead of being silently ignored.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, SecretStr, field_validator


class _Section(BaseModel):
    # allow_inf_nan=False: every float of the tree is a time or size bound, and `.inf`/NaN would
    # turn a bound into "never" (or a comparison that is always false) without a word.
    # use_attribute_docstrings: the docstrings below become the JSON schema's descriptions
    # (deploy/helm/kubestream/values.schema.json is generated from this tree).
    model_config = ConfigDict(extra="forbid", validate_default=True, allow_inf_nan=False,
                              use_attribute_docstrings=True)


# After _Section: the output settings build on it (and the package imports this module first).
from kubestream.config.outputs import HttpSinkSettings, OtlpSinkSettings  # noqa: E402


class KubeSettings(_Section):
    """How to reach the Kubernetes API (through the official ``kubernetes.aio`` client)."""

    kubeconfig: str | None = None
    """Path to a kubeconfig file. Empty or unset: in-cluster config if available, else ~/.kube/config."""
    context: str | None = None
    """kubeconfig context to use (default: the current context)."""
    request_timeout_s: float = Field(30.0, gt=0)
    """Timeout of one non-watch request."""
    watch_timeout_s: tuple[float, float] = (300.0, 600.0)
    """A watch asks the server to end it after a random time in this range (like client-go)."""
    inactivity_timeout_s: float = Field(90.0, gt=0)
    """A watch that delivers nothing (no event, no bookmark) for this long is restarted."""
    list_page_size: int = Field(500, ge=1)
    """``limit`` of each page when listing."""
    backoff_initial_s: float = Field(0.8, gt=0)
    backoff_max_s: float = Field(30.0, gt=0)
    backoff_reset_after_s: float = Field(120.0, gt=0)
    """After this long without failure the backoff starts again from ``backoff_initial_s``."""


_CLUSTER_NAME_MAX = 253
_CLUSTER_NAME_UNSAFE = re.compile(r"[/\\\s\x00-\x1f\x7f]")


def cluster_name_problem(name: str) -> str | None:
    """Why ``name`` cannot name a cluster (it is also a ``cluster=<name>`` folder of object
    keys), or None if it can."""
    if not name or name in (".", ".."):
        return f"expected a name usable as one folder of an object key (got {name!r})"
    if len(name) > _CLUSTER_NAME_MAX:
        return f"at most {_CLUSTER_NAME_MAX} characters (got {len(name)})"
    if _CLUSTER_NAME_UNSAFE.search(name):
        return f"no '/', '\\', spaces or control characters: it becomes a folder of object keys (got {name!r})"
    return None


class ClusterSettings(_Section):
    """Which cluster the records come from: every event and log record carries it as ``cluster``."""

    name: str | None = None
    """The cluster's name in every record's top-level ``cluster`` field. Unset: the cluster of the
    kubeconfig context in use when running from a kubeconfig; required in a pod (in-cluster)."""
    partition: bool = False
    """Put a ``cluster=<name>/`` level in object keys (``<prefix>/<stream>/cluster=<name>/dt=…/hour=…/``)
    so several clusters can share one bucket and prefix (``kubestream query --cluster`` then lists
    only that cluster's folders)."""

    @field_validator("name")
    @classmethod
    def _usable_name(cls, name: str | None) -> str | None:
        problem = None if name is None else cluster_name_problem(name)
        if problem:
            raise ValueError(problem)
        return name


class EventMetricsSettings(_Section):
    """``kubestream_kube_events_total``: occurrences of exported events as a Prometheus counter."""

    enabled: bool = True
    max_reasons: int = Field(100, ge=1)
    """Distinct ``reason`` label values; reasons seen after this many are counted as "other"."""
    max_namespaces: int = Field(100, ge=1)
    """Distinct ``namespace`` label values; later ones are counted as "other"."""
    max_kinds: int = Field(50, ge=1)
    """Distinct ``involved_kind`` label values; later ones are counted as "other"."""


class EventsSettings(_Section):
    """The Events source (one collector per cluster)."""

    enabled: bool = True
    api: Literal["core/v1", "events.k8s.io/v1"] = "core/v1"
    namespaces_include: list[str] = Field(default_factory=list)
    """Only these namespaces (empty: all)."""
    namespaces_exclude: list[str] = Field(default_factory=list)
    types: list[str] = Field(default_factory=list)
    """Only these event types, e.g. ["Warning"] (empty: all)."""
    reasons_include: list[str] = Field(default_factory=list)
    reasons_exclude: list[str] = Field(default_factory=list)
    kinds_include: list[str] = Field(default_factory=list)
    """Only events whose involved object has one of these kinds (empty: all)."""
    kinds_exclude: list[str] = Field(default_factory=list)
    since: str = "now"
    """First start only: "now" (export only occurrences from now on), "retained" (everything the
    API still retains), or a duration such as "15m", "2h" (occurrences newer than that). Later
    starts always catch up from the saved state."""
    metrics: EventMetricsSettings = Field(default_factory=EventMetricsSettings)


class EnrichSettings(_Section):
    """Metadata joined onto records, served only from watch caches."""

    enabled: bool = True
    owners: bool = True
    """Resolve the owner chain up to the top workload (needs ReplicaSet/Job/... watches)."""
    nodes: bool = True
    namespaces: bool = True
    services: bool = True
    labels_include: list[str] = Field(default_factory=list)
    """Glob patterns of label keys to keep (empty: all)."""
    labels_exclude: list[str] = Field(default_factory=list)
    annotations_include: list[str] = Field(default_factory=list)
    annotations_exclude: list[str] = Field(
        default_factory=lambda: ["kubectl.kubernetes.io/last-applied-configuration"]
    )
    delete_delay_s: float = Field(600.0, ge=0)
    """Deleted objects stay in the caches this long, so late records are still enriched."""
    value_max_bytes: int = Field(4096, ge=0)
    """Label/annotation values longer than this (UTF-8 bytes) are cut and listed in the block's
    ``truncated_values``; 0 keeps every value whole."""


class BatchSettings(_Section):
    """When an open batch is closed (whichever comes first)."""

    max_records: int = Field(1000, ge=1)
    max_bytes: int = Field(8 * 1024 * 1024, ge=1024)
    max_age_s: float = Field(10.0, gt=0)
    """Counted from the batch's first record, not from the last one."""


class MemorySettings(_Section):
    """How the agent's process gives freed memory back (see ``pipeline.memory``): what bounds the
    resident set to the batch settings rather than to the allocators' high-water marks."""

    malloc_arena_max: int | None = Field(2, ge=1)
    """glibc malloc arenas (``M_ARENA_MAX``); null: glibc's default (8 per core). Each encoding
    thread otherwise keeps an arena holding the largest batch it ever encoded."""
    arrow_pool: Literal["system", "jemalloc", "mimalloc", "default"] = "system"
    """pyarrow's memory pool (Parquet): ``system`` (glibc malloc, so the arena cap and the trim apply to
    Arrow too; measured lowest peak), ``jemalloc`` (freed pages returned at once: decay 0),
    ``default`` keeps pyarrow's choice (mimalloc), which holds them for reuse."""
    trim_after_batch: bool = True
    """After each batch is encoded, return freed heap pages to the system (``malloc_trim``, and the
    Arrow pool's ``release_unused``)."""


class EncodingSettings(_Section):
    format: Literal["ndjson", "protobuf", "parquet"] = "ndjson"
    """parquet: events and logs, one Parquet file per batch (zstd inside the file at ``zstd_level``;
    ``compression`` is ignored, the extension is ``parquet``; events in the compacted schema)."""
    compression: Literal["gzip", "zstd", "none"] = "gzip"
    gzip_level: int = Field(1, ge=0, le=9)
    zstd_level: int = Field(1, ge=1, le=22)
    """1 (like gzip_level 1): measured +20 % log throughput over 3 for +0.3 % Parquet size."""
    protobuf_message: Literal["kubestream", "k8stream"] = "kubestream"
    """Protobuf only: the full kubestream message, or the k8stream-compatible one."""


class FileSinkSettings(_Section):
    dir: Path = Path("./kubestream-out")


class S3SinkSettings(_Section):
    bucket: str = ""
    region: str | None = None
    endpoint_url: str | None = None
    """For S3-compatible stores (MinIO, Ceph, ...)."""
    profile: str | None = None
    access_key_id: SecretStr | None = None
    secret_access_key: SecretStr | None = None
    session_token: SecretStr | None = None
    storage_class: str | None = None
    sse: Literal["AES256", "aws:kms"] | None = None
    sse_kms_key_id: str | None = None
    multipart_threshold_bytes: int = Field(16 * 1024 * 1024, ge=5 * 1024 * 1024)
    multipart_chunk_bytes: int = Field(8 * 1024 * 1024, ge=5 * 1024 * 1024)
    attempt_timeout_s: float = Field(60.0, gt=0)
    force_path_style: bool = False


class GCSSinkSettings(_Section):
    """Google Cloud Storage through obstore's ``GCSStore`` (its config keys in parentheses)."""

    bucket: str = ""
    service_account_path: Path | None = None
    """A service-account JSON key file (``service_account``). Unset: ``application_credentials_path``,
    else the ``GOOGLE_*`` environment, else workload identity / the metadata server."""
    application_credentials_path: Path | None = None
    """Application-default credentials file (``application_credentials``), e.g. from
    ``gcloud auth application-default login``."""
    endpoint_url: str | None = None
    """Base URL of the GCS API (``base_url``), for emulators and private endpoints."""
    multipart_threshold_bytes: int = Field(16 * 1024 * 1024, ge=5 * 1024 * 1024)
    multipart_chunk_bytes: int = Field(8 * 1024 * 1024, ge=5 * 1024 * 1024)
    attempt_timeout_s: float = Field(60.0, gt=0)


class AzureSinkSettings(_Section):
    """Azure Blob Storage through obstore's ``AzureStore`` (its config keys in parentheses)."""

    account: str | None = None
    """Storage account name (``account_name``); default with ``use_emulator``: devstoreaccount1."""
    container: str = ""
    access_key: SecretStr | None = None
    """Shared account key (``account_key``)."""
    sas_token: SecretStr | None = None
    """Shared access signature, percent-encoded as the portal shows it (``sas_key``)."""
    connection_string: SecretStr | None = None
    """An Azure Storage connection string; supplies AccountName, AccountKey, SharedAccessSignature
    and BlobEndpoint unless the options above set them."""
    endpoint_url: str | None = None
    """Blob endpoint including the account for path-style hosts, e.g. Azurite's
    ``http://127.0.0.1:10000/devstoreaccount1`` (``endpoint``)."""
    use_emulator: bool = False
    """Azurite: account devstoreaccount1 and its published key unless set, endpoint
    ``http://127.0.0.1:10000/<account>`` unless ``endpoint_url`` is set."""
    multipart_threshold_bytes: int = Field(16 * 1024 * 1024, ge=5 * 1024 * 1024)
    multipart_chunk_bytes: int = Field(8 * 1024 * 1024, ge=5 * 1024 * 1024)
    attempt_timeout_s: float = Field(60.0, gt=0)


class SinkSettings(_Section):
    type: Literal["file", "s3", "gcs", "azure", "otlp", "http"] = "file"
    """file, s3, gcs, azure: an archive (exactly once); otlp, http: live outputs (at least once)."""
    prefix: str = ""
    """Leading path of every object key, e.g. "prod/eu-1"."""
    stream_uid: str = "kubestream"
    """Identifies this stream in output names (k8stream's ``uid``)."""
    file: FileSinkSettings = Field(default_factory=FileSinkSettings)
    s3: S3SinkSettings = Field(default_factory=S3SinkSettings)
    gcs: GCSSinkSettings = Field(default_factory=GCSSinkSettings)
    azure: AzureSinkSettings = Field(default_factory=AzureSinkSettings)
    otlp: OtlpSinkSettings = Field(default_factory=OtlpSinkSettings)
    http: HttpSinkSettings = Field(default_factory=HttpSinkSettings)
    retry_initial_s: float = Field(0.5, gt=0)
    retry_max_s: float = Field(60.0, gt=0)


ARCHIVE_TYPES: tuple[str, ...] = ("file", "s3", "gcs", "azure")
"""Destination types that hold an archive (deterministic keys, readable back, exactly once)."""
LEGACY_DESTINATION = "archive"
"""The name of the one destination a single ``sink:`` section configures."""
_DESTINATION_NAME = r"^[a-z0-9-]+$"
_STREAMS: tuple[Literal["events", "logs"], ...] = ("events", "logs")


class DestinationFilter(_Section):
    """Which records of its streams a destination takes (every record when all are empty)."""

    namespaces_include: list[str] = Field(default_factory=list)
    """Glob patterns of namespaces to take (empty: all)."""
    namespaces_exclude: list[str] = Field(default_factory=list)
    """Glob patterns of namespaces to leave out (wins over ``namespaces_include``)."""
    types: list[str] = Field(default_factory=list)
    """Events only: these event types, e.g. ["Warning"] (empty: all)."""
    reasons: list[str] = Field(default_factory=list)
    """Events only: these reasons (empty: all)."""
    involved_kinds: list[str] = Field(default_factory=list)
    """Events only: events whose involved object has one of these kinds (empty: all)."""
    pod_selector: str | None = None
    """Label selector (Kubernetes syntax) on the labels of the record's object (the pod of a log
    line, the involved object of an event)."""

    def events_only_fields(self) -> list[str]:
        """The options set here that mean nothing for log records."""
        return [name for name in ("types", "reasons", "involved_kinds") if getattr(self, name)]


class DestinationSettings(SinkSettings):
    """One destination of ``sinks:``: a sink, the streams and records it takes, how they are
    encoded and split, and what happens when it falls behind."""

    name: str = Field(LEGACY_DESTINATION, pattern=_DESTINATION_NAME, max_length=63)
    """Unique name (``[a-z0-9-]+``): labels its metrics and its pending parts in the spool."""
    streams: list[Literal["events", "logs"]] = Field(default_factory=lambda: list(_STREAMS))
    """The streams it takes."""
    encoding: EncodingSettings | None = None
    """Archive types: the encoding of its objects (default: the top-level ``encoding``)."""
    filter: DestinationFilter = Field(default_factory=DestinationFilter)
    max_records: int | None = Field(None, ge=1)
    """At most this many records per payload: a larger closed batch is split into parts (default: no limit)."""
    max_bytes: int | None = Field(None, ge=1024)
    """Payloads larger than this (encoded) are split into parts (default: no limit)."""
    on_full: Literal["block", "drop"] = "block"
    """When its pending parts reach ``max_pending_bytes``: ``block`` pauses the sources (every
    destination waits for it); ``drop`` drops its own oldest pending parts (counted)."""
    max_pending_bytes: int | None = Field(None, ge=1024)
    """Bound of its undelivered parts (default: ``spool.max_bytes``)."""

    @property
    def is_archive_type(self) -> bool:
        """Whether it is an object store or files with deterministic keys."""
        return self.type in ARCHIVE_TYPES


class StateSettings(_Section):
    dir: Path = Path("./kubestream-state")
    """Holds the SQLite state database and, unless spool.dir is set, the spool."""


class SpoolSettings(_Section):
    dir: Path | None = None
    """Default: <state.dir>/spool."""
    max_bytes: int = Field(1024 * 1024 * 1024, ge=1024 * 1024)
    """Sources pause when the undelivered batches reach this size."""


class ServerSettings(_Section):
    """/metrics, /healthz and /readyz."""

    enabled: bool = True
    host: str = "127.0.0.1"
    """Listen address. Loopback by default, so a laptop run exposes nothing; the manifests and the
    chart set 0.0.0.0 (the pod's own network namespace) so probes and scraping reach it."""
    port: int = Field(9102, ge=0, le=65535)


class LogSettings(_Section):
    format: Literal["text", "json"] = "text"
    level: Literal["debug", "info", "warning", "error"] = "info"


class ShutdownSettings(_Section):
    timeout_s: float = Field(20.0, gt=0)
    """SIGTERM/SIGINT: flush, commit and exit within this bound."""


class MultilineRule(_Section):
    """Join continuation lines (e.g. stack traces) onto the line that starts a record."""

    start_pattern: str
    """Regular expression matching the first line of a record; other lines are continuations."""
    namespaces: list[str] = Field(default_factory=list)
    """Apply to these namespaces (empty: all)."""
    containers: list[str] = Field(default_factory=list)
    """Apply to containers with these names (empty: all)."""


class LogJsonSettings(_Section):
    """Log messages that are a JSON object become a nested ``parsed`` field."""

    enabled: bool = False
    """The default for every container (``namespaces`` and the pod annotation override it)."""
    namespaces: dict[str, bool] = Field(default_factory=dict)
    """Per-namespace override of ``enabled``, e.g. ``{payments: true, legacy: false}``."""
    annotation: str = "kubestream.io/parse-json"
    """Pod annotation: "true"/"false" for all its containers, or "<container>=true;<container>=false"."""
    keep_message: bool = True
    """Keep the raw ``message`` of a parsed line (false: only ``parsed`` is written)."""
    max_bytes: int = Field(64 * 1024, ge=2)
    """Messages longer than this (UTF-8 bytes) are not parsed (``result="too_large"``)."""
    max_depth: int = Field(32, ge=1, le=512)
    """Objects nested deeper than this are not parsed (``result="too_deep"``)."""


class KubeletSettings(_Section):
    """How the node agent reads its node's pods from the kubelet (``logs.metadata_source: kubelet``)."""

    url: str | None = None
    """Base URL of the kubelet API, e.g. ``https://10.0.0.7:10250``. Unset: the agent's Node object's
    (``status.addresses`` InternalIP and ``status.daemonEndpoints.kubeletEndpoint.Port``), followed
    when it changes."""
    ca_file: Path = Path("/var/run/secrets/kubernetes.io/serviceaccount/ca.crt")
    """CA bundle that signed the kubelet's serving certificate (default: the service-account CA)."""
    token_file: Path = Path("/var/run/secrets/kubernetes.io/serviceaccount/token")
    """Bearer token sent to the kubelet, re-read every minute (default: the service-account token)."""
    insecure_skip_tls_verify: bool = False
    """Do not verify the kubelet's certificate (self-signed kubelet certificates); warned about at start."""
    refresh_s: float = Field(10.0, gt=0)
    """``GET /pods`` about this often (with ±20 % jitter), and at once when a log directory of an
    unknown pod appears (at most once a second)."""
    request_timeout_s: float = Field(10.0, gt=0)
    """Timeout of one kubelet request."""


class LogsSettings(_Section):
    """The pod_logs source of the node agent (DaemonSet, one per node)."""

    enabled: bool = False
    metadata_source: Literal["apiserver", "kubelet"] = "apiserver"
    """Where a logs-only node agent gets its node's pods: a pod list/watch on the API server, or the
    kubelet's ``/pods`` (no pod watch on the API server). Namespaces, nodes, owners and services
    always come from the API server."""
    kubelet: KubeletSettings = Field(default_factory=KubeletSettings)
    node_name: str | None = None
    """Node whose pods are read; default: the NODE_NAME environment variable."""
    pods_dir: Path = Path("/var/log/pods")
    containers_dir: Path | None = Path("/var/log/containers")
    """kubelet's symlinks (docker setups); None to ignore."""
    extra_roots: list[Path] = Field(default_factory=list)
    """Directories besides pods_dir that log symlinks may resolve into (e.g. /var/lib/docker/containers
    on dockershim-era Docker nodes); a link resolving anywhere else is never followed."""
    include_paths: list[str] = Field(default_factory=list)
    """Glob patterns (relative to pods_dir) of files to read (empty: all)."""
    exclude_paths: list[str] = Field(default_factory=list)
    namespaces_include: list[str] = Field(default_factory=list)
    namespaces_exclude: list[str] = Field(default_factory=list)
    label_selector: str | None = None
    """Only pods matching this label selector (Kubernetes syntax)."""
    exclude_label: str = "kubestream.io/exclude"
    """Pods or namespaces with this label set to "true" are not read."""
    exclude_containers_annotation: str = "kubestream.io/exclude-containers"
    """Pod annotation: comma-separated container names not to read."""
    multiline_annotation: str = "kubestream.io/multiline-start"
    """Pod annotation: a start pattern for all its containers, or "<container>=<pattern>;..."."""
    multiline: list[MultilineRule] = Field(default_factory=list)
    multiline_timeout_s: float = Field(1.0, gt=0)
    parse_json: LogJsonSettings = Field(default_factory=LogJsonSettings)
    partial_expiry_s: float = Field(5.0, gt=0)
    """An unfinished partial line (CRI P without F, docker log without newline) is emitted as it is
    after this long without new data (an exited container never writes its end)."""
    exclude_own_pod: bool = True
    """Skip the agent's own pod (POD_NAME / POD_NAMESPACE environment variables)."""
    max_line_bytes: int = Field(1024 * 1024, ge=1024)
    """Longer physical lines are truncated (counted in kubestream_records_dropped_total)."""
    max_merged_bytes: int = Field(4 * 1024 * 1024, ge=1024)
    """Partial lines (CRI P/F, docker 16 KiB splits) merged beyond this are truncated (counted)."""
    invalid_utf8: Literal["replace", "lossless"] = "replace"
    """replace: U+FFFD; lossless: the message is kept as base64 in message_base64."""
    read_chunk_bytes: int = Field(1024 * 1024, ge=4096)
    sweep_interval_s: float = Field(10.0, gt=0)
    """Safety-net stat sweep of the log directory besides inotify."""
    drain_timeout_s: float = Field(60.0, ge=0)
    """A rotated or deleted file is read to its end for at most this long before it is let go."""
    pod_dir_grace_s: float = Field(300.0, ge=0)
    """Metadata of a deleted pod is kept at least this long after its files are drained."""


class LeaderElectionSettings(_Section):
    """One active events collector per cluster: a ``coordination.k8s.io/v1`` Lease decides which.

    The active replica's export state is rebuilt from the sink when it takes over, so any replica
    can continue where the last one stopped (see docs/design-ha.md)."""

    enabled: bool = False
    lease_name: str = "kubestream-events"
    namespace: str | None = None
    """Namespace of the Lease; default: the POD_NAMESPACE environment variable, else "default"."""
    identity: str | None = None
    """This replica's holder identity; default: POD_NAME, else the host name plus the process id."""
    lease_duration_s: float = Field(15.0, gt=0)
    """A standby takes over when the holder has not renewed for this long."""
    renew_deadline_s: float = Field(10.0, gt=0)
    """The holder stops exporting if it could not renew for this long (must be < lease_duration_s)."""
    retry_period_s: float = Field(2.0, gt=0)
    """How often the holder renews (a standby watches the Lease instead of polling it)."""
    rebuild_window_s: float = Field(2 * 3600.0, gt=0)
    """On takeover, archive objects this recent are read back to rebuild the export state; keep it
    above the API server's --event-ttl (1 h by default)."""


_COMPACTED_STREAMS: tuple[Literal["events", "logs"], ...] = ("events", "logs")


class CompactionSettings(_Section):
    """``kubestream compact``: closed partitions rewritten into a few Parquet files (docs/operations.md)."""

    grace_s: float = Field(3600.0, ge=0, le=10 * 365 * 86400)
    """An hour's partition is compacted once its end is at least this long ago (late batches after
    that are compacted by the next run)."""
    target_file_bytes: int = Field(128 * 1024 * 1024, ge=64 * 1024)
    """A compacted file is closed once it reaches this size."""
    row_group_bytes: int = Field(32 * 1024 * 1024, ge=64 * 1024)
    """Rows buffered (Arrow size) before a Parquet row group is written; bounds memory with the target size."""
    min_objects: int = Field(2, ge=1)
    """A stream's partition with fewer uncompacted objects than this is left as it is."""
    streams: list[Literal["events", "logs"]] = Field(default_factory=lambda: list(_COMPACTED_STREAMS))
    """The streams to compact."""
    zstd_level: int = Field(3, ge=1, le=22)
    """zstd level of the compacted Parquet files."""
    interval_s: float | None = Field(None, ge=10)
    """Unset: compaction runs only as ``kubestream compact``. Set: the events collector also compacts
    the archive about this often (±10 % jitter; only the leader when leader election is on), the
    same work as the command, safe to interrupt at any point."""


class Settings(_Section):
    """The root of the configuration tree."""

    cluster: ClusterSettings = Field(default_factory=ClusterSettings)
    kube: KubeSettings = Field(default_factory=KubeSettings)
    events: EventsSettings = Field(default_factory=EventsSettings)
    logs: LogsSettings = Field(default_factory=LogsSettings)
    leader_election: LeaderElectionSettings = Field(default_factory=LeaderElectionSettings)
    enrich: EnrichSettings = Field(default_factory=EnrichSettings)
    batch: BatchSettings = Field(default_factory=BatchSettings)
    encoding: EncodingSettings = Field(default_factory=EncodingSettings)
    sink: SinkSettings = Field(default_factory=SinkSettings)
    sinks: list[DestinationSettings] = Field(default_factory=list)
    state: StateSettings = Field(default_factory=StateSettings)
    spool: SpoolSettings = Field(default_factory=SpoolSettings)
    server: ServerSettings = Field(default_factory=ServerSettings)
    log: LogSettings = Field(default_factory=LogSettings)
    shutdown: ShutdownSettings = Field(default_factory=ShutdownSettings)
    compaction: CompactionSettings = Field(default_factory=CompactionSettings)
    memory: MemorySettings = Field(default_factory=MemorySettings)

    def destinations(self) -> list[DestinationSettings]:
        """The configured destinations: ``sinks``, or the one ``sink`` (named ``archive``)."""
        if self.sinks:
            return list(self.sinks)
        legacy = self.sink.model_dump(round_trip=True)
        return [DestinationSettings.model_validate({**legacy, "name": LEGACY_DESTINATION})]

    def archive_destination(self) -> DestinationSettings | None:
        """The archive: the first file/object-store destination. It is what an HA takeover reads
        back and what the query commands read by default; None when no destination is one."""
        return next((d for d in self.destinations() if d.is_archive_type), None)

    @property
    def spool_dir(self) -> Path:
        return self.spool.dir if self.spool.dir is not None else self.state.dir / "spool"
