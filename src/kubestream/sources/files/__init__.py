"""A file source that knows nothing about Kubernetes: listing and watching directories (``dirs``,
``inotify``), opening files without trusting them (``guard``), reaching a file's bytes across
rotation and gzip (``handle``), and naming a file by its content (``fingerprint``).

The log source (``sources.logs``) puts kubelet's path layout, the CRI/docker parsers and the
enrichment on top; an import-linter contract keeps this package from importing them.
"""
