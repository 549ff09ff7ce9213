"""The docs site: it builds with --strict, a broken reference fails it, its examples run.

Code blocks fenced as ```` ```{.python .runnable} ```` are complete programs (against the
loopback or testing bots); each runs in a fresh interpreter and must exit 0.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
DOCS = REPO / "docs"
RUNNABLE = re.compile(r"^```\{\.python \.runnable\}\n(.*?)^```$", re.MULTILINE | re.DOTALL)
BUILD_TIMEOUT = 180.0
EXAMPLE_TIMEOUT = 60.0


def mkdocs() -> list[str]:
    """The mkdocs command; skip locally (fail in CI) when it is not installed."""
    try:
        import mkdocs  # noqa: F401
    except ImportError:
        if os.environ.get("CI"):
            pytest.fail("mkdocs is not installed: CI must build the docs")
        pytest.skip("mkdocs is not installed (pip install -r requirements-dev.txt)")
    return [sys.executable, "-m", "mkdocs"]


def env() -> dict[str, str]:
    return {**os.environ, "PYTHONPATH": str(REPO), "NO_MKDOCS_2_WARNING": "1"}


def build(config: Path, site: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*mkdocs(), "build", "--strict", "--config-file", str(config), "--site-dir", str(site)],
        cwd=config.parent,
        env=env(),
        capture_output=True,
        text=True,
        timeout=BUILD_TIMEOUT,
    )


def examples() -> list[tuple[str, str]]:
    found = [
        (f"{page.name}#{n}", code)
        for page in sorted(DOCS.glob("*.md"))
        for n, code in enumerate(RUNNABLE.findall(page.read_text(encoding="utf-8")), 1)
    ]
    assert len(found) >= 8, "the pages lost their runnable examples"
    return found


def test_the_site_builds_strictly(tmp_path: Path) -> None:
    result = build(REPO / "mkdocs.yml", tmp_path / "site")
    assert result.returncode == 0, result.stderr[-4000:]
    reference = (tmp_path / "site" / "reference" / "index.html").read_text(encoding="utf-8")
    for name in ("PipecatClient", "SessionTrace", "Turn", "render_html", "SessionLifecycle"):
        assert f'id="{name}' in reference or f'.{name}"' in reference, name
    lifecycle = (tmp_path / "site" / "lifecycle" / "index.html").read_text(encoding="utf-8")
    assert "stateDiagram-v2" in lifecycle  # diagrams/lifecycle.mmd, included


def test_a_broken_reference_fails_the_build(tmp_path: Path) -> None:
    copy = tmp_path / "repo"
    shutil.copytree(DOCS, copy / "docs")
    shutil.copy(REPO / "mkdocs.yml", copy / "mkdocs.yml")
    shutil.copytree(REPO / "diagrams", copy / "diagrams")
    page = copy / "docs" / "reference.md"
    page.write_text(page.read_text() + "\nSee [the client][lifecycle.client.NoSuchClient].\n")
    result = build(copy / "mkdocs.yml", tmp_path / "site")
    assert result.returncode != 0
    assert "NoSuchClient" in result.stderr


@pytest.mark.parametrize(("where", "code"), examples(), ids=[w for w, _ in examples()])
def test_the_examples_run(where: str, code: str) -> None:
    result = subprocess.run(
        [sys.executable, "-c", code],
        cwd=REPO,
        env=env(),
        capture_output=True,
        text=True,
        timeout=EXAMPLE_TIMEOUT,
    )
    assert result.returncode == 0, f"{where}\n{result.stdout}\n{result.stderr[-3000:]}"


def test_the_readme_links_to_the_docs() -> None:
    readme = (REPO / "README.md").read_text(encoding="utf-8")
    assert "docs/" in readme and "make docs" in readme
