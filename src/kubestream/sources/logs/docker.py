"""Docker json-file lines: ``{"log":"...\\n","stream":"stdout","time":"..."}``.

The whole block is decoded by one ``orjson.loads`` of the lines joined into a JSON array; a ``log``
without a trailing newline is a part of a message the daemon split at 16 KiB (tag ``P``). A
``time`` that is not valid RFC 3339 becomes ``b""`` (no timestamp); a line that is not a json-file
entry is kept whole as a malformed stdout message without timestamp.

A line cut at ``max_line_bytes`` is not valid JSON any more: ``recover_cut`` rebuilds its record
from the head that was kept (the start of ``log``) and the last bytes of the line (``stream`` and
``time`` come after ``log`` in every json-file line).
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from typing import Any

import orjson

from kubestream.sources.logs.cri import NO_TIMESTAMP
from kubestream.sources.logs.rows import STDOUT, STREAMS, Rows
from kubestream.sources.logs.utf8 import text_to_utf8
from kubestream.util.rfc3339 import invalid_rows, is_rfc3339

CUT_TAIL_BYTES = 512
"""How much of the end of a cut line the parser keeps for ``recover_cut``: enough for the
``stream``, ``attrs`` and ``time`` fields after ``log``."""

_LOG_HEAD = re.compile(rb'\{\s*"log"\s*:\s*"')
"""The start of a json-file line, up to the first byte of ``log``'s text."""
_LINE_TAIL = re.compile(
    rb'"\s*,\s*"stream"\s*:\s*"(stdout|stderr)"\s*,(?:.*,)?\s*"time"\s*:\s*"([^"\\]*)"\s*\}\s*\Z', re.DOTALL)
"""The end of a line: the stream and the time. Quotes inside ``log`` are escaped, so
``"stream":"`` with bare quotes is the field itself."""
_BACKSLASH = ord("\\")
_QUOTE = b'"'
_U_ESCAPE = len(b"\\u0000")


def parse_docker(lines: list[bytes], offsets: list[int]) -> Rows:
    """Rows of complete json-file lines."""
    if not lines:
        return Rows([], [], b"", [], offsets)
    try:
        entries = orjson.loads(b"[" + b",".join(lines) + b"]")
    except orjson.JSONDecodeError:
        entries = None
    if isinstance(entries, list) and len(entries) == len(lines):
        try:
            return _columns(entries, offsets)
        except (KeyError, TypeError, AttributeError, UnicodeEncodeError):
            pass
    return _parse_slow(lines, offsets)


def _columns(entries: list[Any], offsets: list[int]) -> Rows:
    logs: list[str] = [e["log"] for e in entries]
    streams = [e["stream"].encode() for e in entries]
    timestamps = [e["time"].encode("ascii") for e in entries]
    if not set(streams) <= STREAMS:
        raise KeyError("stream")
    for i in invalid_rows(timestamps):
        timestamps[i] = NO_TIMESTAMP
    tags = bytes(70 if m.endswith("\n") else 80 for m in logs)  # F / P
    # orjson refuses lone surrogates, so every decoded text encodes to UTF-8.
    messages = [(m[:-1] if m.endswith("\n") else m).encode() for m in logs]
    return Rows(timestamps, streams, tags, messages, offsets)


def _parse_slow(lines: list[bytes], offsets: list[int]) -> Rows:
    timestamps: list[bytes] = []
    streams: list[bytes] = []
    tags = bytearray()
    messages: list[bytes] = []
    malformed: set[int] = set()
    for i, line in enumerate(lines):
        fields = _fields(_load(line))
        if fields is None:
            malformed.add(i)
            timestamps.append(NO_TIMESTAMP)
            streams.append(STDOUT)
            tags += b"F"
            messages.append(line)
            continue
        log, stream, ts = fields
        timestamps.append(ts if is_rfc3339(ts) else NO_TIMESTAMP)
        streams.append(stream)
        tags += b"F" if log.endswith("\n") else b"P"
        messages.append(text_to_utf8(log.removesuffix("\n"))[0])
    return Rows(timestamps, streams, bytes(tags), messages, offsets, malformed=malformed)


