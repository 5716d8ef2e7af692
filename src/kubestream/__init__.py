"""kubestream: Kubernetes Events and container logs into an enriched, exactly-once archive."""

__version__ = "0.1.0"
