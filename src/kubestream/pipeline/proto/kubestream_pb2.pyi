from google.protobuf.internal import containers as _containers
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class Record(_message.Message):
    __slots__ = ("kind", "timestamp", "event", "involved", "kubernetes", "message", "stream", "related", "cluster", "extra_json")
    KIND_FIELD_NUMBER: _ClassVar[int]
    TIMESTAMP_FIELD_NUMBER: _ClassVar[int]
    EVENT_FIELD_NUMBER: _ClassVar[int]
    INVOLVED_FIELD_NUMBER: _ClassVar[int]
    KUBERNETES_FIELD_NUMBER: _ClassVar[int]
    MESSAGE_FIELD_NUMBER: _ClassVar[int]
    STREAM_FIELD_NUMBER: _ClassVar[int]
    RELATED_FIELD_NUMBER: _ClassVar[int]
    CLUSTER_FIELD_NUMBER: _ClassVar[int]
    EXTRA_JSON_FIELD_NUMBER: _ClassVar[int]
    kind: str
    timestamp: str
    event: Event
    involved: InvolvedObject
    kubernetes: Kubernetes
    message: str
    stream: str
    related: InvolvedObject
    cluster: str
    extra_json: str
    def __init__(self, kind: _Optional[str] = ..., timestamp: _Optional[str] = ..., event: _Optional[_Union[Event, _Mapping]] = ..., involved: _Optional[_Union[InvolvedObject, _Mapping]] = ..., kubernetes: _Optional[_Union[Kubernetes, _Mapping]] = ..., message: _Optional[str] = ..., stream: _Optional[str] = ..., related: _Optional[_Union[InvolvedObject, _Mapping]] = ..., cluster: _Optional[str] = ..., extra_json: _Optional[str] = ...) -> None: ...

class Event(_message.Message):
    __slots__ = ("uid", "name", "namespace", "resource_version", "reason", "message", "type", "action", "count", "count_delta", "first_timestamp", "last_timestamp", "event_time", "series_count", "reporting_controller", "reporting_instance", "source_component", "source_host", "api")
    UID_FIELD_NUMBER: _ClassVar[int]
    NAME_FIELD_NUMBER: _ClassVar[int]
    NAMESPACE_FIELD_NUMBER: _ClassVar[int]
    RESOURCE_VERSION_FIELD_NUMBER: _ClassVar[int]
    REASON_FIELD_NUMBER: _ClassVar[int]
    MESSAGE_FIELD_NUMBER: _ClassVar[int]
    TYPE_FIELD_NUMBER: _ClassVar[int]
    ACTION_FIELD_NUMBER: _ClassVar[int]
    COUNT_FIELD_NUMBER: _ClassVar[int]
    COUNT_DELTA_FIELD_NUMBER: _ClassVar[int]
    FIRST_TIMESTAMP_FIELD_NUMBER: _ClassVar[int]
    LAST_TIMESTAMP_FIELD_NUMBER: _ClassVar[int]
    EVENT_TIME_FIELD_NUMBER: _ClassVar[int]
    SERIES_COUNT_FIELD_NUMBER: _ClassVar[int]
    REPORTING_CONTROLLER_FIELD_NUMBER: _ClassVar[int]
    REPORTING_INSTANCE_FIELD_NUMBER: _ClassVar[int]
    SOURCE_COMPONENT_FIELD_NUMBER: _ClassVar[int]
    SOURCE_HOST_FIELD_NUMBER: _ClassVar[int]
    API_FIELD_NUMBER: _ClassVar[int]
    uid: str
    name: str
    namespace: str
    resource_version: int
    reason: str
    message: str
    type: str
    action: str
    count: int
    count_delta: int
    first_timestamp: str
    last_timestamp: str
    event_time: str
    series_count: int
    reporting_controller: str
    reporting_instance: str
    source_component: str
    source_host: str
    api: str
    def __init__(self, uid: _Optional[str] = ..., name: _Optional[str] = ..., namespace: _Optional[str] = ..., resource_version: _Optional[int] = ..., reason: _Optional[str] = ..., message: _Optional[str] = ..., type: _Optional[str] = ..., action: _Optional[str] = ..., count: _Optional[int] = ..., count_delta: _Optional[int] = ..., first_timestamp: _Optional[str] = ..., last_timestamp: _Optional[str] = ..., event_time: _Optional[str] = ..., series_count: _Optional[int] = ..., reporting_controller: _Optional[str] = ..., reporting_instance: _Optional[str] = ..., source_component: _Optional[str] = ..., source_host: _Optional[str] = ..., api: _Optional[str] = ...) -> None: ...

class InvolvedObject(_message.Message):
    __slots__ = ("kind", "name", "namespace", "uid", "api_version", "field_path", "resource_version")
    KIND_FIELD_NUMBER: _ClassVar[int]
    NAME_FIELD_NUMBER: _ClassVar[int]
    NAMESPACE_FIELD_NUMBER: _ClassVar[int]
    UID_FIELD_NUMBER: _ClassVar[int]
    API_VERSION_FIELD_NUMBER: _ClassVar[int]
    FIELD_PATH_FIELD_NUMBER: _ClassVar[int]
    RESOURCE_VERSION_FIELD_NUMBER: _ClassVar[int]
    kind: str
    name: str
    namespace: str
    uid: str
    api_version: str
    field_path: str
    resource_version: str
    def __init__(self, kind: _Optional[str] = ..., name: _Optional[str] = ..., namespace: _Optional[str] = ..., uid: _Optional[str] = ..., api_version: _Optional[str] = ..., field_path: _Optional[str] = ..., resource_version: _Optional[str] = ...) -> None: ...