def recover_cut(rows: Rows, lines: list[bytes], tails: Mapping[int, bytes]) -> None:
    """Rebuild in place the records of malformed rows that are json-file lines cut short.

    ``tails`` maps a cut row to the last bytes of its line as written (at most ``CUT_TAIL_BYTES``).
    The message is the decoded head of ``log``; the tag, stream and time come from the tail.
    """
    targets = sorted(i for i in rows.malformed if i in tails)
    if not targets:
        return
    timestamps, streams, messages = list(rows.timestamps), list(rows.streams), list(rows.messages)
    tags = bytearray(rows.tags)
    for i in targets:
        head = _LOG_HEAD.match(lines[i])
        tail = _LINE_TAIL.search(tails[i])
        if head is None or tail is None:
            continue
        text, ended = _log_text(lines[i][head.end():])
        if text is None:
            continue
        # The whole of ``log`` is in the head when its closing quote is: then its own newline tells F/P.
        newline = text.endswith("\n") if ended else _ends_with_newline_escape(tails[i][:tail.start()])
        messages[i] = text_to_utf8(text.removesuffix("\n") if ended else text)[0]
        streams[i] = tail.group(1)
        timestamps[i] = tail.group(2) if is_rfc3339(tail.group(2)) else NO_TIMESTAMP
        tags[i] = 70 if newline else 80  # F / P
        rows.malformed.discard(i)
    rows.timestamps, rows.streams, rows.messages, rows.tags = timestamps, streams, messages, bytes(tags)


def _log_text(escaped: bytes) -> tuple[str | None, bool]:
    """The decoded text of a JSON string body that may be cut anywhere; and if it was complete."""
    end = _closing_quote(escaped)
    if end == -1:
        # Cut inside the string: drop an escape sequence cut in two (a lone backslash, ``\\u12``).
        start = escaped.rfind(b"\\", max(0, len(escaped) - 6))
        if start != -1 and not _escaped_at(escaped, start) and (
                start == len(escaped) - 1 or (escaped[start + 1:start + 2] == b"u" and len(escaped) - start < _U_ESCAPE)):
            escaped = escaped[:start]
    else:
        escaped = escaped[:end]
    text = _load(_QUOTE + escaped + _QUOTE)
    return (text if isinstance(text, str) else None), end != -1


def _closing_quote(escaped: bytes) -> int:
    """The position of the first unescaped ``"`` in a JSON string body, -1 if there is none."""
    at = escaped.find(_QUOTE)
    while at != -1 and _escaped_at(escaped, at):
        at = escaped.find(_QUOTE, at + 1)
    return at


def _escaped_at(data: bytes, at: int) -> bool:
    """Whether the byte at ``at`` is escaped (an odd run of backslashes before it)."""
    run = 0
    while at - run - 1 >= 0 and data[at - run - 1] == _BACKSLASH:
        run += 1
    return run % 2 == 1


def _ends_with_newline_escape(escaped: bytes) -> bool:
    """Whether a JSON string body ends with the escape ``\\n`` (not an escaped backslash + n)."""
    return escaped.endswith(b"\\n") and not _escaped_at(escaped, len(escaped) - 2)


def is_docker_line(line: bytes) -> bool:
    """Whether one line (without its newline) is a json-file entry."""
    return _fields(_load(line)) is not None


def _fields(entry: Any) -> tuple[str, bytes, bytes] | None:
    """(log, stream, time) of a json-file entry, None if it is not one."""
    if not isinstance(entry, dict):
        return None
    log, stream, ts = entry.get("log"), entry.get("stream"), entry.get("time")
    if not (isinstance(log, str) and isinstance(stream, str) and isinstance(ts, str) and ts.isascii()):
        return None
    stream_b = stream.encode()
    return (log, stream_b, ts.encode("ascii")) if stream_b in STREAMS else None


def _load(line: bytes) -> Any:
    try:
        return orjson.loads(line)
    except orjson.JSONDecodeError:
        pass
    try:
        # The stdlib accepts lone surrogate escapes (\\ud800) that orjson refuses.
        return json.loads(line)
    except ValueError:
        return None
