from google.protobuf.internal import containers as _containers
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from typing import ClassVar as _ClassVar, Iterable as _Iterable, Mapping as _Mapping, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class ProfileColumns(_message.Message):
    __slots__ = ("sample", "mapping", "location", "function")
    SAMPLE_FIELD_NUMBER: _ClassVar[int]
    MAPPING_FIELD_NUMBER: _ClassVar[int]
    LOCATION_FIELD_NUMBER: _ClassVar[int]
    FUNCTION_FIELD_NUMBER: _ClassVar[int]
    sample: SampleColumns
    mapping: MappingColumns
    location: LocationColumns
    function: FunctionColumns
    def __init__(self, sample: _Optional[_Union[SampleColumns, _Mapping]] = ..., mapping: _Optional[_Union[MappingColumns, _Mapping]] = ..., location: _Optional[_Union[LocationColumns, _Mapping]] = ..., function: _Optional[_Union[FunctionColumns, _Mapping]] = ...) -> None: ...

class SampleColumns(_message.Message):
    __slots__ = ("location_id", "label")
    LOCATION_ID_FIELD_NUMBER: _ClassVar[int]
    LABEL_FIELD_NUMBER: _ClassVar[int]
    location_id: _containers.RepeatedScalarFieldContainer[int]
    label: LabelColumns
    def __init__(self, location_id: _Optional[_Iterable[int]] = ..., label: _Optional[_Union[LabelColumns, _Mapping]] = ...) -> None: ...

class LabelColumns(_message.Message):
    __slots__ = ("key", "str", "num_unit")
    KEY_FIELD_NUMBER: _ClassVar[int]
    STR_FIELD_NUMBER: _ClassVar[int]
    NUM_UNIT_FIELD_NUMBER: _ClassVar[int]
    key: _containers.RepeatedScalarFieldContainer[int]
    str: _containers.RepeatedScalarFieldContainer[int]
    num_unit: _containers.RepeatedScalarFieldContainer[int]
    def __init__(self, key: _Optional[_Iterable[int]] = ..., str: _Optional[_Iterable[int]] = ..., num_unit: _Optional[_Iterable[int]] = ...) -> None: ...

class MappingColumns(_message.Message):
    __slots__ = ("id", "filename", "build_id")
    ID_FIELD_NUMBER: _ClassVar[int]
    FILENAME_FIELD_NUMBER: _ClassVar[int]
    BUILD_ID_FIELD_NUMBER: _ClassVar[int]
    id: _containers.RepeatedScalarFieldContainer[int]
    filename: _containers.RepeatedScalarFieldContainer[int]
    build_id: _containers.RepeatedScalarFieldContainer[int]
    def __init__(self, id: _Optional[_Iterable[int]] = ..., filename: _Optional[_Iterable[int]] = ..., build_id: _Optional[_Iterable[int]] = ...) -> None: ...

class LocationColumns(_message.Message):
    __slots__ = ("id", "mapping_id", "line")
    ID_FIELD_NUMBER: _ClassVar[int]
    MAPPING_ID_FIELD_NUMBER: _ClassVar[int]
    LINE_FIELD_NUMBER: _ClassVar[int]
    id: _containers.RepeatedScalarFieldContainer[int]
    mapping_id: _containers.RepeatedScalarFieldContainer[int]
    line: LineColumns
    def __init__(self, id: _Optional[_Iterable[int]] = ..., mapping_id: _Optional[_Iterable[int]] = ..., line: _Optional[_Union[LineColumns, _Mapping]] = ...) -> None: ...

class LineColumns(_message.Message):
    __slots__ = ("function_id",)
    FUNCTION_ID_FIELD_NUMBER: _ClassVar[int]
    function_id: _containers.RepeatedScalarFieldContainer[int]
    def __init__(self, function_id: _Optional[_Iterable[int]] = ...) -> None: ...

class FunctionColumns(_message.Message):
    __slots__ = ("id", "name", "system_name", "filename")
    ID_FIELD_NUMBER: _ClassVar[int]
    NAME_FIELD_NUMBER: _ClassVar[int]
    SYSTEM_NAME_FIELD_NUMBER: _ClassVar[int]
    FILENAME_FIELD_NUMBER: _ClassVar[int]
    id: _containers.RepeatedScalarFieldContainer[int]
    name: _containers.RepeatedScalarFieldContainer[int]
    system_name: _containers.RepeatedScalarFieldContainer[int]
    filename: _containers.RepeatedScalarFieldContainer[int]
    def __init__(self, id: _Optional[_Iterable[int]] = ..., name: _Optional[_Iterable[int]] = ..., system_name: _Optional[_Iterable[int]] = ..., filename: _Optional[_Iterable[int]] = ...) -> None: ...

