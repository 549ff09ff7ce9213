"""Which files of ``test FILE|DIR...`` are scenario files.

A directory stands for every ``*.yaml`` / ``*.yml`` under it that is a scenario file; a
fragment (a top-level list, or a mapping with no ``turns:``, ``scenarios:`` or
``persona:``) or a manifest found there is skipped with one line saying so. A file named
on the command line is always loaded, so a fragment there is an error. A file that does
not parse counts as a scenario file, so its error is reported, never skipped.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Final

from lifecycle.testing.scenario_check import file_kind
from lifecycle.testing.scenario_errors import ScenarioFileError
from lifecycle.testing.yaml_source import read_yaml

__all__ = ["MAX_FILES", "collect_scenario_files"]

MAX_FILES: Final = 10_000
"""The most files one run reads (a directory with more is a mistake)."""


def collect_scenario_files(paths: Sequence[str]) -> tuple[list[Path], list[str], list[str]]:
    """``(files to load, skipped lines, problems)`` for the command line's paths."""
    files: list[Path] = []
    skipped: list[str] = []
    problems: list[str] = []
    for name in paths:
        path = Path(name)
        if path.is_dir():
            found = sorted({*path.rglob("*.yaml"), *path.rglob("*.yml")})
            if not found:
                problems.append(f"{name}: no *.yaml or *.yml file in this directory")
            for item in found[:MAX_FILES]:
                kind = _kind(item)
                if kind == "scenario":
                    files.append(item)
                else:
                    skipped.append(f"skipped {item}: {_WHY[kind]}")
            if len(found) > MAX_FILES:
                problems.append(f"{name}: more than {MAX_FILES} YAML files")
        elif path.is_file():
            files.append(path)
        else:
            problems.append(f"{name}: no such file or directory")
    seen: set[Path] = set()
    unique = []
    for path in files:
        if path.resolve() not in seen:
            seen.add(path.resolve())
            unique.append(path)
    return unique, skipped, problems


_WHY: Final = {
    "fragment": "a fragment other files include (no turns:, scenarios: or persona:)",
    "manifest": "a manifest (a suite of bots), not supported: its scenario files run directly",
}


def _kind(path: Path) -> str:
    try:
        return file_kind(read_yaml(path))
    except ScenarioFileError:
        return "scenario"
