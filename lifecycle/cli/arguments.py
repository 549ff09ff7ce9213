"""Checks for what a user types: JSON values and output paths become usage errors, not crashes.

``--start-data``, ``--request-data`` and ``connect``'s ``/msg TYPE JSON`` take JSON from the
user: :func:`loads_json` refuses nesting past :data:`MAX_JSON_DEPTH` (the parser would
recurse until ``RecursionError``), numbers out of range (``1e999`` is infinity, which no
JSON encoder sends) and ``NaN``/``Infinity``, each with a message saying which. Output paths
(``diagram -o``, ``test --junit-xml``) are checked by :func:`output_path` before any work is
done, so a missing directory is exit 2 with its name, not a traceback at the end.
"""

from __future__ import annotations

import argparse
import json
import math
from pathlib import Path
from typing import Any, Final, NoReturn

__all__ = ["MAX_JSON_DEPTH", "loads_json", "output_path"]

MAX_JSON_DEPTH: Final = 100
"""Nesting levels a JSON value typed by the user may have."""


def _refuse_constant(name: str) -> NoReturn:
    raise ValueError(f"{name} is not a JSON number")


def _finite(text: str) -> float:
    value = float(text)
    if not math.isfinite(value):
        raise ValueError(f"the number {text[:20]} is out of range")
    return value


def loads_json(text: str) -> Any:
    """The JSON value of ``text``; ``ValueError`` saying what is wrong with it, never more."""
    try:
        value = json.loads(text, parse_float=_finite, parse_constant=_refuse_constant)
    except RecursionError:
        raise ValueError(f"nested deeper than {MAX_JSON_DEPTH} levels") from None
    except ValueError as exc:
        reason = str(exc) if "out of range" in str(exc) or "not a JSON" in str(exc) else ""
        if "digits" in str(exc):  # over sys.get_int_max_str_digits()
            reason = "an integer with too many digits"
        raise ValueError(reason or "not valid JSON") from None
    if _depth(value) > MAX_JSON_DEPTH:
        raise ValueError(f"nested deeper than {MAX_JSON_DEPTH} levels")
    return value


def _depth(value: Any) -> int:
    """How deeply ``value`` nests (a scalar is 0), without recursion."""
    deepest = 0
    stack: list[tuple[Any, int]] = [(value, 0)]
    while stack:
        item, level = stack.pop()
        if isinstance(item, dict):
            children: Any = item.values()
        elif isinstance(item, list):
            children = item
        else:
            continue
        deepest = max(deepest, level + 1)
        if deepest > MAX_JSON_DEPTH:
            return deepest
        stack.extend((child, level + 1) for child in children)
    return deepest


def output_path(text: str) -> str:
    """An argparse ``type``: a file path whose directory exists (else a usage error)."""
    if not text:
        raise argparse.ArgumentTypeError("an empty path")
    path = Path(text)
    if path.is_dir():
        raise argparse.ArgumentTypeError(f"{text!r} is a directory; give a file path")
    folder = path.parent
    if not folder.is_dir():
        raise argparse.ArgumentTypeError(f"the directory {str(folder)!r} does not exist")
    return text
