"""mkdocs hooks: the pages' generated parts, made from the code at build time.

A page asks for a generated part with a marker line; the hook puts the part in its place:

``<!-- generated:events -->``
    The events table (:func:`lifecycle.events.event_table_markdown`, as the README's).
``<!-- generated:cli -->``
    The command-line reference: ``pipecat-lifecycle --help`` and every command's ``--help``
    (with its exit codes), from the parser the command line itself uses.
``<!-- generated:changelog -->``
    CHANGELOG.md.

The state diagram (``diagrams/lifecycle.svg``, outside ``docs/``) is added to the site as a
file, so pages show the SVG itself: no script from a CDN draws it. Notes in docstrings and the
changelog that name the project's contract (``API.md §12``, a file outside this repository)
are left out of the pages: a parenthesised one goes, any other reads "the contract".
"""

from __future__ import annotations

import argparse
import contextlib
import os
import re
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from mkdocs.structure.files import File, Files

REPO = Path(__file__).resolve().parents[1]
MARKER = re.compile(r"^<!-- generated:(\w+) -->$", re.MULTILINE)
CONTRACT_NOTE = re.compile(r"\s*\(API\.md\s+§\d+(?:,\s*§\d+)*\)")
CONTRACT = re.compile(r"API\.md\s+§\d+(?:,\s*§\d+)*")
HELP_WIDTH = "100"
"""``--help`` is formatted for this many columns, whatever the terminal building the site."""


@contextlib.contextmanager
def _columns(width: str) -> Iterator[None]:
    old = os.environ.get("COLUMNS")
    os.environ["COLUMNS"] = width
    try:
        yield
    finally:
        if old is None:
            del os.environ["COLUMNS"]
        else:
            os.environ["COLUMNS"] = old


def command_help() -> list[tuple[str, str]]:
    """``(command line, its --help text)`` for the program and each of its commands."""
    from lifecycle.cli import build_parser

    with _columns(HELP_WIDTH):
        parser = build_parser()
        found = [("pipecat-lifecycle --help", parser.format_help())]
        for action in parser._actions:
            if isinstance(action, argparse._SubParsersAction):
                for name, sub in action.choices.items():
                    found.append((f"pipecat-lifecycle {name} --help", sub.format_help()))
    return found


def cli_reference() -> str:
    """Markdown: one section per command with its ``--help`` as printed."""
    parts = []
    for command, text in command_help():
        title = command.removesuffix(" --help")
        parts.append(f"## `{title}`\n\n```text\n$ {command}\n{text.rstrip()}\n```\n")
    return "\n".join(parts)


def events_table() -> str:
    """Markdown: the events table, as the README's."""
    from lifecycle.events import event_table_markdown

    return event_table_markdown()


def changelog() -> str:
    """CHANGELOG.md, its title dropped (the page has its own)."""
    text = (REPO / "CHANGELOG.md").read_text(encoding="utf-8")
    return re.sub(r"\A# [^\n]*\n", "", text)


GENERATORS: dict[str, Callable[[], str]] = {
    "events": events_table,
    "cli": cli_reference,
    "changelog": changelog,
}


def on_page_markdown(markdown: str, **kwargs: Any) -> str:
    """Put each generated part in place of its marker; an unknown marker fails the build."""

    def one(match: re.Match[str]) -> str:
        name = match.group(1)
        if name not in GENERATORS:
            raise ValueError(f"unknown generated part {name!r} (known: {sorted(GENERATORS)})")
        return GENERATORS[name]().rstrip("\n")

    return MARKER.sub(one, markdown)


def on_page_content(html: str, **kwargs: Any) -> str:
    """Leave the notes on the contract (outside this repository) out of every page."""
    return CONTRACT.sub("the contract", CONTRACT_NOTE.sub("", html))


def on_files(files: Files, config: Any, **kwargs: Any) -> Files:
    """Add the exported state diagram (diagrams/lifecycle.svg) to the site."""
    svg = REPO / "diagrams" / "lifecycle.svg"
    files.append(File.generated(config, "diagrams/lifecycle.svg", abs_src_path=str(svg)))
    return files
