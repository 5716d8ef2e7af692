"""The JSON string bodies (what goes between the quotes) of many UTF-8 messages at once.

Fast path, for a chunk whose messages hold no control characters: join them with ``\\n``, escape
backslashes and quotes with two ``bytes.replace`` calls, split on ``\\n`` (a split of the wrong
length means some message holds a newline). Valid UTF-8 needs no other escaping in JSON.
Otherwise one ``orjson.dumps`` of the list of texts and a split on ``","`` (exact unless some
message ends in an escaped quote followed by a separator, which the ``\\","`` check catches), or
one ``orjson.dumps`` per message. Profiled: the fast path costs about 300 ns a line, the list
``dumps`` path about 430 ns, one ``dumps`` per message over 1 µs (an allocation per call).
"""

from __future__ import annotations

import orjson

_CONTROL = bytes(range(0x0A)) + bytes(range(0x0B, 0x20))
"""Bytes JSON requires escaped, except ``\\n`` (the separator, checked by the split's length)."""
_LIST_SEPARATOR = b'","'
_AMBIGUOUS = b'\\","'


def json_string_bodies(messages: list[bytes]) -> list[bytes]:
    """``orjson.dumps(m.decode())[1:-1]`` for every (valid UTF-8) message, a chunk at a time."""
    if not messages:
        return []
    joined = b"\n".join(messages)
    if len(joined.translate(None, _CONTROL)) == len(joined):
        if b"\\" in joined:
            joined = joined.replace(b"\\", b"\\\\")
        if b'"' in joined:
            joined = joined.replace(b'"', b'\\"')
        bodies = joined.split(b"\n")
        if len(bodies) == len(messages):
            return bodies
    texts = [m.decode("utf-8") for m in messages]
    encoded = orjson.dumps(texts)
    if _AMBIGUOUS not in encoded:
        bodies = encoded[2:-2].split(_LIST_SEPARATOR)
        if len(bodies) == len(messages):
            return bodies
    return [orjson.dumps(t)[1:-1] for t in texts]
