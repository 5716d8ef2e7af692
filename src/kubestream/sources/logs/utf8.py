"""Keeping messages as bytes that are guaranteed UTF-8, a whole block at a time.

Messages stay ``bytes`` end to end: the NDJSON encoder splices them after escaping, Parquet hands
them to Arrow, so valid lines cost no decode/encode round trip. Checking a block is one ``join``
and one ``isascii`` (or one ``decode`` for non-ASCII text). Only a block that holds invalid bytes
goes message by message: those are replaced with U+FFFD and, in lossless mode, their original
bytes are kept for ``message_base64``.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

_CONTINUATION_MASK = 0xC0
_CONTINUATION = 0x80
_MAX_SEQUENCE = 4


@dataclass(slots=True)
class Checked:
    """Messages that are valid UTF-8; rows that were not and (lossless) their original bytes."""

    messages: list[bytes]
    invalid_rows: list[int] = field(default_factory=list)
    raw: dict[int, bytes] = field(default_factory=dict)


def ensure_utf8(messages: Sequence[bytes], *, lossless: bool) -> Checked:
    """The messages with invalid UTF-8 replaced by U+FFFD (the input list when all are valid)."""
    out = list(messages)
    joined = b"\n".join(out)
    if joined.isascii():
        return Checked(out)
    try:
        joined.decode("utf-8")
        return Checked(out)
    except UnicodeDecodeError:
        pass
    checked = Checked(out)
    for i, m in enumerate(out):
        try:
            m.decode("utf-8")
        except UnicodeDecodeError:
            out[i] = m.decode("utf-8", "replace").encode("utf-8")
            checked.invalid_rows.append(i)
            if lossless:
                checked.raw[i] = m
    return checked


def text_to_utf8(text: str) -> tuple[bytes, bool]:
    """UTF-8 bytes of ``text`` (lone surrogates from JSON escapes → U+FFFD), and if it changed."""
    try:
        return text.encode("utf-8"), False
    except UnicodeEncodeError:
        return text.encode("utf-16", "surrogatepass").decode("utf-16", "replace").encode("utf-8"), True


def cut_utf8(data: bytes, limit: int) -> bytes:
    """``data`` cut to at most ``limit`` bytes without splitting a UTF-8 sequence at the cut."""
    if len(data) <= limit:
        return data
    cut = limit
    # Step back over continuation bytes (at most 3) so a multi-byte character is not torn in two.
    for _ in range(_MAX_SEQUENCE - 1):
        if cut == 0 or data[cut] & _CONTINUATION_MASK != _CONTINUATION:
            break
        cut -= 1
    if data[cut] & _CONTINUATION_MASK == _CONTINUATION:
        cut = limit  # not UTF-8 around here anyway: cut where asked
    return data[:cut]
