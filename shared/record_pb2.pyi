from google.protobuf.internal import containers as _containers
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from typing import ClassVar as _ClassVar, Iterable as _Iterable, Mapping as _Mapping, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class Label(_message.Message):
    __slots__ = ("key", "value")
    KEY_FIELD_NUMBER: _ClassVar[int]
    VALUE_FIELD_NUMBER: _ClassVar[int]
    key: str
    value: str
    def __init__(self, key: _Optional[str] = ..., value: _Optional[str] = ...) -> None: ...

class IngestRecord(_message.Message):
    __slots__ = ("id", "service", "type", "labels", "created_at_unix", "received_at_unix", "body", "signature", "totals")
    ID_FIELD_NUMBER: _ClassVar[int]
    SERVICE_FIELD_NUMBER: _ClassVar[int]
    TYPE_FIELD_NUMBER: _ClassVar[int]
    LABELS_FIELD_NUMBER: _ClassVar[int]
    CREATED_AT_UNIX_FIELD_NUMBER: _ClassVar[int]
    RECEIVED_AT_UNIX_FIELD_NUMBER: _ClassVar[int]
    BODY_FIELD_NUMBER: _ClassVar[int]
    SIGNATURE_FIELD_NUMBER: _ClassVar[int]
    TOTALS_FIELD_NUMBER: _ClassVar[int]
    id: str
    service: str
    type: str
    labels: _containers.RepeatedCompositeFieldContainer[Label]
    created_at_unix: int
    received_at_unix: int
    body: bytes
    signature: str
    totals: _containers.RepeatedScalarFieldContainer[int]
    def __init__(self, id: _Optional[str] = ..., service: _Optional[str] = ..., type: _Optional[str] = ..., labels: _Optional[_Iterable[_Union[Label, _Mapping]]] = ..., created_at_unix: _Optional[int] = ..., received_at_unix: _Optional[int] = ..., body: _Optional[bytes] = ..., signature: _Optional[str] = ..., totals: _Optional[_Iterable[int]] = ...) -> None: ...
