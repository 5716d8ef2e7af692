"""The embedded state store (SQLite): source positions and the spool registry."""

from kubestream.state.store import StateStore

__all__ = ["StateStore"]
