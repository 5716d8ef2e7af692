"""The ``kubernetes`` block of a container, with its JSON tail encoded once.

Log records of one container share one block; encoding it per line would dominate the cost of
the NDJSON encoder, so the block is serialised here once (when the container's metadata is
built) and the encoder splices the bytes into every row.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import orjson


@dataclass(frozen=True, slots=True)
class ContainerMeta:
    """The metadata of one container (per pod uid + container name), spliced into every record.

    ``encoded`` is the JSON tail of a record, built once by ``encode_meta``:
    ``b',"kubernetes":{...}}\\n'`` (the record's closing brace and newline included, so the
    encoder splices it as a single fragment).
    """

    kubernetes: dict[str, Any]
    encoded: bytes

    @classmethod
    def build(cls, kubernetes: dict[str, Any]) -> ContainerMeta:
        """The metadata with its precomputed fragment."""
        return cls(kubernetes=kubernetes, encoded=encode_meta(kubernetes))


def encode_meta(kubernetes: dict[str, Any]) -> bytes:
    """The record tail for a ``kubernetes`` block: ``b',"kubernetes":{...}}\\n'``."""
    return b',"kubernetes":' + orjson.dumps(kubernetes, option=orjson.OPT_NON_STR_KEYS) + b"}\n"
