"""The S3 server fixtures of tests/sinks (moto in server mode), shared rather than rebuilt."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

_SINKS = Path(__file__).resolve().parents[1] / "sinks"
if str(_SINKS) not in sys.path:
    sys.path.append(str(_SINKS))  # tests/sinks/conftest.py imports its helpers by name
_spec = importlib.util.spec_from_file_location("sinks_fixtures", _SINKS / "conftest.py")
assert _spec is not None and _spec.loader is not None
_sinks = importlib.util.module_from_spec(_spec)
sys.modules["sinks_fixtures"] = _sinks  # dataclasses look their module up
_spec.loader.exec_module(_sinks)

moto_server = _sinks.moto_server
bucket = _sinks.bucket
MotoServer = _sinks.MotoServer
