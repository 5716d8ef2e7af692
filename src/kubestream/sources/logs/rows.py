"""Physical lines of one region of a file, as parallel columns.

A ``Rows`` is what the format parsers (``cri``, ``docker``) produce from the complete lines of a
region: one entry per physical line, no per-line objects beyond the column entries themselves.
``tags`` and ``stream_codes`` are byte strings (one byte per row) so that finding partial lines and
the next line of the same stream are C-level ``bytes.find`` calls.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

STDOUT = b"stdout"
STDERR = b"stderr"
STREAMS = frozenset((STDOUT, STDERR))
PARTIAL = ord("P")
FULL = ord("F")
STREAM_CODE_INDEX = 3
"""``b"stdout"[3]`` is ``o``, ``b"stderr"[3]`` is ``e``: one byte names the stream."""


@dataclass(slots=True)
class Rows:
    """Physical lines: timestamp, stream, P/F tag, message (UTF-8 not checked yet), file offset."""

    timestamps: Sequence[bytes]
    streams: Sequence[bytes]
    tags: bytes
    """One byte per row: ``P`` (a part to merge with the next one of its stream) or ``F``."""
    messages: Sequence[bytes]
    offsets: list[int]
    """``offsets[i]`` is the file offset of row ``i``; ``offsets[len]`` is the end of the last row."""
    malformed: set[int] = field(default_factory=set)
    truncated: set[int] = field(default_factory=set)

    @property
    def count(self) -> int:
        """The number of rows."""
        return len(self.messages)

    @property
    def stream_codes(self) -> bytes:
        """One byte per row naming its stream (``o`` stdout, ``e`` stderr)."""
        # Every stream is exactly b"stdout" or b"stderr" (6 bytes), so a strided slice of the
        # concatenation picks byte 3 of each: one C-level pass.
        return b"".join(self.streams)[STREAM_CODE_INDEX::len(STDOUT)]

    def message_size(self, row: int) -> int:
        """The size of a row's message in bytes."""
        return len(self.messages[row])
