"""Observability: the metrics catalogue, logging setup, and the /metrics /healthz /readyz server."""
