"""Log messages that are a JSON object, as a nested ``parsed`` field (``logs.parse_json``).

Like Fluent Bit's ``Merge_Log`` and Vector's ``parse_json``: a message whose text is one JSON
object is decoded (orjson) and written again compactly as the record's ``parsed`` field (NDJSON:
a nested object; Parquet: a JSON column). Anything else stays text only, with a counted result:

* ``too_large``: the message is over ``max_bytes`` (not even looked at);
* ``invalid``: not JSON (plain text, ``NaN``/``Infinity``, a number beyond the double range, an
  escaped lone surrogate such as ``"\\ud800"``, trailing garbage);
* ``not_object``: JSON, but an array, string, number, ``true``/``false``/``null``;
* ``too_deep``: an object nested deeper than ``max_depth`` (``{}`` is depth 1);
* ``parsed``: the rest.

Defined behaviour of the decoding (orjson's, pinned by tests): a key given twice keeps its last
value (at the position of its first occurrence); integers beyond the 64-bit range (below
-2^63 or above 2^64-1) become the nearest double; ``\\u0000`` and other escapes decode to their
characters; surrounding whitespace is ignored. What is written is ``orjson.dumps`` of the
decoded object: compact, one line, valid UTF-8 (a multi-line record's newlines are gone).

Per line only when enabled for the container: the source calls ``parse_messages`` for the chunks
of containers whose rule is set, and a chunk without a rule costs one ``is None`` test per chunk
in each encoder.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass
from itertools import compress, repeat
from typing import Any

import orjson

from kubestream.config.settings import LogJsonSettings

RESULTS = ("parsed", "invalid", "not_object", "too_large", "too_deep")
"""The ``result`` label values of ``kubestream_log_json_parse_total``."""
_OPENERS = (b"{", b"[")
_CONTAINER_NAME = re.compile(r"[a-z0-9]([-a-z0-9]*[a-z0-9])?")


@dataclass(frozen=True, slots=True)
class JsonRule:
    """How one container's JSON messages are parsed (None on a container: not at all)."""

    keep_message: bool = True
    max_bytes: int = 64 * 1024
    max_depth: int = 32

    @classmethod
    def of(cls, settings: LogJsonSettings) -> JsonRule:
        return cls(keep_message=settings.keep_message, max_bytes=settings.max_bytes, max_depth=settings.max_depth)


@dataclass(slots=True)
class ParsedFields:
    """``values[i]`` is the compact JSON of message ``i``'s object, or None (left as text)."""

    values: list[bytes | None]
    results: Counter[str]
    size: int
    """Bytes of the parsed values (for the batch size estimate)."""


_MAY_START_JSON = tuple(bytes((c,)) for c in b'{["-0123456789tfn \t\r\n\x0b\x0c')
"""A JSON text starts with one of these (or whitespace); a message that does not is ``invalid``."""


def parse_messages(messages: list[bytes], rule: JsonRule) -> ParsedFields:
    """The ``parsed`` values of a chunk's (valid UTF-8) messages, and how many got each result.

    Messages that cannot start a JSON text (most text lines: ``INFO ...``, ``GET /``) are found by
    one C-level ``map(bytes.startswith, ...)`` and counted ``invalid`` without a Python step each;
    only the others are looked at one by one."""
    count = len(messages)
    values: list[bytes | None] = [None] * count
    results: Counter[str] = Counter()
    max_bytes, max_depth = rule.max_bytes, rule.max_depth
    if max(map(len, messages), default=0) > max_bytes:
        rows: Iterable[int] = range(count)  # "too_large" is decided first: look at every row
    else:
        rows = list(compress(range(count), map(bytes.startswith, messages, repeat(_MAY_START_JSON))))
        if count - len(rows):
            results["invalid"] = count - len(rows)
    size = 0
    for row in rows:
        value, result = _parse_one(messages[row], max_bytes, max_depth)
        results[result] += 1
        if value is not None:
            values[row] = value
            size += len(value)
    return ParsedFields(values, results, size)


_SCALARS = frozenset((b"true", b"false", b"null"))
_NUMBER = re.compile(rb"-?(0|[1-9][0-9]*)(\.[0-9]+)?([eE][-+]?[0-9]+)?")
_CLOSER = {ord("{"): b"}", ord("["): b"]", ord('"'): b'"'}
_NUMBER_START = frozenset(b"-0123456789")


def _plausible(message: bytes) -> str | None:
    """None when the message may be one JSON value (orjson decides), else its result without
    decoding: most log lines are text, and a failed decode costs an exception per line.

    ``bytes.strip`` removes all JSON whitespace (and more), so a value the stripped text cannot
    start and end with rules out valid JSON for the original too."""
    stripped = message.strip()
    if not stripped:
        return "invalid"
    first = stripped[0]
    closer = _CLOSER.get(first)
    if closer is not None:
        return None if len(stripped) > 1 and stripped.endswith(closer) else "invalid"
    if first in _NUMBER_START:
        return None if _NUMBER.fullmatch(stripped) else "invalid"  # 1e400: orjson says invalid
    return "not_object" if stripped in _SCALARS else "invalid"


def _parse_one(message: bytes, max_bytes: int, max_depth: int) -> tuple[bytes | None, str]:
    if len(message) > max_bytes:
        return None, "too_large"
    verdict = _plausible(message)
    if verdict is not None:
        return None, verdict
    try:
        value = orjson.loads(message)
    except orjson.JSONDecodeError as exc:
        # orjson refuses nesting deeper than 1024 itself; that is a depth result, not a syntax one.
        return None, "too_deep" if "depth limit" in str(exc) else "invalid"
    if not isinstance(value, dict):
        return None, "not_object"
    # Depth can only exceed the cap if the text holds that many brackets at all (one C scan each).
    if message.count(_OPENERS[0]) + message.count(_OPENERS[1]) > max_depth and _deeper_than(value, max_depth):
        return None, "too_deep"
    return orjson.dumps(value), "parsed"


def _deeper_than(value: Any, limit: int) -> bool:
    """Whether ``value`` nests objects/arrays more than ``limit`` levels (``{}``: 1)."""
    stack: list[tuple[Any, int]] = [(value, 1)]
    while stack:
        item, depth = stack.pop()
        if depth > limit:
            return True
        children = item.values() if isinstance(item, dict) else item
        stack.extend((child, depth + 1) for child in children if isinstance(child, dict | list))
    return False


def annotation_choice(value: str | None, container: str) -> bool | None:
    """The pod annotation's say for ``container``: ``"true"``/``"false"`` for every container,
    or ``"<container>=true;<container>=false"``; None when it says nothing about it (unset, an
    unknown word, a container not listed: the namespace and global settings decide)."""
    if not value:
        return None
    word = value.strip().lower()
    if word in ("true", "false"):
        return word == "true"
    for entry in value.split(";"):
        name, sep, choice = entry.partition("=")
        if sep and _CONTAINER_NAME.fullmatch(name.strip()) and name.strip() == container:
            said = choice.strip().lower()
            return said == "true" if said in ("true", "false") else None
    return None


def rule_for(settings: LogJsonSettings, namespace: str, annotation: str | None, container: str) -> JsonRule | None:
    """The container's rule: the pod annotation, else ``namespaces[namespace]``, else ``enabled``."""
    choice = annotation_choice(annotation, container)
    if choice is None:
        choice = settings.namespaces.get(namespace, settings.enabled)
    return JsonRule.of(settings) if choice else None
