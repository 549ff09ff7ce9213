"""Redaction never garbles the library's own sentences.

Every string literal of ``lifecycle/`` and ``transports/`` (f-strings with their fields as
placeholders; docstrings, which quote URLs on purpose, and ``re`` patterns left out) goes through
:func:`~lifecycle.redact.redact_text` and :func:`~lifecycle.redact.redact_body`, as an
error message or a log line would: none may come out with a ``?***`` it did not have
(the bug was "is the bot server running on that port?***").
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

import pytest

from lifecycle.redact import redact_body, redact_text
from tests.support.source import parse_file

REPO = Path(__file__).resolve().parent.parent
SOURCES = sorted(
    p
    for folder in ("lifecycle", "transports")
    for p in (REPO / folder).rglob("*.py")
    if "_pb" not in p.parts and p.name != "redact.py"  # redact.py: its regex patterns
)


def is_regex_call(node: ast.Call) -> bool:
    """``re.compile(...)``, ``re.sub(...)`` and the other ``re`` functions."""
    func = node.func
    return isinstance(func, ast.Attribute) and getattr(func.value, "id", None) == "re"


def literals(path: Path) -> Iterator[tuple[int, str]]:
    """(line, text) of every string literal but docstrings; f-string fields become X."""
    tree = parse_file(path)
    skip: set[int] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Call) and is_regex_call(node):  # a pattern, not a message
            skip.update(id(arg) for arg in node.args[:1])
        if isinstance(node, ast.Module | ast.ClassDef | ast.FunctionDef | ast.AsyncFunctionDef):
            for statement in node.body:
                if isinstance(statement, ast.Expr) and isinstance(statement.value, ast.Constant):
                    skip.add(id(statement.value))
        if isinstance(node, ast.JoinedStr):
            skip.update(id(value) for value in node.values)
            parts = (v.value if isinstance(v, ast.Constant) else "X" for v in node.values)
            yield node.lineno, "".join(str(p) for p in parts)
    for node in ast.walk(tree):
        if isinstance(node, ast.Constant) and isinstance(node.value, str) and id(node) not in skip:
            yield node.lineno, node.value


@pytest.mark.parametrize("path", SOURCES, ids=lambda p: p.relative_to(REPO).as_posix())
def test_no_library_message_gains_a_redaction_mark(path: Path) -> None:
    garbled = [
        f"{path.name}:{line}: {text!r} -> {redacted!r}"
        for line, text in literals(path)
        for redacted in {redact_text(text), redact_body(text)}
        if "?***" in redacted and "?***" not in text
    ]
    assert not garbled, "\n".join(garbled)


def test_the_connection_refused_hint_reads_as_written() -> None:
    hint = "(connection refused: is the bot server running on that port?)"
    assert redact_text(hint) == hint and redact_body(hint) == hint
    assert redact_text("GET /ws?abc123 HTTP/1.1") == "GET /ws?*** HTTP/1.1"
