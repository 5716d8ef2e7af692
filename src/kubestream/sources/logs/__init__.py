"""The pod_logs source: container log files on the node → enriched log records.

``chunk`` is the seam between the reading half (discovery, tailing, checkpoints) and the parsing
half (CRI/docker parsing, partial-line merging, multi-line joining, NDJSON and Parquet encoding).
"""
