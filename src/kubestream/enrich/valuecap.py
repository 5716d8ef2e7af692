"""The per-value size cap of label and annotation maps in the ``kubernetes`` block.

Applied when a block is built (once per event, once per container for logs), not when objects
are decoded: the logs source still reads the whole annotations it acts on (a multi-line pattern,
the container exclusions) from the cache.
"""

from __future__ import annotations

from collections.abc import Mapping


class ValueCap:
    """Cuts values longer than ``max_bytes`` UTF-8 bytes at a character boundary."""

    def __init__(self, max_bytes: int) -> None:
        self.max_bytes = max_bytes
        # A str of n characters encodes to at most 4n bytes: shorter ones never need encoding.
        self._always_fits = max_bytes // 4

    def apply(self, field: str, values: Mapping[str, str], truncated: list[str]) -> dict[str, str]:
        """A copy of ``values`` with long values cut; appends ``<field>.<key>`` of each cut one."""
        if not self.max_bytes:
            return dict(values)
        out: dict[str, str] = {}
        for key, value in values.items():
            if len(value) > self._always_fits:
                cut = self._cut(value)
                if cut is not None:
                    truncated.append(f"{field}.{key}")
                    value = cut
            out[key] = value
        return out

    def _cut(self, value: str) -> str | None:
        raw = value.encode()
        if len(raw) <= self.max_bytes:
            return None
        return raw[: self.max_bytes].decode(errors="ignore")