class LineCount(_message.Message):
    __slots__ = ("location",)
    LOCATION_FIELD_NUMBER: _ClassVar[int]
    location: LocationLines
    def __init__(self, location: _Optional[_Union[LocationLines, _Mapping]] = ...) -> None: ...

class LocationLines(_message.Message):
    __slots__ = ("line",)
    LINE_FIELD_NUMBER: _ClassVar[int]
    line: _containers.RepeatedCompositeFieldContainer[Empty]
    def __init__(self, line: _Optional[_Iterable[_Union[Empty, _Mapping]]] = ...) -> None: ...

class Empty(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class MergeColumns(_message.Message):
    __slots__ = ("sample", "location", "function")
    SAMPLE_FIELD_NUMBER: _ClassVar[int]
    LOCATION_FIELD_NUMBER: _ClassVar[int]
    FUNCTION_FIELD_NUMBER: _ClassVar[int]
    sample: MergeSampleColumns
    location: MergeLocationColumns
    function: MergeFunctionColumns
    def __init__(self, sample: _Optional[_Union[MergeSampleColumns, _Mapping]] = ..., location: _Optional[_Union[MergeLocationColumns, _Mapping]] = ..., function: _Optional[_Union[MergeFunctionColumns, _Mapping]] = ...) -> None: ...

class MergeSampleColumns(_message.Message):
    __slots__ = ("location_id", "value", "label")
    LOCATION_ID_FIELD_NUMBER: _ClassVar[int]
    VALUE_FIELD_NUMBER: _ClassVar[int]
    LABEL_FIELD_NUMBER: _ClassVar[int]
    location_id: _containers.RepeatedScalarFieldContainer[int]
    value: _containers.RepeatedScalarFieldContainer[int]
    label: _containers.RepeatedScalarFieldContainer[bytes]
    def __init__(self, location_id: _Optional[_Iterable[int]] = ..., value: _Optional[_Iterable[int]] = ..., label: _Optional[_Iterable[bytes]] = ...) -> None: ...

class MergeLocationColumns(_message.Message):
    __slots__ = ("id", "mapping_id", "address", "line", "is_folded")
    ID_FIELD_NUMBER: _ClassVar[int]
    MAPPING_ID_FIELD_NUMBER: _ClassVar[int]
    ADDRESS_FIELD_NUMBER: _ClassVar[int]
    LINE_FIELD_NUMBER: _ClassVar[int]
    IS_FOLDED_FIELD_NUMBER: _ClassVar[int]
    id: _containers.RepeatedScalarFieldContainer[int]
    mapping_id: _containers.RepeatedScalarFieldContainer[int]
    address: _containers.RepeatedScalarFieldContainer[int]
    line: MergeLineColumns
    is_folded: _containers.RepeatedScalarFieldContainer[bool]
    def __init__(self, id: _Optional[_Iterable[int]] = ..., mapping_id: _Optional[_Iterable[int]] = ..., address: _Optional[_Iterable[int]] = ..., line: _Optional[_Union[MergeLineColumns, _Mapping]] = ..., is_folded: _Optional[_Iterable[bool]] = ...) -> None: ...

class MergeLineColumns(_message.Message):
    __slots__ = ("function_id", "line", "column")
    FUNCTION_ID_FIELD_NUMBER: _ClassVar[int]
    LINE_FIELD_NUMBER: _ClassVar[int]
    COLUMN_FIELD_NUMBER: _ClassVar[int]
    function_id: _containers.RepeatedScalarFieldContainer[int]
    line: _containers.RepeatedScalarFieldContainer[int]
    column: _containers.RepeatedScalarFieldContainer[int]
    def __init__(self, function_id: _Optional[_Iterable[int]] = ..., line: _Optional[_Iterable[int]] = ..., column: _Optional[_Iterable[int]] = ...) -> None: ...

class MergeFunctionColumns(_message.Message):
    __slots__ = ("id", "name", "system_name", "filename", "start_line")
    ID_FIELD_NUMBER: _ClassVar[int]
    NAME_FIELD_NUMBER: _ClassVar[int]
    SYSTEM_NAME_FIELD_NUMBER: _ClassVar[int]
    FILENAME_FIELD_NUMBER: _ClassVar[int]
    START_LINE_FIELD_NUMBER: _ClassVar[int]
    id: _containers.RepeatedScalarFieldContainer[int]
    name: _containers.RepeatedScalarFieldContainer[int]
    system_name: _containers.RepeatedScalarFieldContainer[int]
    filename: _containers.RepeatedScalarFieldContainer[int]
    start_line: _containers.RepeatedScalarFieldContainer[int]
    def __init__(self, id: _Optional[_Iterable[int]] = ..., name: _Optional[_Iterable[int]] = ..., system_name: _Optional[_Iterable[int]] = ..., filename: _Optional[_Iterable[int]] = ..., start_line: _Optional[_Iterable[int]] = ...) -> None: ...
