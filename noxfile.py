"""Unit and property tests on every supported Python found on this machine (``make test``).

One session per version, ``tests-3.11``, ``tests-3.12``, ``tests-3.13``: each in its own venv
under ``.nox/`` (reused between runs), installed from the pinned ``requirements-dev.txt`` and
the package itself (editable), reinstalled only when those files change. The interop tests
(real Pipecat in its own venv) run once, on the default interpreter, from the Makefile.

The Makefile passes its ``PARALLEL`` options (pytest-xdist, ``-n 2 --dist loadfile``) to
the unit and ``lowest`` sessions as arguments; ``nox`` run by hand runs pytest in one process
unless given them after ``--``.

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


# ------------------------------------------------------------- lowest direct versions
LOWEST_SKIP_EXTRAS = ("dev", "diagrams", "pytest")
"""Extras ``lowest`` leaves out: the dev tools, pygraphviz (built from source), and pytest and
pytest-asyncio (the suite runs on them: they stay at the dev pins)."""
LOWEST_TOOLS = (
    "pytest",
    "pytest-asyncio",
    "pytest-xdist",
    "execnet",
    "hypothesis",
    "mypy",
    "types-protobuf",
)
"""The test tools, installed at the dev pins (pytest-xdist and its execnet run the Makefile's
``PARALLEL`` workers)."""
LOWEST_SKIP = (
    "tests/interop",
    "tests/test_docs.py",
    "tests/test_report_browser.py",
    "tests/test_packaging.py",
    "tests/test_toolkit_plugin.py",
    "tests/test_flood.py",
    "tests/test_soak.py",
    "tests/test_fuzz.py",
    "tests/test_dead_peers.py",
    "tests/test_benchmarks_smoke.py",
    "tests/test_lifecycle_stateful.py",
)
"""Left out at the floors (about half the time): the docs site, the browser, the package build
and the plugin's pytest runs need the dev tools, not the floors; floods, soak, fuzzing, dead
peers, benchmarks and the stateful property run load the machine and test our code's bounds,
which the default sessions check at the pinned versions."""


def _name(requirement: str) -> str:
    from packaging.requirements import Requirement

    return Requirement(requirement).name.lower().replace("_", "-")


def lowest_extras() -> list[str]:
    """The extras whose floors the ``lowest`` session installs."""
    import tomllib

    extras = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    return [e for e in extras["optional-dependencies"] if e not in LOWEST_SKIP_EXTRAS]


def lowest_constraints() -> list[str]:
    """``name==floor`` for every direct dependency with a floor; the test tools as pinned.

    The package's own dependencies and its extras (but :data:`LOWEST_SKIP_EXTRAS`) at their
    declared floors; their own dependencies resolve freely (what ``uv pip install --resolution
    lowest-direct`` does); the test tools at the dev pins.
    """
    import tomllib

    from packaging.requirements import Requirement

    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    direct = list(project["dependencies"])
    for extra in lowest_extras():
        direct += project["optional-dependencies"][extra]
    floors: dict[str, str] = {}
    for line in direct:
        req = Requirement(line)
        if req.name == project["name"]:
            continue  # an extra naming another extra of this package
        lows = [s.version for s in req.specifier if s.operator in (">=", "==", "~=")]
        if lows:
            floors[_name(line)] = lows[0]
    tools = {_name(tool) for tool in LOWEST_TOOLS}
    pins = [
        line
        for line in (ROOT / "requirements-dev.txt").read_text().splitlines()
        if line and not line.startswith("#") and _name(line) in tools
    ]
    return [f"{name}=={version}" for name, version in sorted(floors.items())] + pins


@nox.session(name="lowest")
def lowest(session: nox.Session) -> None:
    """Unit tests with every direct dependency at its lowest allowed version (make lowest)."""
    constraints = Path(session.create_tmp()) / "lowest-constraints.txt"
    constraints.write_text("\n".join(lowest_constraints()) + "\n")
    extras = ",".join(lowest_extras())
    quiet = ("--disable-pip-version-check", "-q")
    session.install(*quiet, "-c", str(constraints), "-e", f".[{extras}]", *LOWEST_TOOLS)
    session.run("python", "-m", "pip", "list", "--format=freeze", silent=False)
    skip = [f"--ignore={path}" for path in LOWEST_SKIP]
    session.run("pytest", "-q", "-p", "no:cacheprovider", *skip, *session.posargs)


# ------------------------------------------------------------- a newcomer's first run
def _fenced(path: Path, lang: str) -> list[str]:
    """The ```lang code blocks of a Markdown file, in order."""
    import re

    return re.findall(rf"^```{lang}\n(.*?)^```$", path.read_text(), re.MULTILINE | re.DOTALL)


@nox.session(name="newcomer", python=False)
def newcomer(session: nox.Session) -> None:
    """The built wheel in a fresh venv outside the checkout, the README and docs followed.

    Builds the wheel, installs it with the extras the docs name into a new venv under a
    temporary directory, then from there runs the README's quick start, ``pipecat-lifecycle
    demo`` and ``--help``, and the pytest example of docs/pytest.md as a new project would
    (pytest-asyncio in its default strict mode, no configuration).
    """
    import tempfile
    import tomllib

    work = Path(tempfile.mkdtemp(prefix="pipecat-lifecycle-newcomer-"))
    dist = work / "dist"
    session.run(
        sys.executable,
        "-m",
        "build",
        "--wheel",
        "--no-isolation",
        "--outdir",
        str(dist),
        str(ROOT),
        external=True,
        silent=True,
    )
    (wheel,) = dist.glob("*.whl")
    venv = work / "venv"
    session.run(sys.executable, "-m", "venv", str(venv), external=True)
    python = str(venv / "bin" / "python")
    extras = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"][
        "optional-dependencies"
    ]
    wanted = [extra for extra in ("testing", "pytest") if extra in extras]
    tools = [] if "pytest" in extras else ["pytest", "pytest-asyncio"]
    session.run(
        python,
        "-m",
        "pip",
        "install",
        "--disable-pip-version-check",
        "-q",
        f"{wheel}[{','.join(wanted)}]",
        *tools,
        external=True,
    )
    project = work / "project"
    project.mkdir()
    quick_start = _fenced(ROOT / "README.md", "python")[0]
    (project / "quick_start.py").write_text(quick_start)
    with session.chdir(project):
        out = session.run(python, "quick_start.py", external=True, silent=True)
        if not out or "bot: You said: Hello, bot!" not in out:
            session.error(f"the README quick start printed {out!r}")
        session.run(str(venv / "bin" / "pipecat-lifecycle"), "--help", external=True, silent=True)
        demo = session.run(
            str(venv / "bin" / "pipecat-lifecycle"), "demo", external=True, silent=True
        )
        if not demo or "turn 1 (text)" not in demo:
            session.error(f"pipecat-lifecycle demo printed {demo!r}")
        example = _fenced(ROOT / "docs" / "pytest.md", "python")[0]
        (project / "test_my_bot.py").write_text(example)
        session.run(python, "-m", "pytest", "-q", "-p", "no:cacheprovider", external=True)
    session.log(f"newcomer check passed in {work}")
    shutil.rmtree(work, ignore_errors=True)