class Owner(_message.Message):
    __slots__ = ("kind", "name", "uid", "api_version", "controller")
    KIND_FIELD_NUMBER: _ClassVar[int]
    NAME_FIELD_NUMBER: _ClassVar[int]
    UID_FIELD_NUMBER: _ClassVar[int]
    API_VERSION_FIELD_NUMBER: _ClassVar[int]
    CONTROLLER_FIELD_NUMBER: _ClassVar[int]
    kind: str
    name: str
    uid: str
    api_version: str
    controller: bool
    def __init__(self, kind: _Optional[str] = ..., name: _Optional[str] = ..., uid: _Optional[str] = ..., api_version: _Optional[str] = ..., controller: _Optional[bool] = ...) -> None: ...

class Kubernetes(_message.Message):
    __slots__ = ("namespace", "namespace_labels", "object_kind", "object_name", "object_uid", "labels", "annotations", "pod_name", "pod_uid", "pod_ip", "container_name", "container_image", "container_id", "owner_kind", "owner_name", "owner_uid", "owners", "node_name", "node_ip", "node_labels", "services", "object_deleted", "enrichment")
    class NamespaceLabelsEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: str
        def __init__(self, key: _Optional[str] = ..., value: _Optional[str] = ...) -> None: ...
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
    class NodeLabelsEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: str
        def __init__(self, key: _Optional[str] = ..., value: _Optional[str] = ...) -> None: ...
    NAMESPACE_FIELD_NUMBER: _ClassVar[int]
    NAMESPACE_LABELS_FIELD_NUMBER: _ClassVar[int]
    OBJECT_KIND_FIELD_NUMBER: _ClassVar[int]
    OBJECT_NAME_FIELD_NUMBER: _ClassVar[int]
    OBJECT_UID_FIELD_NUMBER: _ClassVar[int]
    LABELS_FIELD_NUMBER: _ClassVar[int]
    ANNOTATIONS_FIELD_NUMBER: _ClassVar[int]
    POD_NAME_FIELD_NUMBER: _ClassVar[int]
    POD_UID_FIELD_NUMBER: _ClassVar[int]
    POD_IP_FIELD_NUMBER: _ClassVar[int]
    CONTAINER_NAME_FIELD_NUMBER: _ClassVar[int]
    CONTAINER_IMAGE_FIELD_NUMBER: _ClassVar[int]
    CONTAINER_ID_FIELD_NUMBER: _ClassVar[int]
    OWNER_KIND_FIELD_NUMBER: _ClassVar[int]
    OWNER_NAME_FIELD_NUMBER: _ClassVar[int]
    OWNER_UID_FIELD_NUMBER: _ClassVar[int]
    OWNERS_FIELD_NUMBER: _ClassVar[int]
    NODE_NAME_FIELD_NUMBER: _ClassVar[int]
    NODE_IP_FIELD_NUMBER: _ClassVar[int]
    NODE_LABELS_FIELD_NUMBER: _ClassVar[int]
    SERVICES_FIELD_NUMBER: _ClassVar[int]
    OBJECT_DELETED_FIELD_NUMBER: _ClassVar[int]
    ENRICHMENT_FIELD_NUMBER: _ClassVar[int]
    namespace: str
    namespace_labels: _containers.ScalarMap[str, str]
    object_kind: str
    object_name: str
    object_uid: str
    labels: _containers.ScalarMap[str, str]
    annotations: _containers.ScalarMap[str, str]
    pod_name: str
    pod_uid: str
    pod_ip: str
    container_name: str
    container_image: str
    container_id: str
    owner_kind: str
    owner_name: str
    owner_uid: str
    owners: _containers.RepeatedCompositeFieldContainer[Owner]
    node_name: str
    node_ip: str
    node_labels: _containers.ScalarMap[str, str]
    services: _containers.RepeatedScalarFieldContainer[str]
    object_deleted: bool
    enrichment: str
    def __init__(self, namespace: _Optional[str] = ..., namespace_labels: _Optional[_Mapping[str, str]] = ..., object_kind: _Optional[str] = ..., object_name: _Optional[str] = ..., object_uid: _Optional[str] = ..., labels: _Optional[_Mapping[str, str]] = ..., annotations: _Optional[_Mapping[str, str]] = ..., pod_name: _Optional[str] = ..., pod_uid: _Optional[str] = ..., pod_ip: _Optional[str] = ..., container_name: _Optional[str] = ..., container_image: _Optional[str] = ..., container_id: _Optional[str] = ..., owner_kind: _Optional[str] = ..., owner_name: _Optional[str] = ..., owner_uid: _Optional[str] = ..., owners: _Optional[_Iterable[_Union[Owner, _Mapping]]] = ..., node_name: _Optional[str] = ..., node_ip: _Optional[str] = ..., node_labels: _Optional[_Mapping[str, str]] = ..., services: _Optional[_Iterable[str]] = ..., object_deleted: _Optional[bool] = ..., enrichment: _Optional[str] = ...) -> None: ...
