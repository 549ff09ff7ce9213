"""The distribution can be released: metadata, extras, floors, wheel and sdist contents.

The wheel and sdist are built from this tree without build isolation (the pinned setuptools of
the dev venv; no index is contacted). Installing the floors and the built wheel in fresh venvs
are nox sessions (``lowest``, ``newcomer``; ``make test`` runs them): they need the index.
"""

from __future__ import annotations

import email.parser
import importlib.metadata
import subprocess
import sys
import tarfile
import tomllib
import zipfile
from pathlib import Path
from typing import Any

import pytest

REPO = Path(__file__).resolve().parents[1]
PYPROJECT: dict[str, Any] = tomllib.loads((REPO / "pyproject.toml").read_text())
PROJECT: dict[str, Any] = PYPROJECT["project"]
BUILD_TIMEOUT = 240.0


def _needs(distribution: str) -> None:
    try:
        importlib.metadata.version(distribution)
    except importlib.metadata.PackageNotFoundError:
        pytest.skip(f"{distribution} is not installed (pip install -r requirements-dev.txt)")


@pytest.fixture(scope="module")
def dist(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A wheel and an sdist of this tree, built once for the module."""
    _needs("build")
    out = tmp_path_factory.mktemp("dist")
    subprocess.run(
        [sys.executable, "-m", "build", "--no-isolation", "--outdir", str(out), str(REPO)],
        check=True,
        capture_output=True,
        text=True,
        timeout=BUILD_TIMEOUT,
    )
    return out


def _metadata(dist: Path) -> Any:
    (wheel,) = dist.glob("*.whl")
    with zipfile.ZipFile(wheel) as archive:
        name = next(n for n in archive.namelist() if n.endswith(".dist-info/METADATA"))
        return email.parser.Parser().parsestr(archive.read(name).decode())


def test_license_is_pep_639_metadata() -> None:
    assert PROJECT["license"] == "BSD-2-Clause"
    assert PROJECT["license-files"] == ["LICENSE"]
    assert "BSD 2-Clause" in (REPO / "LICENSE").read_text()
    # PEP 639: a license expression and a License classifier must not both be given.
    assert not [c for c in PROJECT["classifiers"] if c.startswith("License ::")]


def test_classifiers_urls_and_the_pytest_entry_point() -> None:
    assert "Framework :: Pytest" in PROJECT["classifiers"]
    assert {"Homepage", "Documentation", "Changelog", "Issues"} <= set(PROJECT["urls"])
    plugins = PROJECT["entry-points"]["pytest11"]
    assert plugins == {"pipecat_lifecycle": "lifecycle.testing.pytest_plugin"}


def test_extras_of_the_contract() -> None:
    extras: dict[str, list[str]] = PROJECT["optional-dependencies"]
    assert {"testing", "load", "locust", "webrtc"} <= set(extras)
    # `load` does not bring Locust; `locust` does; `load --scenario` gets the testing extra.
    assert not any(req.startswith("locust") for req in extras["load"])
    assert any(req.startswith("locust") for req in extras["locust"])
    assert "pipecat-lifecycle[testing]" in extras["load"]


def test_protobuf_floor_imports_the_generated_code() -> None:
    (protobuf,) = [d for d in PROJECT["dependencies"] if d.startswith("protobuf")]
    assert protobuf.split(";")[0].split("#")[0].strip() == "protobuf>=5.27.2"


def test_wheel_metadata_and_contents(dist: Path) -> None:
    _needs("check-wheel-contents")
    meta = _metadata(dist)
    assert meta["License-Expression"] == "BSD-2-Clause"
    assert meta["License-File"] == "LICENSE"
    assert "Framework :: Pytest" in meta.get_all("Classifier")
    assert {"testing", "load", "locust", "webrtc"} <= set(meta.get_all("Provides-Extra"))
    (wheel,) = dist.glob("*.whl")
    # Every check but W009 (two top-level packages: the contract names both).
    result = subprocess.run(
        [sys.executable, "-m", "check_wheel_contents", "--ignore", "W009", str(wheel)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    with zipfile.ZipFile(wheel) as archive:
        names = archive.namelist()
    assert "lifecycle/report_assets/report.js" in names
    assert "transports/_pb/frames_pb2.py" in names
    assert not [n for n in names if n.startswith("tests/")]


def test_sdist_ships_no_tests_that_could_not_run(dist: Path) -> None:
    (sdist,) = dist.glob("*.tar.gz")
    with tarfile.open(sdist) as archive:
        names = [n.split("/", 1)[1] for n in archive.getnames() if "/" in n]
    assert "LICENSE" in names and "CHANGELOG.md" in names
    assert not [n for n in names if n.startswith("tests/")]
