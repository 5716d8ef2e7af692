"""Length-delimited protobuf: each record is a varint byte length followed by one message.

Two messages are offered (``encoding.protobuf_message``):

* ``kubestream`` (``kubestream.v1.Record``): the typed fields carry what the schema knows; the
  rest of the record (unknown keys, nulls, values of another type, empty maps/lists) goes into
  ``extra_json`` and is merged back on decode, so the conversion is lossless.
* ``k8stream`` (``kubestream.k8stream.L9Event``): last9/k8stream's event message, field for
  field; lossy by design (k8stream has no place for most of the enrichment).

The conversion is driven by the message descriptors, so adding a field to kubestream.proto and
regenerating is all it takes to carry it typed.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import orjson
from google.protobuf.descriptor import FieldDescriptor
from google.protobuf.message import DecodeError, Message

from kubestream.pipeline.encode.ndjson import dumps_line
from kubestream.pipeline.naming import sort_key_time
from kubestream.pipeline.proto import k8stream_pb2, kubestream_pb2

_EXTRA = "extra_json"
_INT64_MIN, _INT64_MAX = -(2**63), 2**63 - 1


# -- framing --------------------------------------------------------------------------------


def _varint(value: int) -> bytes:
    out = bytearray()
    while True:
        low = value & 0x7F
        value >>= 7
        if value:
            out.append(low | 0x80)
        else:
            out.append(low)
            return bytes(out)


def frame(messages: Iterable[bytes]) -> bytes:
    """Concatenate serialized messages, each preceded by its varint length."""
    return b"".join(_varint(len(m)) + m for m in messages)


def unframe(data: bytes) -> list[bytes]:
    """Split a length-delimited stream back into serialized messages."""
    messages: list[bytes] = []
    pos, end = 0, len(data)
    while pos < end:
        length, shift = 0, 0
        while True:
            if pos >= end or shift > 63:
                raise DecodeError("truncated or invalid length prefix")
            byte = data[pos]
            pos += 1
            length |= (byte & 0x7F) << shift
            shift += 7
            if not byte & 0x80:
                break
        if pos + length > end:
            raise DecodeError("truncated message")
        messages.append(data[pos : pos + length])
        pos += length
    return messages


# -- generic dict <-> message ---------------------------------------------------------------


def _is_map(field: FieldDescriptor) -> bool:
    return field.message_type is not None and bool(field.message_type.GetOptions().map_entry)


def _scalar_fits(field: FieldDescriptor, value: Any) -> bool:
    """Whether ``value`` survives a round trip through ``field`` with its Python type intact."""
    if field.type == FieldDescriptor.TYPE_STRING:
        return isinstance(value, str)
    if field.type == FieldDescriptor.TYPE_BOOL:
        return isinstance(value, bool)
    if field.type == FieldDescriptor.TYPE_INT64:
        return isinstance(value, int) and not isinstance(value, bool) and _INT64_MIN <= value <= _INT64_MAX
    return False


def _place_repeated(msg: Message, field: FieldDescriptor, value: Any) -> bool:
    # Empty lists stay in the residual: a repeated field cannot tell [] from absent.
    if not isinstance(value, list) or not value:
        return False
    container = getattr(msg, field.name)
    if field.message_type is None:
        if not all(_scalar_fits(field, item) for item in value):
            return False
        container.extend(value)
        return True
    if not all(isinstance(item, dict) for item in value):
        return False
    for item in value:
        if dict_to_message(item, container.add()):
            # Partial elements would need a per-index residual; keep the whole list instead.
            del container[:]
            return False
    return True


def _place(msg: Message, field: FieldDescriptor, value: Any, residual: dict[str, Any]) -> bool:
    """Put ``value`` into ``field`` of ``msg``; False if it must go to the residual whole."""
    if _is_map(field):
        if not isinstance(value, dict) or not value:
            return False
        if not all(isinstance(k, str) and isinstance(v, str) for k, v in value.items()):
            return False
        getattr(msg, field.name).update(value)
        return True
    if field.is_repeated:
        return _place_repeated(msg, field, value)
    if field.message_type is not None:
        if not isinstance(value, dict):
            return False
        sub = getattr(msg, field.name)
        sub.SetInParent()  # present even when every key ends up in the residual
        nested = dict_to_message(value, sub)
        if nested:
            residual[field.name] = nested
        return True
    if not _scalar_fits(field, value):
        return False
    try:
        setattr(msg, field.name, value)
    except (TypeError, ValueError):  # e.g. a string that is not valid UTF-8
        return False
    return True


def dict_to_message(data: dict[str, Any], msg: Message) -> dict[str, Any]:
    """Fill ``msg`` from ``data``; return what could not be placed (shaped like ``data``)."""
    fields = msg.DESCRIPTOR.fields_by_name
    residual: dict[str, Any] = {}
    for key, value in data.items():
        field = fields.get(key) if isinstance(key, str) else None
        if field is None or field.name == _EXTRA or not _place(msg, field, value, residual):
            residual[key] = value
    return residual


def message_to_dict(msg: Message) -> dict[str, Any]:
    """The set fields of ``msg`` as plain Python values (``extra_json`` not merged)."""
    out: dict[str, Any] = {}
    for field, value in msg.ListFields():
        if field.name == _EXTRA:
            continue
        if _is_map(field):
            out[field.name] = dict(value)
        elif field.is_repeated:
            out[field.name] = [message_to_dict(v) for v in value] if field.message_type else list(value)
        elif field.message_type is not None:
            out[field.name] = message_to_dict(value)
        else:
            out[field.name] = value
    return out


def _deep_merge(target: dict[str, Any], extra: dict[str, Any]) -> None:
    for key, value in extra.items():
        current = target.get(key)
        if isinstance(current, dict) and isinstance(value, dict):
            _deep_merge(current, value)
        else:
            target[key] = value


# -- the two formats ------------------------------------------------------------------------


class KubestreamProtobufFormat:
    """Records as ``kubestream.v1.Record`` messages; lossless."""

    extension = "pb"

    def serialize(self, items: Iterable[dict[str, Any]]) -> bytes:
        return frame(self._serialize_one(item) for item in items)

    @staticmethod
    def _serialize_one(item: dict[str, Any]) -> bytes:
        msg = kubestream_pb2.Record()
        residual = dict_to_message(item, msg)
        if residual:
            msg.extra_json = dumps_line(residual).decode().rstrip("\n")
        serialized: bytes = msg.SerializeToString()
        return serialized

    def parse(self, data: bytes) -> list[dict[str, Any]]:
        records = []
        for raw in unframe(data):
            msg = kubestream_pb2.Record.FromString(raw)
            record = message_to_dict(msg)
            if msg.HasField(_EXTRA):
                _deep_merge(record, orjson.loads(msg.extra_json))
            records.append(record)
        return records


def _text(value: Any) -> str:
    if value is None:
        return ""
    return value if isinstance(value, str) else str(value)


def _section(data: dict[str, Any], name: str) -> dict[str, Any]:
    value = data.get(name)
    return value if isinstance(value, dict) else {}


def _string_map(value: Any) -> dict[str, str]:
    if not isinstance(value, dict):
        return {}
    return {str(k): _text(v) for k, v in value.items()}


def to_l9event(data: dict[str, Any]) -> k8stream_pb2.L9Event:
    """Map a kubestream record onto k8stream's ``L9Event`` the way k8stream fills it."""
    event, involved, kube = _section(data, "event"), _section(data, "involved"), _section(data, "kubernetes")
    when = sort_key_time(data.get("timestamp"))
    node_ip = kube.get("node_ip")
    return k8stream_pb2.L9Event(
        ID=_text(event.get("uid")),
        Timestamp=int(when.timestamp()) if when else 0,
        Component=_text(event.get("source_component") or event.get("reporting_controller")),
        Host=_text(event.get("source_host") or event.get("reporting_instance") or kube.get("node_name")),
        Message=_text(event.get("message") or data.get("message")),
        Namespace=_text(event.get("namespace") or kube.get("namespace")),
        Reason=_text(event.get("reason")),
        ReferenceUID=_text(involved.get("uid")),
        ReferenceNamespace=_text(involved.get("namespace")),
        ReferenceName=_text(involved.get("name")),
        ReferenceKind=_text(involved.get("kind")),
        ReferenceVersion=_text(involved.get("api_version")),
        ObjectUid=_text(involved.get("uid") or kube.get("object_uid")),
        Labels=_string_map(kube.get("labels")),
        Annotations=_string_map(kube.get("annotations")),
        Address=[node_ip] if isinstance(node_ip, str) and node_ip else [],
    )


class K8streamProtobufFormat:
    """Records as k8stream ``L9Event`` messages (lossy; for k8stream consumers)."""

    extension = "pb"

    def serialize(self, items: Iterable[dict[str, Any]]) -> bytes:
        return frame(to_l9event(item).SerializeToString() for item in items)

    def parse(self, data: bytes) -> list[dict[str, Any]]:
        """The non-default fields of each ``L9Event`` (k8stream's field names)."""
        return [message_to_dict(k8stream_pb2.L9Event.FromString(raw)) for raw in unframe(data)]
