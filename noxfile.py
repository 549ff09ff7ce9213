"""Unit and property tests on every supported Python found on this machine (``make test``).

One session per version, ``tests-3.11``, ``tests-3.12``, ``tests-3.13``: each in its own venv
under ``.nox/`` (reused between runs), installed from the pinned ``requirements-dev.txt`` and
the package itself (editable), reinstalled only when those files change. The interop tests
(real Pipecat in its own venv) run once, on the default interpreter, from the Makefile.

An interpreter counts as found when ``python3.X`` on PATH runs (pyenv shims that answer
"command not found" do not), or else ``~/.pyenv/versions/3.X.*/bin/python3.X`` exists. A
version not found is skipped with a printed note, never an error; nox never downloads one.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import sys
from pathlib import Path

import nox

SUPPORTED = ("3.11", "3.12", "3.13")
"""Keep in step with pyproject.toml's classifiers (tests/test_architecture.py checks it)."""

ROOT = Path(__file__).resolve().parent
PINS = ("requirements-dev.txt", "pyproject.toml")

nox.options.reuse_venv = "yes"
nox.options.download_python = "never"
nox.options.default_venv_backend = "venv"
nox.options.sessions = [f"tests-{v}" for v in SUPPORTED]


def _version_of(python: str) -> str | None:
    """``X.Y`` of an interpreter, or None when it does not run."""
    try:
        out = subprocess.run(
            [python, "-c", "import sys; print('%d.%d' % sys.version_info[:2])"],
            capture_output=True,
            text=True,
            timeout=30,
            check=False,
        )
    except OSError:
        return None
    return out.stdout.strip() if out.returncode == 0 else None


def _pyenv_key(path: Path) -> tuple[int, ...]:
    """Sort key of ``.../versions/3.12.1/bin/...``: the numeric version parts."""
    parts = path.parent.parent.name.split(".")
    return tuple(int(p) if p.isdigit() else -1 for p in parts)


def find_python(version: str) -> str | None:
    """A working interpreter of ``version`` (``X.Y``): PATH first, then pyenv's versions."""
    on_path = shutil.which(f"python{version}")
    if on_path and _version_of(on_path) == version:
        return on_path
    if f"{sys.version_info.major}.{sys.version_info.minor}" == version:
        return getattr(sys, "_base_executable", None) or sys.executable
    root = Path(os.environ.get("PYENV_ROOT", Path.home() / ".pyenv")) / "versions"
    candidates = sorted(root.glob(f"{version}.*/bin/python{version}"), key=_pyenv_key)
    for candidate in reversed(candidates):
        if _version_of(str(candidate)) == version:
            return str(candidate)
    return None


def _install(session: nox.Session) -> None:
    """Install the pins and the package, unless this venv already has these exact files."""
    digest = hashlib.sha256(b"".join((ROOT / name).read_bytes() for name in PINS)).hexdigest()
    venv = session.virtualenv.location
    stamp = Path(venv) / ".installed" if venv else None
    if stamp is not None and stamp.exists() and stamp.read_text() == digest:
        return
    session.install("--disable-pip-version-check", "-q", "-r", "requirements-dev.txt")
    session.install("--disable-pip-version-check", "-q", "--no-deps", "-e", ".")
    if stamp is not None:
        stamp.write_text(digest)


def _unit_session(version: str, python: str) -> None:
    def tests(session: nox.Session) -> None:
        _install(session)
        session.run("python", "--version")
        session.run("pytest", "-q", "--ignore=tests/interop", *session.posargs)

    tests.__doc__ = f"Unit and property tests on Python {version} ({python})."
    nox.session(python=python, name=f"tests-{version}", tags=["unit"])(tests)


for _version in SUPPORTED:
    _python = find_python(_version)
    if _python is None:
        print(
            f"note: Python {_version} not found (python{_version} on PATH or "
            f"~/.pyenv/versions/{_version}.*): its tests are skipped",
            file=sys.stderr,
        )
        nox.options.sessions.remove(f"tests-{_version}")
    else:
        _unit_session(_version, _python)
