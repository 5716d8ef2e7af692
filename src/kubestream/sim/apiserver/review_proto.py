"""Decoding the two protobuf request bodies kubectl sends for ``auth can-i`` and ``auth whoami``.

kubectl's clientset sends built-in kinds as ``application/vnd.kubernetes.protobuf``: the magic
``k8s\\x00`` then a ``runtime.Unknown`` (apimachinery ``runtime/generated.proto``: typeMeta = 1,
raw = 2, contentEncoding = 3, contentType = 4) whose ``raw`` is the message. Of the review
messages only the access attributes matter (k8s.io/api ``authorization/v1/generated.proto``:
SelfSubjectAccessReview spec = 2; SelfSubjectAccessReviewSpec resourceAttributes = 1,
nonResourceAttributes = 2; ResourceAttributes namespace = 1, verb = 2, group = 3, version = 4,
resource = 5, subresource = 6, name = 7; NonResourceAttributes path = 1, verb = 2), so this is a
wire-format reader for them, not a general protobuf decoder.
"""

from __future__ import annotations

from typing import Any

MAGIC = b"k8s\x00"
PROTOBUF = "application/vnd.kubernetes.protobuf"
_RESOURCE_FIELDS = {1: "namespace", 2: "verb", 3: "group", 4: "version", 5: "resource", 6: "subresource",
                    7: "name"}
_NON_RESOURCE_FIELDS = {1: "path", 2: "verb"}


def _varint(data: bytes, pos: int) -> tuple[int, int]:
    value = shift = 0
    while True:
        if pos >= len(data):
            raise ValueError("truncated varint")
        byte = data[pos]
        pos += 1
        value |= (byte & 0x7F) << shift
        if not byte & 0x80:
            return value, pos
        shift += 7


def fields(data: bytes) -> dict[int, bytes]:
    """Length-delimited fields of one message (the last occurrence wins; varints are skipped)."""
    out: dict[int, bytes] = {}
    pos = 0
    while pos < len(data):
        key, pos = _varint(data, pos)
        number, wire = key >> 3, key & 7
        if wire == 0:
            _, pos = _varint(data, pos)
        elif wire == 2:
            size, pos = _varint(data, pos)
            out[number] = data[pos:pos + size]
            pos += size
        elif wire == 1:
            pos += 8
        elif wire == 5:
            pos += 4
        else:
            raise ValueError(f"unsupported wire type {wire}")
    return out


def _strings(data: bytes, names: dict[int, str]) -> dict[str, str]:
    return {names[n]: v.decode() for n, v in fields(data).items() if n in names and v}


def decode_review(body: bytes) -> dict[str, Any]:
    """The review's JSON form as far as the simulator reads it (its ``spec`` attributes)."""
    if not body.startswith(MAGIC):
        raise ValueError("missing the k8s protobuf magic")
    raw = fields(body[len(MAGIC):]).get(2, b"")
    spec_raw = fields(raw).get(2)
    if spec_raw is None:
        return {"spec": {}}
    spec_fields = fields(spec_raw)
    spec: dict[str, Any] = {}
    if 1 in spec_fields:
        spec["resourceAttributes"] = _strings(spec_fields[1], _RESOURCE_FIELDS)
    if 2 in spec_fields:
        spec["nonResourceAttributes"] = _strings(spec_fields[2], _NON_RESOURCE_FIELDS)
    return {"spec": spec}
