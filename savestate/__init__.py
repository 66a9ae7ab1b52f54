"""savestate: saved state declared as annotated dataclasses, with a byte-exact protobuf codec."""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from .declare import Oneof, Protobuf, field, replace, savedstate
from .errors import DecodeError, EncodeError, SavestateError, SchemaError
from .model.registry import roots, type_by_name
from .model.scalars import (
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

__version__ = "0.1.0"
"""The version of this release (the distribution is ``savestate-proto`` on the package index)."""

if TYPE_CHECKING:
    from .codec.accel import ACCELERATED
    from .codec.front import warm_up
    from .codec.jsonmap import JsonError
    from .model.introspect import schema_of
    from .schemaio.compat import check_compatible
    from .schemaio.proto import proto_files, write_proto
    from .state import snapshot
    from .state.blob import SavedStateBlob
    from .state.saverestore import (
        AsyncSaveRestore,
        AsyncSaveRestoreWith,
        NoSavedState,
        RestoreError,
        SavedStateNotSupported,
        SaveError,
        SaveRestore,
        SaveRestoreWith,
        restore_blob,
        restore_blob_async,
        save_blob,
        save_blob_async,
    )
    from .state.units import SavedStateUnit, SavedStateUnits, StateUnits

# Everything past declaring is imported on first use, so that `import savestate` stays cheap.
_LAZY = {
    "JsonError": "codec.jsonmap",
    "SavedStateBlob": "state.blob",
    "check_compatible": "schemaio.compat",
    "schema_of": "model.introspect",
    "proto_files": "schemaio.proto",
    "write_proto": "schemaio.proto",
    "NoSavedState": "state.saverestore",
    "RestoreError": "state.saverestore",
    "SavedStateNotSupported": "state.saverestore",
    "SaveError": "state.saverestore",
    "SaveRestore": "state.saverestore",
    "restore_blob": "state.saverestore",
    "save_blob": "state.saverestore",
    "AsyncSaveRestore": "state.saverestore",
    "AsyncSaveRestoreWith": "state.saverestore",
    "SaveRestoreWith": "state.saverestore",
    "restore_blob_async": "state.saverestore",
    "save_blob_async": "state.saverestore",
    "SavedStateUnit": "state.units",
    "SavedStateUnits": "state.units",
    "StateUnits": "state.units",
    "ACCELERATED": "codec.accel",
    "warm_up": "codec.front",
}


def __getattr__(name: str) -> Any:
    if name == "snapshot":
        return importlib.import_module(".state.snapshot", __name__)
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'savestate' has no attribute {name!r}")
    value = getattr(importlib.import_module(f".{module}", __name__), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(__all__)


__all__ = [
    "ACCELERATED",
    "AsyncSaveRestore",
    "AsyncSaveRestoreWith",
    "DecodeError",
    "EncodeError",
    "JsonError",
    "NoSavedState",
    "Oneof",
    "Protobuf",
    "RestoreError",
    "SaveError",
    "SaveRestore",
    "SaveRestoreWith",
    "SavedStateBlob",
    "SavedStateNotSupported",
    "SavedStateUnit",
    "SavedStateUnits",
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
    "replace",
    "restore_blob",
    "restore_blob_async",
    "roots",
    "save_blob",
    "save_blob_async",
    "savedstate",
    "schema_of",
    "sfixed32",
    "sfixed64",
    "sint32",
    "sint64",
    "snapshot",
    "type_by_name",
    "u8",
    "u16",
    "u32",
    "u64",
    "uint32",
    "uint64",
    "warm_up",
    "write_proto",
]
