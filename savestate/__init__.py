"""savestate: saved state declared as annotated dataclasses, with a byte-exact protobuf codec."""

from . import snapshot
from .blob import SavedStateBlob
from .compat import check_compatible
from .declare import Oneof, Protobuf, field, roots, savedstate
from .errors import DecodeError, EncodeError, SavestateError, SchemaError
from .introspect import schema_of
from .proto import proto_files, write_proto
from .saverestore import (
    NoSavedState,
    RestoreError,
    SavedStateNotSupported,
    SaveError,
    SaveRestore,
    restore_blob,
    save_blob,
)
from .scalars import (
    f32,
    f64,
    fixed32,
    fixed64,
    i8,
    i16,
    i32,
    i64,
    int32,
    int64,
    sfixed32,
    sfixed64,
    sint32,
    sint64,
    u8,
    u16,
    u32,
    u64,
    uint32,
    uint64,
)
from .units import SavedStateUnit, StateUnits

__all__ = [
    "DecodeError",
    "EncodeError",
    "NoSavedState",
    "Oneof",
    "Protobuf",
    "RestoreError",
    "SaveError",
    "SaveRestore",
    "SavedStateBlob",
    "SavedStateNotSupported",
    "SavedStateUnit",
    "SavestateError",
    "SchemaError",
    "StateUnits",
    "check_compatible",
    "f32",
    "f64",
    "field",
    "fixed32",
    "fixed64",
    "i8",
    "i16",
    "i32",
    "i64",
    "int32",
    "int64",
    "proto_files",
    "restore_blob",
    "roots",
    "save_blob",
    "savedstate",
    "schema_of",
    "sfixed32",
    "sfixed64",
    "sint32",
    "sint64",
    "snapshot",
    "u8",
    "u16",
    "u32",
    "u64",
    "uint32",
    "uint64",
    "write_proto",
]
