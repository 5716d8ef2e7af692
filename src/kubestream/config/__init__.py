"""Configuration: the typed settings tree, loading and interpolation."""

from kubestream.config.durations import parse_duration, parse_since
from kubestream.config.loader import LoadedConfig, load_config, load_settings
from kubestream.config.settings import Settings

__all__ = ["LoadedConfig", "Settings", "load_config", "load_settings", "parse_duration", "parse_since"]
