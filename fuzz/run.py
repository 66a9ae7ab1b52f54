"""Run every fuzz target for a given time: ``python -m fuzz.run --seconds N [--jobs 2]``.

Each target runs in its own process under atheris (libFuzzer, coverage-guided; install it with
``pip install -e '.[fuzz]'``), seeded from ``fuzz/corpus/<target>/`` (the committed seeds) and
``fuzz/work/<target>/`` (inputs found while fuzzing; not committed). ``--seconds`` is the time
given to each target; ``--jobs`` targets run at once. A failing input is written to
``fuzz/artifacts/<target>/`` and the target is started again for the rest of its time, so a
run reports every distinct finding rather than stopping at the first; each one must become a
regression test under ``tests/`` (``tests/test_fuzz_regressions.py``).

The library code, the example devices and the codecs generated at run time are instrumented
for coverage. At the end a table gives, per target, the executions, the time, the rate and the
outcome (``ok`` or the number of failing inputs); ``--report FILE`` also writes it as JSON.
The exit status is 1 when any input failed.

``python -m fuzz.run --replay [PATH ...]`` runs the targets over files (default: every corpus,
work and artifact file) without atheris, e.g. to check a fix.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import re
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, field
from pathlib import Path

HERE = Path(__file__).parent
CORPUS = HERE / "corpus"
WORK = HERE / "work"
ARTIFACTS = HERE / "artifacts"


@dataclass
class Result:
    target: str
    executions: int = 0
    seconds: float = 0.0
    failures: list[str] = field(default_factory=list)
    corpus: int = 0

    @property
    def outcome(self) -> str:
        return "ok" if not self.failures else f"{len(self.failures)} failing input(s)"


# -- the worker: one target under atheris -----------------------------------------------------


def _worker(target: str, libfuzzer_args: list[str]) -> None:
    import atheris  # type: ignore[import-untyped, unused-ignore]  # no stubs published

    with atheris.instrument_imports(include=["savestate", "examples", "fuzz"]):
        from fuzz import targets

    # Compile every codec now (they are generated at run time, so the import hook never saw
    # them), then instrument the generated functions too.
    for seed in sorted((CORPUS / target).glob("*")):
        with contextlib.suppress(AssertionError):
            targets.TARGETS[target](seed.read_bytes())
    for function in _generated_functions():
        atheris.instrument_func(function)

    run_one = targets.run_one

    def test_one_input(data: bytes) -> None:
        run_one(target, data)

    atheris.Setup([sys.argv[0], *libfuzzer_args], test_one_input)
    atheris.Fuzz()


def _generated_functions() -> list[object]:
    """The compiled encode/decode functions of every declared class compiled so far, and the
    generated helpers they call (found in their globals, which the generated source owns)."""
    import gc
    import types

    from savestate.model.registry import info_of

    found: dict[int, object] = {}
    for obj in gc.get_objects():
        info = info_of(obj)
        codec = getattr(info, "codec", None) if info is not None else None
        if codec is None:
            continue
        for function in (getattr(codec, "_encode", None), getattr(codec, "_decode", None)):
            if isinstance(function, types.FunctionType):
                found[id(function)] = function
                for helper in function.__globals__.values():
                    if (isinstance(helper, types.FunctionType)
                            and helper.__code__.co_filename == function.__code__.co_filename):
                        found[id(helper)] = helper
    return list(found.values())


# -- the driver -----------------------------------------------------------------------------


_DONE = re.compile(r"Done (\d+) runs in (\d+) second")
_STAT = re.compile(r"stat::number_of_executed_units: (\d+)")
_PROGRESS = re.compile(r"^#(\d+)\s", re.M)
_ARTIFACT = re.compile(r"Test unit written to (\S+)")


def _executions(log: str) -> int:
    for pattern in (_STAT, _DONE):
        found = pattern.findall(log)
        if found:
            return int(found[-1][0] if isinstance(found[-1], tuple) else found[-1])
    progress = _PROGRESS.findall(log)
    return int(progress[-1]) if progress else 0


def _run_target(target: str, seconds: float, log_dir: Path, quiet: bool) -> Result:
    result = Result(target)
    work = WORK / target
    artifacts = ARTIFACTS / target
    work.mkdir(parents=True, exist_ok=True)
    artifacts.mkdir(parents=True, exist_ok=True)
    deadline = time.monotonic() + seconds
    attempt = 0
    while True:
        remaining = int(deadline - time.monotonic())
        if remaining < 1:
            break
        attempt += 1
        args = [
            str(work), str(CORPUS / target),
            f"-max_total_time={remaining}", f"-artifact_prefix={artifacts}/",
            "-print_final_stats=1", "-timeout=20", "-rss_limit_mb=4096", "-max_len=16384",
            "-reload=0",
        ]
        log_path = log_dir / f"{target}.{attempt}.log"
        started = time.monotonic()
        with open(log_path, "w") as log:
            proc = subprocess.run(
                [sys.executable, "-m", "fuzz.run", "--worker", target, "--", *args],
                stdout=log, stderr=subprocess.STDOUT, cwd=HERE.parent, check=False,
            )
        result.seconds += time.monotonic() - started
        text = log_path.read_text(errors="replace")
        result.executions += _executions(text)
        found = _ARTIFACT.findall(text)
        repeated = bool(found) and set(found) <= set(result.failures)
        result.failures.extend(f for f in found if f not in result.failures)
        if not quiet:
            print(f"[{target}] pass {attempt}: exit {proc.returncode}, "
                  f"{_executions(text)} executions" + (f", failing input {found}" if found
                                                       else ""), flush=True)
        if proc.returncode != 0 and not found:
            result.failures.append(f"worker exited {proc.returncode}, see {log_path}")
            break
        if proc.returncode == 0 or repeated:
            break  # (the same input failing again: a seed fails, restarting cannot get past it)
    result.corpus = sum(1 for _ in work.iterdir())
    return result


def _table(results: list[Result], wall: float) -> str:
    lines = [f"{'target':<16}{'executions':>14}{'seconds':>10}{'exec/s':>10}  outcome"]
    for r in results:
        rate = r.executions / r.seconds if r.seconds else 0.0
        lines.append(f"{r.target:<16}{r.executions:>14,}{r.seconds:>10.0f}{rate:>10.0f}  "
                     f"{r.outcome}")
    total = sum(r.executions for r in results)
    failures = sum(len(r.failures) for r in results)
    lines.append(f"{'total':<16}{total:>14,}{wall:>10.0f}{'':>10}  "
                 + ("ok" if not failures else f"{failures} failing input(s)"))
    return "\n".join(lines)


def _replay(paths: list[str]) -> int:
    from fuzz import targets

    files: list[tuple[str, Path]] = []
    if paths:
        for p in paths:
            path = Path(p)
            if path.is_file():
                files.append((path.parent.name, path))
            else:
                files.extend((path.name, f) for f in sorted(path.iterdir()))
    else:
        for root in (CORPUS, WORK, ARTIFACTS):
            for name in targets.TARGETS:
                directory = root / name
                if directory.is_dir():
                    files.extend((name, f) for f in sorted(directory.iterdir()))
    bad = 0
    for name, path in files:
        if name not in targets.TARGETS:
            continue
        try:
            targets.run_one(name, path.read_bytes())
        except AssertionError as exc:
            bad += 1
            print(f"FAIL {name} {path}: {exc}")
    print(f"replayed {len(files)} inputs: {bad} failing")
    return 1 if bad else 0


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if argv[:1] == ["--worker"]:
        rest = argv[2:]
        _worker(argv[1], rest[1:] if rest[:1] == ["--"] else rest)
        return 0
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=60, help="time per target (60)")
    parser.add_argument("--jobs", type=int, default=os.cpu_count() or 1,
                        help="targets run at once (the number of cores)")
    parser.add_argument("--targets", default="", help="comma-separated subset of the targets")
    parser.add_argument("--report", type=Path, default=None, help="also write JSON here")
    parser.add_argument("--quiet", action="store_true", help="only the final table")
    parser.add_argument("--replay", nargs="*", default=None, metavar="PATH",
                        help="run the targets over files instead of fuzzing")
    args = parser.parse_args(argv)
    if args.replay is not None:
        return _replay(args.replay)

    import importlib.util

    if importlib.util.find_spec("atheris") is None:
        print("atheris is not installed: pip install -e '.[fuzz]' (or run --replay, or the "
              "bounded targets in tests/test_fuzz_bounded.py)", file=sys.stderr)
        return 2
    from fuzz import targets

    names = [n for n in args.targets.split(",") if n] or list(targets.TARGETS)
    unknown = sorted(set(names) - set(targets.TARGETS))
    if unknown:
        parser.error(f"unknown target(s) {', '.join(unknown)}; have {', '.join(targets.TARGETS)}")
    log_dir = WORK / "logs"
    log_dir.mkdir(parents=True, exist_ok=True)
    started = time.monotonic()
    with ThreadPoolExecutor(max_workers=max(1, args.jobs)) as pool:
        results = list(pool.map(
            lambda n: _run_target(n, args.seconds, log_dir, args.quiet), names))
    wall = time.monotonic() - started
    print(_table(results, wall))
    if args.report is not None:
        args.report.write_text(json.dumps(
            {"wall_seconds": round(wall, 1), "jobs": args.jobs,
             "targets": [asdict(r) | {"outcome": r.outcome} for r in results]}, indent=2) + "\n")
    return 1 if any(r.failures for r in results) else 0


if __name__ == "__main__":
    raise SystemExit(main())
