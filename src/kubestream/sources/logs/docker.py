"""Docker json-file lines: ``{"log":"...\\n","stream":"stdout","time":"..."}``.

The whole block is decoded by one ``orjson.loads`` of the lines joined into a JSON array; a ``log``
without a trailing newline is a part of a message the daemon split at 16 KiB (tag ``P``).
"""

from __future__ import annotations

import json
from typing import Any

import orjson

from kubestream.sources.logs.rows import STDOUT, STREAMS, Rows
from kubestream.sources.logs.utf8 import text_to_utf8


def parse_docker(lines: list[bytes], offsets: list[int], fallback_ts: bytes) -> Rows:
    """Rows of complete json-file lines; ``fallback_ts`` stamps malformed ones."""
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
    return _parse_slow(lines, offsets, fallback_ts)


def _columns(entries: list[Any], offsets: list[int]) -> Rows:
    logs: list[str] = [e["log"] for e in entries]
    streams = [e["stream"].encode() for e in entries]
    timestamps = [e["time"].encode("ascii") for e in entries]
    if not set(streams) <= STREAMS:
        raise KeyError("stream")
    tags = bytes(70 if m.endswith("\n") else 80 for m in logs)  # F / P
    # orjson refuses lone surrogates, so every decoded text encodes to UTF-8.
    messages = [(m[:-1] if m.endswith("\n") else m).encode() for m in logs]
    return Rows(timestamps, streams, tags, messages, offsets)


def _parse_slow(lines: list[bytes], offsets: list[int], fallback_ts: bytes) -> Rows:
    timestamps: list[bytes] = []
    streams: list[bytes] = []
    tags = bytearray()
    messages: list[bytes] = []
    malformed: set[int] = set()
    last_ts = fallback_ts
    for i, line in enumerate(lines):
        fields = _fields(_load(line))
        if fields is None:
            malformed.add(i)
            timestamps.append(last_ts)
            streams.append(STDOUT)
            tags += b"F"
            messages.append(line)
            continue
        log, stream, ts = fields
        last_ts = ts
        timestamps.append(ts)
        streams.append(stream)
        tags += b"F" if log.endswith("\n") else b"P"
        messages.append(text_to_utf8(log.removesuffix("\n"))[0])
    return Rows(timestamps, streams, bytes(tags), messages, offsets, malformed=malformed)


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
