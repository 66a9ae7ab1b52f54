"""The registry of declared classes: ``type_by_name``, and one class per full name."""

from __future__ import annotations

import gc

import pytest

import savestate
from savestate import Oneof, Protobuf, SchemaError, field, savedstate, type_by_name, u8, u32
from savestate.model.registry import DuplicateTypeName, UnknownTypeName, root_for_url


@savedstate
class RegRoot(Protobuf, package="t.registry"):
    x: u32 = field(1)


class RegInner(Protobuf, package="t.registry"):
    y: u8 = field(1)


class RegChoice(Oneof, package="t.registry"):
    pass


class RegOn(RegChoice, variant=1):
    pass


class RegNamed(Protobuf, package="t.registry", name="Renamed"):
    z: u8 = field(1)


class RegNoPackage(Protobuf):
    z: u8 = field(1)


def test_type_by_name_finds_roots_messages_and_oneofs() -> None:
    assert type_by_name("t.registry.RegRoot") is RegRoot
    assert type_by_name("t.registry.RegInner") is RegInner
    assert type_by_name("t.registry.RegChoice") is RegChoice
    assert type_by_name("t.registry.Renamed") is RegNamed
    blob = savestate.SavedStateBlob  # a class is found once its module is imported
    assert savestate.type_by_name("google.protobuf.Any") is blob


def test_unknown_name_is_a_schema_error_naming_neighbours() -> None:
    with pytest.raises(UnknownTypeName) as info:
        type_by_name("t.registry.Missing")
    assert isinstance(info.value, SchemaError)
    assert "'t.registry.Missing'" in str(info.value)
    assert "t.registry.RegInner" in str(info.value)  # the package's names, as a hint
    with pytest.raises(SchemaError):
        type_by_name("no.such.package.Thing")


def test_variants_and_classes_without_package_have_no_full_name() -> None:
    with pytest.raises(SchemaError):
        type_by_name("t.registry.RegOn")
    with pytest.raises(SchemaError):
        type_by_name("RegNoPackage")


def test_root_for_url_finds_only_roots() -> None:
    assert root_for_url("type.googleapis.com/t.registry.RegRoot") is RegRoot
    assert root_for_url("https://type.googleapis.com/t.registry.RegRoot") is RegRoot
    assert root_for_url("type.googleapis.com/t.registry.RegInner") is None


def test_two_classes_with_one_full_name_are_a_schema_error_naming_both() -> None:
    with pytest.raises(DuplicateTypeName) as info:

        class RegInner(Protobuf, package="t.registry"):
            other: u8 = field(1)

    assert isinstance(info.value, SchemaError)
    text = str(info.value)
    assert f"{__name__}.RegInner" in text
    assert f"{__name__}.test_two_classes_with_one_full_name_are_a_schema_error_naming_both" \
        ".<locals>.RegInner" in text
    assert "type.googleapis.com/t.registry.RegInner" in text
    assert type_by_name("t.registry.RegInner") is globals()["RegInner"]


def test_name_given_with_name_clashes_too() -> None:
    with pytest.raises(DuplicateTypeName, match=r"t\.registry\.Renamed"):

        class Renamed(Protobuf, package="t.registry"):
            z: u8 = field(1)


def test_a_function_run_twice_redeclares_its_classes() -> None:
    def declare() -> type:
        @savedstate
        class Twice(Protobuf, package="t.registry.twice"):
            x: u32 = field(1)

        return Twice

    first = declare()
    second = declare()
    assert first is not second
    assert type_by_name("t.registry.twice.Twice") is second
    assert root_for_url("type.googleapis.com/t.registry.twice.Twice") is second
    assert second.decode(first(x=3).encode()).x == 3


def test_dead_function_local_classes_disappear() -> None:
    def declare() -> None:
        class Gone(Protobuf, package="t.registry.gone"):
            x: u32 = field(1)

        assert type_by_name("t.registry.gone.Gone") is Gone

    declare()
    gc.collect()
    with pytest.raises(UnknownTypeName):
        type_by_name("t.registry.gone.Gone")


def test_redeclaring_lets_two_versions_live_side_by_side() -> None:
    from savestate.testing import redeclaring

    def old() -> type:
        class Versioned(Protobuf, package="t.registry.versions"):
            a: u8 = field(1)

        return Versioned

    def new() -> type:
        class Versioned(Protobuf, package="t.registry.versions"):
            a: u8 = field(1)
            b: u8 = field(2)

        return Versioned

    keep = old()
    with pytest.raises(DuplicateTypeName):
        new()
    with redeclaring():
        newer = new()
    assert type_by_name("t.registry.versions.Versioned") is newer
    assert newer.decode(keep(a=1).encode()).a == 1
