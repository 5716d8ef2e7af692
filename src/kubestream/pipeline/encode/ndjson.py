"""Newline-delimited JSON: one object per line (orjson), UTF-8, a newline after every record."""

from __future__ import annotations

import json
from collections.abc import Iterable
from typing import Any

import orjson

_OPTIONS = orjson.OPT_APPEND_NEWLINE


def dumps_line(item: Any) -> bytes:
    """One JSON document and a newline.

    orjson refuses a few things JSON can express (integers beyond 64 bits, non-string keys);
    one such record must not stop the pipeline, so it takes the slower stdlib path instead.
    """
    try:
        return orjson.dumps(item, option=_OPTIONS)
    except TypeError:
        return json.dumps(item, ensure_ascii=False, separators=(",", ":"), default=str).encode() + b"\n"


class NdjsonFormat:
    """Serializes record dicts as NDJSON."""

    extension = "ndjson"

    def serialize(self, items: Iterable[dict[str, Any]]) -> bytes:
        """One JSON object per line."""
        return b"".join(map(dumps_line, items))

    def parse(self, data: bytes) -> list[dict[str, Any]]:
        """The records of an NDJSON payload (blank lines ignored)."""
        return [orjson.loads(line) for line in data.splitlines() if line.strip()]
