"""The names things have in ``.proto`` files and proto3 JSON, derived in one place.

Field and member names (``snake_case``, ``upper_camel_case``, :func:`json_name`), enum value
names, the ``google.protobuf.*Value`` wrapper messages and the key types a proto ``map`` takes.
The ``.proto`` emitter, the compatibility checker and the JSON mapping all name things through
this module, so that they cannot disagree.
"""

from __future__ import annotations

import enum
import re

from ..errors import SchemaError

__all__ = [
    "MAP_KEYS",
    "WRAPPER_MESSAGES",
    "check_identifier",
    "check_json_names",
    "check_package",
    "enum_value_names",
    "json_name",
    "snake_case",
    "upper_camel_case",
]

# A word, split as the Rust derive's names are (heck): leading digits, then capitals and digits
# up to a capital that starts a lowercase run, then lowercase letters and digits. Digits do not
# end a word: ``SHA256Hash`` is ``sha256_hash``, ``VT100Mode`` is ``vt100_mode``.
_WORD = re.compile(r"(?=[A-Za-z0-9])[0-9]*(?:[A-Z](?:[A-Z](?![a-z])|[0-9])*)?(?:[a-z][a-z0-9]*)?")

# The google.protobuf.*Value wrapper of a one-element tuple of a builtin (none for sint/fixed).
WRAPPER_MESSAGES = {
    "double": "DoubleValue",
    "float": "FloatValue",
    "int64": "Int64Value",
    "uint64": "UInt64Value",
    "int32": "Int32Value",
    "uint32": "UInt32Value",
    "bool": "BoolValue",
    "string": "StringValue",
    "bytes": "BytesValue",
}
# Key types a proto `map<K, V>` accepts.
MAP_KEYS = frozenset(
    {
        "int32",
        "int64",
        "uint32",
        "uint64",
        "sint32",
        "sint64",
        "fixed32",
        "fixed64",
        "sfixed32",
        "sfixed64",
        "bool",
        "string",
    }
)


def _words(name: str) -> list[str]:
    return _WORD.findall(name)


def snake_case(name: str) -> str:
    """``ExpectIcw3`` -> ``expect_icw3``, ``HTTPServer`` -> ``http_server``."""
    return "_".join(w.lower() for w in _words(name)) or name


def upper_camel_case(name: str) -> str:
    """``foo_bar`` -> ``FooBar``, ``field1`` -> ``Field1``."""
    return "".join(w[0].upper() + w[1:].lower() for w in _words(name)) or name


# A package is dot-separated protobuf identifiers (letters, digits, underscores; not starting
# with a digit): protoc rejects anything else, and the package is part of every type URL.
_PACKAGE = re.compile(r"[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z_][A-Za-z0-9_]*)*")


def check_package(package: object, where: list[str]) -> None:
    """Raise :class:`SchemaError` unless ``package`` is a valid protobuf package name."""
    if not isinstance(package, str) or not package:
        raise SchemaError(f"package must be a non-empty string, got {package!r}", where)
    if _PACKAGE.fullmatch(package) is None:
        raise SchemaError(
            f"package {package!r} is not a protobuf package name: dot-separated identifiers "
            "of letters, digits and underscores, each not starting with a digit "
            "(e.g. 'chipset.pic'); it becomes part of every type URL and cannot change later",
            where,
        )


_IDENTIFIER = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")


def check_identifier(name: str, what: str, where: list[str]) -> None:
    """Raise :class:`SchemaError` unless ``name`` is a protobuf identifier (ASCII letters,
    digits and underscores, not starting with a digit): protoc refuses anything else, and a
    message name is part of its type URL. ``what`` says what the name is, for the message."""
    if _IDENTIFIER.fullmatch(name) is None:
        raise SchemaError(
            f"{what} {name!r} is not a protobuf identifier: ASCII letters, digits and "
            "underscores, not starting with a digit",
            where,
        )


def check_json_names(owner: str, fields: list[tuple[str, str]]) -> None:
    """Raise :class:`SchemaError` when two fields, given as ``(python name, proto name)``,
    have one proto3 JSON name (``a_b`` and ``aB``): the JSON of one would hide the other, and
    protoc rejects the file."""
    seen: dict[str, str] = {}
    for pyname, proto_name in fields:
        name = json_name(proto_name)
        other = seen.get(name)
        if other is not None:
            raise SchemaError(
                f"fields {other!r} and {proto_name!r} have the same JSON name {name!r}",
                [owner, pyname],
            )
        seen[name] = proto_name


def json_name(name: str) -> str:
    """The proto3 JSON name of a field, as ``protoc`` derives it: ``line_low_latch`` ->
    ``lineLowLatch``."""
    out: list[str] = []
    upper = False
    for c in name:
        if c == "_":
            upper = True
        elif upper:
            out.append(c.upper())
            upper = False
        else:
            out.append(c)
    return "".join(out)


def enum_value_names(cls: type[enum.IntEnum]) -> dict[int, str]:
    """The ``.proto`` value names of an ``IntEnum`` by number, in file order.

    Values are ``<ENUM_NAME>_<MEMBER>`` in UPPER_SNAKE_CASE; the zero comes first (then by
    value), and ``<ENUM_NAME>_UNSPECIFIED = 0`` is added when the enum has no zero member
    (proto3 needs one). Two members that would get one name are a :class:`SchemaError`.
    """
    prefix = snake_case(cls.__name__).upper()
    values: dict[int, str] = {}
    members = sorted(cls, key=lambda m: (int(m.value) != 0, int(m.value)))
    if not any(int(m.value) == 0 for m in members):
        values[0] = f"{prefix}_UNSPECIFIED"
    for m in members:
        name = snake_case(m.name).upper()
        if not name.startswith(prefix + "_"):
            name = f"{prefix}_{name}"
        values[int(m.value)] = name
    if len(set(values.values())) != len(values):
        clash = next(n for n in values.values() if list(values.values()).count(n) > 1)
        raise SchemaError(
            f"enum {cls.__name__} would have two values named {clash} in the .proto output",
            [cls.__name__],
        )
    return values
