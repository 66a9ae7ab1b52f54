"""Proof by real bytes: decode the saved states of an earlier release with the current classes.

A corpus is a directory of files saved by an earlier release: snapshot files
(:mod:`savestate.state.snapshot`) and state blobs (the bytes of a ``SavedStateBlob``, a
``google.protobuf.Any``). Each is decoded with the classes of the checked code, found by its
type URL, then encoded again and decoded once more, which must give the same value. Blobs inside
the state (state units, nested devices) are followed the same way. Each failure is a finding
naming the file, the type and the field path, so that ``savestate check --corpus`` reports it
next to what the schema comparison found.

Keep a few real snapshots from each release next to its ``.proto`` baseline: the comparison
catches what a schema can tell, the corpus what only the bytes can.
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

from .declare import Protobuf
from .errors import SavestateError
from .limits import DEFAULT_MAX_SIZE
from .model.registry import TYPE_URL_PREFIX, full_name
from .model.registry import roots as registered_roots
from .schemaio.compat import CORPUS_RULE, BaselineError, Finding
from .schemaio.discover import load_roots
from .state import snapshot
from .state.blob import SavedStateBlob

__all__ = ["check_corpus", "corpus_files"]

# Blobs inside blobs are followed to this depth (each level is one parse), as a restore does.
MAX_BLOB_NESTING = 100


def corpus_files(corpus: str | os.PathLike[str]) -> list[Path]:
    """The files of a corpus directory, sorted (hidden files and ``*.md``/``*.txt`` notes left
    out); raises :class:`BaselineError` for a missing or empty directory, or a path that is not
    a directory."""
    base = Path(corpus)
    if base.exists() and not base.is_dir():  # a snapshot file given for its directory
        raise BaselineError(f"corpus {os.fspath(corpus)} is not a directory (give the "
                            "directory that holds the snapshot files and state blobs)")
    if not base.is_dir():
        raise BaselineError(f"corpus directory {os.fspath(corpus)} does not exist")
    files = sorted(
        p for p in base.rglob("*")
        if p.is_file() and not any(part.startswith(".") for part in p.relative_to(base).parts)
        and p.suffix not in (".md", ".txt")
    )
    if not files:
        raise BaselineError(f"corpus directory {os.fspath(corpus)} holds no files")
    return files


def check_corpus(
    roots_or_modules: Iterable[type | str] | type | str, corpus: str | os.PathLike[str]
) -> list[Finding]:
    """Decode every snapshot file and state blob in ``corpus`` with the classes of
    ``roots_or_modules`` (root classes and/or module names), re-encode each state and decode it
    again. Returns one error finding per failure (an empty list: every state restores)."""
    items = (
        [roots_or_modules] if isinstance(roots_or_modules, (type, str)) else roots_or_modules
    )
    roots = [r for r in items if isinstance(r, type)]
    modules = [m for m in items if isinstance(m, str)]
    if modules:
        roots += [r for r in load_roots(modules) if r not in roots]
    by_name = {full_name(r): r for r in roots}
    for r in registered_roots():  # the library's own roots (state units) decode too
        if r.__module__.startswith("savestate."):
            by_name.setdefault(full_name(r), r)
    findings: list[Finding] = []
    for path in corpus_files(corpus):
        findings += _check_file(path, by_name)
    return findings


def _fail(file: Path, where: str, change: str, reason: str) -> Finding:
    return Finding(
        "error", CORPUS_RULE.id, CORPUS_RULE.direction, where, None, change, reason,
        os.fspath(file), None,
    )


def _check_file(path: Path, by_name: dict[str, type]) -> list[Finding]:
    data = path.read_bytes()
    # A corpus file is the project's own, read whole: its size, not the 64 MiB default for
    # untrusted input, bounds every decode of it (a state may be larger than that).
    limit = max(len(data), DEFAULT_MAX_SIZE)
    try:
        if data.startswith(snapshot.MAGIC):
            blob = snapshot.unpack(data, path, max_size=limit)
        else:
            blob = SavedStateBlob.decode(data, max_size=limit)
    except SavestateError as exc:
        return [_fail(path, "google.protobuf.Any", f"not a snapshot file or a state blob: {exc}",
                      "the corpus holds states saved by an earlier release")]
    findings: list[Finding] = []
    stack: list[tuple[SavedStateBlob, str, int]] = [(blob, "", 0)]
    while stack:
        item, where, level = stack.pop()
        name = item.type_url.removeprefix("https://").removeprefix(TYPE_URL_PREFIX)
        # Control characters of a URL (a terminal's escape sequences) are shown escaped.
        shown = name if name.isprintable() else repr(name)
        label = f"{where} ({shown})" if where else shown
        cls = by_name.get(name)
        if cls is None:
            url = item.type_url if item.type_url.isprintable() else repr(item.type_url)
            findings.append(_fail(
                path, label, f"no root of the checked code has the type URL {url}",
                "a state of this type cannot restore: its root was deleted, renamed or moved "
                "(or its module is not checked)",
            ))
            continue
        try:
            value: Any = item.parse(cls, max_size=limit)
        except SavestateError as exc:
            findings.append(_fail(path, label, f"fails to decode: {exc}",
                                  "the new classes cannot read the old bytes"))
            continue
        try:
            encoded = bytes(value)
            again = cls.decode(encoded, max_size=max(len(encoded), limit))  # type: ignore[attr-defined]
        except SavestateError as exc:
            findings.append(_fail(path, label, f"fails to re-encode: {exc}",
                                  "the decoded state cannot be saved again"))
            continue
        # A NaN is not equal to itself, so a state holding one (a float register) never
        # compares equal: its encoding, saved again, is then what must not change.
        if again != value and bytes(again) != encoded:
            findings.append(_fail(path, label, "re-encoding changes the state",
                                  "a save after a restore would not give back what was read"))
            continue
        if level + 1 < MAX_BLOB_NESTING:
            for inner, inner_where in _blobs(value, where or name):
                stack.append((inner, inner_where, level + 1))
    return findings


def _blobs(value: Any, where: str) -> Iterator[tuple[SavedStateBlob, str]]:
    """The blobs directly inside ``value`` (not inside those), with their field paths."""
    stack: list[tuple[Any, str]] = [(value, where)]
    while stack:
        item, at = stack.pop()
        if isinstance(item, SavedStateBlob):
            if at != where:
                yield item, at
            continue
        if isinstance(item, Protobuf) and dataclasses.is_dataclass(item):
            for f in reversed(dataclasses.fields(item)):
                stack.append((getattr(item, f.name), f"{at}.{f.name}"))
        elif isinstance(item, dict):
            stack.extend((v, f"{at}[{k!r}]") for k, v in item.items())
        elif isinstance(item, (list, tuple)):
            stack.extend((v, f"{at}[{i}]") for i, v in enumerate(item))
