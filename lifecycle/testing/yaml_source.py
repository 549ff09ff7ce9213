"""Scenario YAML read with the line of every value, ``!include`` resolved, and bounded.

The reading is pipecat.evals' (``pipecat/evals/scenario.py``, ``pipecat/utils/yaml.py``):
a safe loader that reads only plain decimal numbers as integers (so ``dtmf: 012`` keeps
its digits), with ``!include <path>`` splicing in another YAML file relative to the
including one. Merge keys (``<<: *defaults``) work as in PyYAML. What pipecat.evals does
not do, and this does:

* every value carries its file and line (:class:`Located`), so each error names them;
* an include cycle is refused with the chain of files; a file included twice is read once;
* aliases are shared, never expanded again, and the whole document may expand to at most
  :data:`MAX_VALUES` values (a few hundred bytes of nested aliases otherwise expand to
  gigabytes); a recursive alias, nesting deeper than :data:`MAX_DEPTH`, a file over
  :data:`MAX_FILE_BYTES` or more than :data:`MAX_FILES` files are clear errors, never a
  traceback.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any, Final

import yaml

from lifecycle.testing.scenario_errors import ScenarioFileError

__all__ = ["MAX_DEPTH", "MAX_FILES", "MAX_FILE_BYTES", "MAX_VALUES", "Located", "read_yaml"]

MAX_FILE_BYTES: Final = 1024 * 1024
"""The largest scenario or included file read (Pipecat's largest is under 20 KiB)."""
MAX_VALUES: Final = 200_000
"""The most values a file may expand to, aliases and includes counted each time used."""
MAX_DEPTH: Final = 64
"""The deepest nesting of mappings and lists."""
MAX_FILES: Final = 256
"""The most files one scenario file may include, directly or not."""

_STANDARD_TAG: Final = "tag:yaml.org,2002:"
_MERGE_TAG: Final = "tag:yaml.org,2002:merge"
_COLLECTIONS: Final = frozenset({"tag:yaml.org,2002:map", "tag:yaml.org,2002:seq"})


# libyaml's parser when PyYAML has it (tens of times faster on a large file).
_Base: Any = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


class _Loader(_Base):  # type: ignore[misc]
    """pipecat.evals' loader: plain decimal numbers only are integers (no octal, no hex)."""


_Loader.yaml_implicit_resolvers = {
    first: [(tag, rx) for tag, rx in resolvers if tag != "tag:yaml.org,2002:int"]
    for first, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()
}
_Loader.add_implicit_resolver(
    "tag:yaml.org,2002:int", re.compile(r"^[-+]?(?:0|[1-9][0-9_]*)$"), list("-+0123456789")
)


class Located:
    """A YAML value (a ``dict`` of Located, a ``list`` of Located, or a scalar) and where.

    Values reached through an alias or a repeated include are the same object: treat the
    tree as read-only.
    """

    __slots__ = ("line", "path", "value")

    def __init__(self, value: Any, line: int, path: str) -> None:
        """``value`` as read, its 1-based ``line`` in file ``path``."""
        self.value = value
        self.line = line
        self.path = path

    def plain(self) -> Any:
        """The value as plain Python (dicts, lists, scalars); shared parts stay shared."""
        return _plain(self, {})

    def __repr__(self) -> str:
        """Where it is, for debugging."""
        return f"Located({self.path}:{self.line})"


def _plain(item: Located, memo: dict[int, Any]) -> Any:
    if not isinstance(item.value, (dict, list)):
        return item.value
    known = memo.get(id(item.value))
    if known is not None:
        return known
    result: Any
    if isinstance(item.value, dict):
        result = {}
        memo[id(item.value)] = result
        result.update((k, _plain(v, memo)) for k, v in item.value.items())
    else:
        result = []
        memo[id(item.value)] = result
        result.extend(_plain(v, memo) for v in item.value)
    return result


def read_yaml(path: Path) -> Located:
    """The file's single document as :class:`Located` values, includes spliced in.

    Raises :class:`~lifecycle.testing.scenario_errors.ScenarioFileError` naming the file
    and line of the first problem.
    """
    reader = _Reader()
    root = reader.file(path, chain=(), include_line=None)
    _count(root, {}, str(path), 0)
    return root


class _Reader:
    """One scenario file's read: the files met so far and the include chain."""

    def __init__(self) -> None:
        self.files: dict[Path, Located] = {}

    def file(
        self, path: Path, *, chain: tuple[Path, ...], include_line: tuple[str, int] | None
    ) -> Located:
        name = str(path)
        resolved = path.resolve()
        if resolved in chain:
            cycle = " -> ".join(str(p) for p in (*chain, resolved))
            where, line = include_line or (name, 0)
            raise ScenarioFileError(where, line, "!include", f"an include cycle: {cycle}")
        cached = self.files.get(resolved)
        if cached is not None:
            return cached
        if len(self.files) >= MAX_FILES:
            where, line = include_line or (name, 0)
            raise ScenarioFileError(where, line, "!include", f"more than {MAX_FILES} files")
        node, loader = self._compose(path, include_line)
        try:
            located = _Converter(self, loader, name, (*chain, resolved)).convert(node, 0)
        finally:
            loader.dispose()
        self.files[resolved] = located
        return located

    @staticmethod
    def _compose(path: Path, include_line: tuple[str, int] | None) -> tuple[Any, _Loader]:
        name = str(path)
        where, line = include_line or (name, 0)
        try:
            size = path.stat().st_size
            if size > MAX_FILE_BYTES:
                raise ScenarioFileError(
                    name, 0, "", f"the file is {size} bytes; the most read is {MAX_FILE_BYTES}"
                )
            raw = path.read_bytes()
        except FileNotFoundError:
            raise ScenarioFileError(where, line, "", f"no such file: {path}") from None
        except OSError as exc:
            raise ScenarioFileError(name, 0, "", f"cannot read the file ({exc})") from None
        try:
            text = raw.decode("utf-8")
        except UnicodeDecodeError as exc:
            at = raw[: exc.start].count(b"\n") + 1
            raise ScenarioFileError(name, at, "", "not UTF-8 text") from None
        loader = _Loader(text)
        try:
            _check_shape(text, name)
            node = loader.get_single_node()
        except yaml.MarkedYAMLError as exc:
            loader.dispose()
            mark = exc.problem_mark or exc.context_mark
            at = mark.line + 1 if mark is not None else 0
            raise ScenarioFileError(name, at, "", f"not valid YAML: {exc.problem}") from None
        except yaml.YAMLError as exc:
            loader.dispose()
            raise ScenarioFileError(name, 0, "", f"not valid YAML: {exc}") from None
        except RecursionError:
            loader.dispose()
            raise ScenarioFileError(name, 0, "", f"nested deeper than {MAX_DEPTH} levels") from None
        if node is None:
            loader.dispose()
            raise ScenarioFileError(name, 1, "", "the file is empty")
        return node, loader


def _check_shape(text: str, name: str) -> None:
    """Refuse nesting deeper than MAX_DEPTH and too many values, from the parser's events.

    libyaml's composer recurses in C (deep nesting would crash the process), and
    composing a huge document is slow: the event stream is flat, cheap and bounded.
    """
    depth = 0
    for count, event in enumerate(yaml.parse(text, Loader=_Loader)):
        if isinstance(event, (yaml.SequenceStartEvent, yaml.MappingStartEvent)):
            depth += 1
            if depth > MAX_DEPTH:
                at = event.start_mark.line + 1 if event.start_mark is not None else 0
                raise ScenarioFileError(name, at, "", f"nested deeper than {MAX_DEPTH} levels")
        elif isinstance(event, (yaml.SequenceEndEvent, yaml.MappingEndEvent)):
            depth -= 1
        if count > 2 * MAX_VALUES:
            raise ScenarioFileError(name, 0, "", f"more than {MAX_VALUES} values")


class _Converter:
    """PyYAML nodes of one file to :class:`Located` (aliases shared, tags checked)."""

    def __init__(
        self, reader: _Reader, loader: _Loader, name: str, chain: tuple[Path, ...]
    ) -> None:
        self.reader, self.loader, self.name, self.chain = reader, loader, name, chain
        self.done: dict[int, Located] = {}
        self.open: set[int] = set()

    def error(self, node: Any, key: str, problem: str) -> ScenarioFileError:
        return ScenarioFileError(self.name, node.start_mark.line + 1, key, problem)

    def convert(self, node: Any, depth: int) -> Located:
        known = self.done.get(id(node))
        if known is not None:
            return known
        if id(node) in self.open:
            raise self.error(node, "", "a recursive alias (a value that contains itself)")
        if depth > MAX_DEPTH:
            raise self.error(node, "", f"nested deeper than {MAX_DEPTH} levels")
        self.open.add(id(node))
        try:
            located = self._convert(node, depth)
        finally:
            self.open.discard(id(node))
        self.done[id(node)] = located
        return located

    def _convert(self, node: Any, depth: int) -> Located:
        line = node.start_mark.line + 1
        if node.tag == "!include":
            return self._include(node)
        if isinstance(node, (yaml.MappingNode, yaml.SequenceNode)) and node.tag not in _COLLECTIONS:
            raise self.error(node, node.tag, "unknown YAML tag (only !include is known)")
        if isinstance(node, yaml.MappingNode):
            return Located(self._mapping(node, depth), line, self.name)
        if isinstance(node, yaml.SequenceNode):
            items = [self.convert(item, depth + 1) for item in node.value]
            return Located(items, line, self.name)
        if not node.tag.startswith(_STANDARD_TAG):
            raise self.error(node, node.tag, "unknown YAML tag (only !include is known)")
        try:
            return Located(self.loader.construct_object(node), line, self.name)
        except yaml.MarkedYAMLError as exc:
            raise self.error(node, "", f"not a valid value ({exc.problem})") from None
        except Exception as exc:  # a bad date, base64... from the constructor: say which
            raise self.error(node, "", f"not a valid value ({exc})") from None

    def _mapping(self, node: Any, depth: int) -> dict[str, Located]:
        explicit: dict[str, Located] = {}
        merged: dict[str, Located] = {}
        for key_node, value_node in node.value:
            if key_node.tag == _MERGE_TAG:
                for source in self._merge_sources(value_node, depth):
                    for key, value in source.items():
                        merged.setdefault(key, value)
                continue
            if not isinstance(key_node, yaml.ScalarNode) or not key_node.tag.startswith(
                _STANDARD_TAG
            ):
                raise self.error(key_node, "", "a key must be a plain name")
            key = self.loader.construct_scalar(key_node)
            if key_node.tag != "tag:yaml.org,2002:str":
                raise self.error(key_node, str(key), "a key must be a name (quote it)")
            if key in explicit:
                raise self.error(key_node, key, "given twice")
            value = self.convert(value_node, depth + 1)
            # The entry is located at its key (errors point there); the value stays shared.
            explicit[key] = Located(value.value, key_node.start_mark.line + 1, self.name)
        return {**merged, **explicit}

    def _merge_sources(self, node: Any, depth: int) -> list[dict[str, Located]]:
        nodes = node.value if isinstance(node, yaml.SequenceNode) else [node]
        sources = []
        for item in nodes:
            value = self.convert(item, depth + 1).value
            if not isinstance(value, dict):
                raise self.error(item, "<<", "merges mappings only")
            sources.append(value)
        return sources

    def _include(self, node: Any) -> Located:
        if not isinstance(node, yaml.ScalarNode) or not str(node.value).strip():
            raise self.error(node, "!include", "expects a file path")
        target = Path(self.name).parent / str(node.value).strip()
        if not target.is_file():
            raise self.error(node, "!include", f"no such file: {target}")
        line = node.start_mark.line + 1
        return self.reader.file(target, chain=self.chain, include_line=(self.name, line))


def _count(item: Located, memo: dict[int, int], name: str, depth: int) -> int:
    """How many values ``item`` expands to (each use of a shared value counted)."""
    if not isinstance(item.value, (dict, list)):
        return 1
    known = memo.get(id(item.value))
    if known is not None:
        return known
    if depth > 4 * MAX_DEPTH:  # nesting that goes on through includes
        raise ScenarioFileError(item.path, item.line, "", f"nested deeper than {4 * MAX_DEPTH}")
    total = 1
    children = item.value.values() if isinstance(item.value, dict) else item.value
    for child in children:
        total += _count(child, memo, name, depth + 1)
        if total > MAX_VALUES:
            raise ScenarioFileError(
                name,
                0,
                "",
                f"the file expands to more than {MAX_VALUES} values "
                "(YAML aliases or includes used over and over)",
            )
    memo[id(item.value)] = total
    return total
