"""Release packaging: metadata, the version, the sdist's contents, and the wheel installed into a
fresh virtualenv with its console script run there."""

from __future__ import annotations

import importlib.util
import os
import re
import subprocess
import sys
import tarfile
import venv
from pathlib import Path

import pytest

import savestate
from savestate.cli import main, version_text

tomllib = pytest.importorskip("tomllib")  # Python 3.11+

ROOT = Path(__file__).resolve().parent.parent
PYPROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))
PROJECT = PYPROJECT["project"]

needs_build = pytest.mark.skipif(
    importlib.util.find_spec("build") is None, reason="`build` is not installed (the test extra)"
)


def test_distribution_name_is_not_the_import_name() -> None:
    # The index's `savestate` is an unrelated project: installing it would shadow this one.
    assert PROJECT["name"] == "savestate-proto"


def test_install_hints_name_the_distribution() -> None:
    texts = [ROOT / "README.md", *sorted((ROOT / "docs").rglob("*.md"))]
    texts += sorted((ROOT / "savestate").rglob("*.py"))
    for path in texts:
        text = path.read_text(encoding="utf-8")
        assert not re.search(r"pip install[^`\n]*['\" ]savestate[\[' \"`\n]", text), path


def test_license_is_spdx_and_shipped() -> None:
    assert PROJECT["license"] == "MIT"
    assert PROJECT["license-files"] == ["LICENSE"]
    assert (ROOT / "LICENSE").read_text(encoding="utf-8").startswith("MIT License")


def test_python_version_classifiers() -> None:
    versions = {
        c.rsplit(" :: ", 1)[1] for c in PROJECT["classifiers"]
        if re.fullmatch(r"Programming Language :: Python :: 3\.\d+", c)
    }
    assert versions == {"3.10", "3.11", "3.12", "3.13"}
    assert PROJECT["requires-python"] == ">=3.10"


def test_user_facing_extras_use_ranges_not_pins() -> None:
    for extra, requirements in PROJECT["optional-dependencies"].items():
        for requirement in requirements:
            assert "==" not in requirement, (extra, requirement)
    # The benchmarks and fuzz targets do not ship in the wheel: no extra names them.
    assert set(PROJECT["optional-dependencies"]) == {"test", "check", "betterproto", "docs"}
    assert any(r.startswith("build") for r in PROJECT["optional-dependencies"]["test"])


def test_version_is_one_value_everywhere(capsys: pytest.CaptureFixture[str]) -> None:
    assert re.fullmatch(r"\d+\.\d+\.\d+", savestate.__version__)
    with pytest.raises(SystemExit) as stop:
        main(["--version"])
    assert stop.value.code == 0
    out = capsys.readouterr().out
    assert out == version_text() + "\n"  # the codec path: tests/test_cli_release.py
    assert out.startswith(f"savestate {savestate.__version__} (codec: ")
    changelog = (ROOT / "CHANGELOG.md").read_text(encoding="utf-8")
    sections = re.findall(r"^## \[([^\]]+)\]", changelog, re.M)
    assert sections and sections[0] == savestate.__version__


def _tracked(*folders: str) -> set[str]:
    done = subprocess.run(
        ["git", "ls-files", *folders], cwd=ROOT, capture_output=True, text=True, check=False
    )
    if done.returncode != 0:
        pytest.skip("not a git checkout")
    return {line for line in done.stdout.splitlines() if (ROOT / line).exists()}


@pytest.fixture(scope="module")
def dist(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("dist")
    # --no-isolation: build with this environment's setuptools, without the index.
    done = subprocess.run(
        [sys.executable, "-m", "build", "--no-isolation", "--outdir", str(out), str(ROOT)],
        capture_output=True, text=True, check=False, timeout=600,
    )
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    return out


@needs_build
def test_sdist_holds_what_its_tests_need(dist: Path) -> None:
    (sdist,) = dist.glob("savestate_proto-*.tar.gz")
    with tarfile.open(sdist) as tar:
        names = {name.split("/", 1)[1] for name in tar.getnames() if "/" in name}
    wanted = _tracked("tests", "examples", "benchmarks", "fuzz", "docs", "savestate")
    wanted |= {"LICENSE", "README.md", "CHANGELOG.md", "mkdocs.yml", "pyproject.toml"}
    assert not wanted - names, sorted(wanted - names)[:20]
    assert not {n for n in names if "__pycache__" in n or n.endswith(".pyc")}


@needs_build
def test_sdist_tests_collect_from_the_unpacked_sdist(dist: Path, tmp_path: Path) -> None:
    (sdist,) = dist.glob("savestate_proto-*.tar.gz")
    with tarfile.open(sdist) as tar:
        tar.extractall(tmp_path, filter="data")
    (unpacked,) = tmp_path.iterdir()
    env = dict(os.environ, PYTHONPATH=str(unpacked))
    done = subprocess.run(
        [sys.executable, "-m", "pytest", "--collect-only", "-q", "-p", "no:cacheprovider"],
        cwd=unpacked, env=env, capture_output=True, text=True, check=False, timeout=300,
    )
    assert done.returncode == 0, done.stdout[-3000:]
    assert "error" not in done.stdout.lower().splitlines()[-1]


@needs_build
def test_wheel_installs_into_a_fresh_virtualenv(dist: Path, tmp_path: Path) -> None:
    (wheel,) = dist.glob("savestate_proto-*.whl")
    env_dir = tmp_path / "venv"
    venv.create(env_dir, with_pip=True)
    bin_dir = env_dir / ("Scripts" if os.name == "nt" else "bin")
    # Without PYTHONPATH: a checkout or sdist on it (with its .egg-info) would make pip take
    # the distribution as installed already.
    clean = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV")}
    install = subprocess.run(
        [str(bin_dir / "python"), "-m", "pip", "install", "-q", str(wheel)],
        env=clean, capture_output=True, text=True, check=False, timeout=600,
    )
    assert install.returncode == 0, install.stderr[-3000:]
    module = tmp_path / "pkg_state.py"
    module.write_text(
        "from savestate import Protobuf, field, savedstate, u8\n\n"
        "@savedstate\nclass State(Protobuf, package='wheel.check'):\n    a: u8 = field(1)\n",
        encoding="utf-8",
    )
    version = subprocess.run(
        [str(bin_dir / "savestate"), "--version"], cwd=tmp_path, env=clean,
        capture_output=True, text=True, check=False, timeout=120,
    )
    # The wheel has the C accelerator when a compiler was found: either codec path is right.
    codec = r"\(codec: (C accelerator|pure Python, .+)\)"
    line = rf"savestate {re.escape(savestate.__version__)} {codec}"
    assert re.fullmatch(line + "\n", version.stdout), (version.stdout, version.stderr)
    proto = subprocess.run(
        [str(bin_dir / "savestate"), "proto", "pkg_state", "-o", "out"], cwd=tmp_path,
        env=clean, capture_output=True, text=True, check=False, timeout=120,
    )
    assert proto.returncode == 0, proto.stderr
    assert proto.stdout.split() == [str(Path("out") / "wheel.check.proto")]
    # The installed package is the wheel's, not this checkout's.
    where = subprocess.run(
        [str(bin_dir / "python"), "-c", "import savestate; print(savestate.__file__)"],
        cwd=tmp_path, env=clean, capture_output=True, text=True, check=False,
    )
    assert str(env_dir) in where.stdout
    assert (Path(where.stdout.strip()).parent / "py.typed").exists()
