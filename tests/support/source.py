"""Parsing Python source in tests without CPython 3.11's AST recursion-depth race.

CPython 3.11 keeps the AST constructor's recursion counter per interpreter (gh-106905). When a
garbage collection runs during ``ast.parse`` and a finalizer formats a traceback (an asyncio
"exception was never retrieved" log: 3.11's traceback module calls ``ast.parse`` for its caret
lines), the outer parse fails with ``SystemError: AST constructor recursion depth mismatch``.
Pausing the collector for the parse removes the finalizers from that window (no collection
starts while it is paused, so none is run first: a full collection per file cost 0.05-0.1 s
in a late test's large heap, 15-25 s per architecture test); a parse racing another thread's
is retried.
"""

from __future__ import annotations

import ast
import gc
from pathlib import Path

__all__ = ["parse_file", "parse_source"]


def parse_source(source: str, filename: str = "<unknown>") -> ast.Module:
    """``ast.parse(source)``, safe from the interpreter race described above."""
    for attempt in range(3):
        was_enabled = gc.isenabled()
        gc.disable()
        try:
            return ast.parse(source, filename)
        except SystemError as exc:
            if "recursion depth mismatch" not in str(exc) or attempt == 2:
                raise
        finally:
            if was_enabled:
                gc.enable()
    raise AssertionError("unreachable")


def parse_file(path: Path) -> ast.Module:
    """The parsed module at ``path`` (UTF-8)."""
    return parse_source(path.read_text(encoding="utf-8"), str(path))
