from google.protobuf.internal import containers as _containers
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class L9Event(_message.Message):
    __slots__ = ("ID", "Timestamp", "Component", "Host", "Message", "Namespace", "Reason", "ReferenceUID", "ReferenceNamespace", "ReferenceName", "ReferenceKind", "ReferenceVersion", "ObjectUid", "Labels", "Annotations", "Address")
    class LabelsEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: str
        def __init__(self, key: _Optional[str] = ..., value: _Optional[str] = ...) -> None: ...
    class AnnotationsEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: str
        def __init__(self, key: _Optional[str] = ..., value: _Optional[str] = ...) -> None: ...
    ID_FIELD_NUMBER: _ClassVar[int]
    TIMESTAMP_FIELD_NUMBER: _ClassVar[int]
    COMPONENT_FIELD_NUMBER: _ClassVar[int]
    HOST_FIELD_NUMBER: _ClassVar[int]
    MESSAGE_FIELD_NUMBER: _ClassVar[int]
    NAMESPACE_FIELD_NUMBER: _ClassVar[int]
    REASON_FIELD_NUMBER: _ClassVar[int]
    REFERENCEUID_FIELD_NUMBER: _ClassVar[int]
    REFERENCENAMESPACE_FIELD_NUMBER: _ClassVar[int]
    REFERENCENAME_FIELD_NUMBER: _ClassVar[int]
    REFERENCEKIND_FIELD_NUMBER: _ClassVar[int]
    REFERENCEVERSION_FIELD_NUMBER: _ClassVar[int]
    OBJECTUID_FIELD_NUMBER: _ClassVar[int]
    LABELS_FIELD_NUMBER: _ClassVar[int]
    ANNOTATIONS_FIELD_NUMBER: _ClassVar[int]
    ADDRESS_FIELD_NUMBER: _ClassVar[int]
    ID: str
    Timestamp: int
    Component: str
    Host: str
    Message: str
    Namespace: str
    Reason: str
    ReferenceUID: str
    ReferenceNamespace: str
    ReferenceName: str
    ReferenceKind: str
    ReferenceVersion: str
    ObjectUid: str
    Labels: _containers.ScalarMap[str, str]
    Annotations: _containers.ScalarMap[str, str]
    Address: _containers.RepeatedScalarFieldContainer[str]
    def __init__(self, ID: _Optional[str] = ..., Timestamp: _Optional[int] = ..., Component: _Optional[str] = ..., Host: _Optional[str] = ..., Message: _Optional[str] = ..., Namespace: _Optional[str] = ..., Reason: _Optional[str] = ..., ReferenceUID: _Optional[str] = ..., ReferenceNamespace: _Optional[str] = ..., ReferenceName: _Optional[str] = ..., ReferenceKind: _Optional[str] = ..., ReferenceVersion: _Optional[str] = ..., ObjectUid: _Optional[str] = ..., Labels: _Optional[_Mapping[str, str]] = ..., Annotations: _Optional[_Mapping[str, str]] = ..., Address: _Optional[_Iterable[str]] = ...) -> None: ...

class L9EventBatch(_message.Message):
    __slots__ = ("events",)
    EVENTS_FIELD_NUMBER: _ClassVar[int]
    events: _containers.RepeatedCompositeFieldContainer[L9Event]
    def __init__(self, events: _Optional[_Iterable[_Union[L9Event, _Mapping]]] = ...) -> None: ...
