"""The agent's Prometheus metrics (``kubestream_*``), one private registry per agent instance so
several agents (or tests) can live in one process. No per-pod labels: cardinality stays bounded.

The catalogue is documented in docs/operations.md; keep the two in step.
"""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

import kubestream

_LAG_BUCKETS = (0.1, 0.25, 0.5, 1, 2, 5, 10, 20, 30, 60, 120, 300, 600)


class Metrics:
    """Every collector of one agent. Pass it down; never use the global default registry."""

    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        self.registry = registry or CollectorRegistry(auto_describe=True)
        r = self.registry
        self.records_in = Counter(
            "kubestream_records_in_total", "Records read by a source (before filters and dedup).", ["source"], registry=r)
        self.records_out = Counter(
            "kubestream_records_out_total", "Records committed to the spool (delivered exactly once).", ["source"],
            registry=r)
        self.records_deduplicated = Counter(
            "kubestream_records_deduplicated_total", "Observations dropped as already exported (relists, replays).",
            ["source"], registry=r)
        self.records_filtered = Counter(
            "kubestream_records_filtered_total", "Records dropped by configured filters.", ["source"], registry=r)
        self.records_dropped = Counter(
            "kubestream_records_dropped_total", "Data lost or altered, by reason (truncated, rotated_unread, ...).",
            ["source", "reason"], registry=r)
        self.enrichment_misses = Counter(
            "kubestream_enrichment_misses_total", "Records whose object was not in the caches.", ["source", "kind"],
            registry=r)
        self.batches = Counter(
            "kubestream_batches_total", "Batches delivered to the sink.", ["sink", "stream"], registry=r)
        self.batch_bytes = Counter(
            "kubestream_batch_bytes_total", "Encoded bytes delivered to the sink.", ["sink", "stream"], registry=r)
        self.sink_errors = Counter(
            "kubestream_sink_errors_total", "Failed delivery attempts by kind (retryable, fatal).", ["sink", "kind"],
            registry=r)
        self.sink_retries = Counter(
            "kubestream_sink_retries_total", "Delivery attempts that were retries.", ["sink"], registry=r)
        self.spool_bytes = Gauge(
            "kubestream_spool_bytes", "Bytes of encoded batches waiting in the local spool.", registry=r)
        self.spool_batches = Gauge(
            "kubestream_spool_batches", "Batches waiting in the local spool.", registry=r)
        self.backpressure_seconds = Counter(
            "kubestream_backpressure_seconds_total", "Time sources spent paused because the spool was full.",
            ["source"], registry=r)
        self.watch_restarts = Counter(
            "kubestream_watch_restarts_total", "Watch restarts by reason (timeout, expired, error, inactivity, ...).",
            ["resource", "reason"], registry=r)
        self.relists = Counter(
            "kubestream_relists_total", "Full lists (initial and after 410).", ["resource"], registry=r)
        self.cached_objects = Gauge(
            "kubestream_cached_objects", "Objects held in the watch caches (including delayed deletions).",
            ["kind"], registry=r)
        self.api_requests = Counter(
            "kubestream_api_requests_total", "Requests sent to the Kubernetes API.", ["verb", "code"], registry=r)
        self.lag = Histogram(
            "kubestream_end_to_end_lag_seconds", "From a record's timestamp to its durable registration.",
            ["source"], buckets=_LAG_BUCKETS, registry=r)
        self.files_skipped = Counter(
            "kubestream_files_skipped_total", "Log files the node agent refused to read, by reason.", ["reason"],
            registry=r)
        self.patterns_rejected = Counter(
            "kubestream_patterns_rejected_total", "Multi-line start patterns the linear-time engine refused.",
            ["origin"], registry=r)
        self.log_json_parse = Counter(
            "kubestream_log_json_parse_total",
            "Log lines looked at by logs.parse_json, by result (parsed, invalid, not_object, too_large, too_deep).",
            ["result"], registry=r)
        self.kube_events = Counter(
            "kubestream_kube_events_total",
            "Occurrences of exported Kubernetes Events, by type, reason, involved kind and namespace (capped).",
            ["type", "reason", "involved_kind", "namespace"], registry=r)
        self.dead_letters = Counter(
            "kubestream_dead_letters_total", "Batches an encoder or sink rejected, by stream and reason.",
            ["stream", "reason"], registry=r)
        self.sink_reachable = Gauge(
            "kubestream_sink_reachable", "1 while the last attempt to reach the sink got an answer, else 0.",
            ["sink"], registry=r)
        self.destination_pending_parts = Gauge(
            "kubestream_destination_pending_parts", "Parts waiting in the spool for one destination.",
            ["destination"], registry=r)
        self.destination_pending_bytes = Gauge(
            "kubestream_destination_pending_bytes", "Bytes of the parts waiting in the spool for one destination.",
            ["destination"], registry=r)
        self.destination_oldest_pending = Gauge(
            "kubestream_destination_oldest_pending_seconds",
            "Age of a destination's oldest undelivered part (its lag; 0 when nothing waits).",
            ["destination"], registry=r)
        self.destination_delivered_parts = Counter(
            "kubestream_destination_delivered_parts_total", "Parts a destination acknowledged.", ["destination"],
            registry=r)
        self.destination_delivered_records = Counter(
            "kubestream_destination_delivered_records_total", "Records in the parts a destination acknowledged.",
            ["destination"], registry=r)
        self.destination_dropped = Counter(
            "kubestream_destination_dropped_records_total",
            "Records a destination will never get, by reason (overflow: on_full drop; removed: no longer "
            "configured; rejected: refused for good by a live destination, kept in the spool's dead-letter/).",
            ["destination", "reason"], registry=r)
        self.destination_dropped_parts = Counter(
            "kubestream_destination_dropped_parts_total", "Parts dropped for a destination, by reason.",
            ["destination", "reason"], registry=r)
        self.destination_reachable = Gauge(
            "kubestream_destination_reachable", "1 while the last attempt to reach a destination got an answer, else 0.",
            ["destination"], registry=r)
        self.api_errors = Counter(
            "kubestream_api_errors_total", "Kubernetes API requests that got no HTTP answer, by kind.", ["kind"],
            registry=r)
        self.resource_version_resets = Counter(
            "kubestream_resource_version_resets_total",
            "Watches that found the server's resourceVersion behind their own (an etcd restore) and relisted.",
            ["resource"], registry=r)
        self.kubelet_errors = Counter(
            "kubestream_kubelet_errors_total",
            "Failed reads of the kubelet's /pods by the node agent (logs.metadata_source kubelet), by reason.",
            ["reason"], registry=r)
        self.compaction_runs = Counter(
            "kubestream_compaction_runs_total", "Periodic compactions of the archive by result (ok, failed).",
            ["result"], registry=r)
        self.compacted_objects = Counter(
            "kubestream_compacted_objects_total", "Small archive objects rewritten into compacted Parquet files.",
            registry=r)
        self.compaction_last_success = Gauge(
            "kubestream_compaction_last_success_timestamp_seconds",
            "When the last periodic compaction finished without error (Unix time).", registry=r)
        self.leader = Gauge(
            "kubestream_leader", "1 while this replica holds the events collector lease.", registry=r)
        self.build_info = Gauge(
            "kubestream_build_info", "Build information.", ["version"], registry=r)
        self.build_info.labels(version=kubestream.__version__).set(1)
