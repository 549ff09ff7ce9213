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
    # The state diagram is the exported SVG (offline), not Mermaid drawn by a CDN script.
    assert 'src="../diagrams/lifecycle.svg"' in lifecycle
    svg = (tmp_path / "site" / "diagrams" / "lifecycle.svg").read_bytes()
    assert svg == (REPO / "diagrams" / "lifecycle.svg").read_bytes()
    assert 'class="mermaid"' not in lifecycle


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The site, built once for the tests that read it."""
    out = tmp_path_factory.mktemp("site")
    result = build(REPO / "mkdocs.yml", out)
    assert result.returncode == 0, result.stderr[-4000:]
    return out


def pages(site: Path) -> dict[str, str]:
    return {
        str(path.relative_to(site)): path.read_text(encoding="utf-8")
        for path in site.rglob("*.html")
    }


def test_cli_page_is_every_commands_help(site: Path) -> None:
    import html

    sys.path.insert(0, str(REPO / "tools"))
    try:
        from mkdocs_hooks import command_help
    finally:
        sys.path.remove(str(REPO / "tools"))
    text = html.unescape(re.sub(r"<[^>]+>", "", (site / "cli" / "index.html").read_text()))
    helps = command_help()
    assert {command for command, _ in helps} >= {
        f"pipecat-lifecycle {name} --help" for name in ("connect", "test", "load", "demo")
    }
    for command, help_text in helps:
        assert f"$ {command}" in text
        for line in help_text.strip().splitlines():
            assert line.strip() in text, (command, line)
    assert "exit codes:" in text


def test_events_page_is_the_generated_table(site: Path) -> None:
    from lifecycle.events import EVENT_NAMES

    text = (site / "events" / "index.html").read_text(encoding="utf-8")
    for name in EVENT_NAMES:
        assert f"<code>{name}</code>" in text, name
    assert "generated:" not in text


def test_changelog_page(site: Path) -> None:
    text = (site / "changelog" / "index.html").read_text(encoding="utf-8")
    assert "Unreleased" in text and "0.2.0" in text


def test_docstring_roles_render_as_links(site: Path) -> None:
    for name, text in pages(site).items():
        assert not re.search(r":(meth|class|func|attr|mod|exc|data):", text), name
    reference = (site / "reference" / "index.html").read_text(encoding="utf-8")
    assert reference.count("autorefs-internal") >= 30


def test_the_site_reads_offline(site: Path) -> None:
    for name, text in pages(site).items():
        loads = re.findall(r'<(?:script|link|img)\b[^>]*(?:src|href)="((?:https?:)?//[^"]+)"', text)
        assert not loads, (name, loads)
        assert "fonts.googleapis" not in text, name


def test_the_site_names_no_file_outside_the_repository(site: Path) -> None:
    for name, text in pages(site).items():
        assert "API.md" not in text and "shared/" not in text, name


def test_docs_name_no_file_outside_the_repository() -> None:
    for page in [*DOCS.glob("*.md"), REPO / "README.md", REPO / "CONTRIBUTING.md"]:
        text = page.read_text(encoding="utf-8")
        assert "shared/" not in text and "API.md" not in text, page.name


def test_a_broken_reference_fails_the_build(tmp_path: Path) -> None:
    copy = tmp_path / "repo"
    shutil.copytree(DOCS, copy / "docs")
    shutil.copy(REPO / "mkdocs.yml", copy / "mkdocs.yml")
    shutil.copytree(REPO / "diagrams", copy / "diagrams")
    shutil.copytree(REPO / "tools", copy / "tools")
    shutil.copy(REPO / "CHANGELOG.md", copy / "CHANGELOG.md")
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
