"""Helpers for a project's own tests: ``assert_compatible`` and ``assert_corpus_restores`` for
pytest (or any test runner), and ``redeclaring`` for a test that declares two versions of one
type side by side."""

from __future__ import annotations

import os
from collections.abc import Iterable

from .model.registry import redeclaring
from .schemaio.compat import BACKWARD, Report, check_compatible

__all__ = ["assert_compatible", "assert_corpus_restores", "redeclaring"]


def assert_compatible(
    roots_or_modules: Iterable[type | str] | type | str,
    against: str | os.PathLike[str],
    direction: str = BACKWARD,
) -> Report:
    """Raise ``AssertionError`` listing every breaking change against the baseline ``against``.

    Arguments as :func:`savestate.check_compatible`; returns the report (warnings included)
    when nothing breaks::

        def test_state_still_restores():
            assert_compatible("mypkg.devices", against="proto/release-1.4")
    """
    report = check_compatible(roots_or_modules, against=against, direction=direction)
    if not report.ok:
        lines = [str(f) for f in report.errors]
        raise AssertionError(
            f"saved state is not {direction} compatible with {os.fspath(against)}:\n"
            + "\n".join(lines)
        )
    return report


def assert_corpus_restores(
    roots_or_modules: Iterable[type | str] | type | str,
    corpus: str | os.PathLike[str],
) -> int:
    """Raise ``AssertionError`` listing every saved state in ``corpus`` (snapshot files and
    state blobs of an earlier release) that the current classes fail to decode or re-encode,
    each with its file, type and field path; returns the number of files checked::

        def test_old_snapshots_still_restore():
            assert_corpus_restores("mypkg.devices", "tests/corpus/release-1.4")
    """
    from .corpus import check_corpus, corpus_files

    failures = check_corpus(roots_or_modules, corpus)
    if failures:
        raise AssertionError(
            f"saved states in {os.fspath(corpus)} do not restore:\n"
            + "\n".join(str(f) for f in failures)
        )
    return len(corpus_files(corpus))
