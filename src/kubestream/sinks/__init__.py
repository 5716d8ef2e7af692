"""Destinations for encoded batches, behind the ``Sink`` protocol (sinks/base.py)."""

from kubestream.sinks.base import Sink
from kubestream.sinks.file import FileSink

__all__ = ["FileSink", "Sink"]
