"""Configuration: the typed settings tree, loading and interpolation."""

from kubestream.config.settings import Settings

__all__ = ["Settings"]
