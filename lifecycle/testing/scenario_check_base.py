"""The bookkeeping under a scenario file's checks: collected problems, notices, typed reads.

Kept apart from :mod:`lifecycle.testing.scenario_check` (the rules themselves) so each module
reads as one job.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

from lifecycle.testing import scenario_schema as schema
from lifecycle.testing.scenario_errors import ScenarioFileError
from lifecycle.testing.yaml_source import Located

__all__ = ["CheckerBase"]


class CheckerBase:
    """One file's problems and notices, and the typed reads every rule uses."""

    def __init__(self, path: Path, *, judge_given: bool) -> None:
        self.path = path
        self.judge_given = judge_given
        self.problems: list[ScenarioFileError] = []
        self.notices: list[str] = []

    def problem(self, at: Located, key: str, text: str) -> None:
        self.problems.append(ScenarioFileError(at.path, at.line, key, text))

    def notice(self, at: Located, key: str, text: str) -> None:
        line = f"{at.path}:{at.line}: {key}: {text}"
        if line not in self.notices:
            self.notices.append(line)

    def mapping(
        self, value: Located, where: str, allowed: frozenset[str]
    ) -> dict[str, Located] | None:
        if not isinstance(value.value, dict):
            self.problem(value, "", f"{where} must be a mapping")
            return None
        items: dict[str, Located] = value.value
        for key, item in items.items():
            if key not in allowed:
                self.problem(item, key, schema.unknown_key(key, where, allowed))
        return items

    def typed(self, items: Mapping[str, Located], key: str, kind: type, what: str) -> Any:
        item = items.get(key)
        if item is None or item.value is None:
            return None
        ok = isinstance(item.value, kind) and not (
            kind is not bool and isinstance(item.value, bool)
        )
        if not ok:
            self.problem(item, key, f"must be {what}, not {item.value!r}")
            return None
        return item.value

    def text(self, items: Mapping[str, Located], key: str) -> str | None:
        item = items.get(key)
        if (
            item is not None
            and isinstance(item.value, (int, float))
            and not isinstance(item.value, bool)
        ):
            return str(item.value)  # `text_contains: 75` means the text "75"
        value: str | None = self.typed(items, key, str, "text")
        return value

    def local_file(self, item: Located, key: str) -> Path | None:
        if not isinstance(item.value, str) or not item.value.strip():
            self.problem(item, key, "must be a file path")
            return None
        path = (Path(item.path).parent / item.value).resolve()
        if not path.is_file():
            self.problem(item, key, f"no such file: {path}")
            return None
        return path
