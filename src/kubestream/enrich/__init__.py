"""kubestream.enrich: the ``kubernetes`` metadata block of records, from watch caches."""

from kubestream.enrich.enricher import Enricher

__all__ = ["Enricher"]
