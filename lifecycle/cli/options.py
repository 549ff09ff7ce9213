"""Argument types and option groups shared by several commands."""

from __future__ import annotations

import argparse
import json
from collections.abc import Sequence
from typing import Any


def add_verbose(parser: argparse.ArgumentParser) -> None:
    """``-v``/``-vv``: how much of the library's log reaches stderr."""
    parser.add_argument(
        "-v",
        "--verbose",
        action="count",
        default=0,
        help="log to stderr: -v info, -vv debug (default: warnings only)",
    )


def positive_float(text: str) -> float:
    """An argparse type: a number greater than zero."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number: {text!r}") from None
    if not value > 0:
        raise argparse.ArgumentTypeError(f"must be positive: {text!r}")
    return value


def positive_int(text: str) -> int:
    """An argparse type: a whole number greater than zero."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a whole number: {text!r}") from None
    if value <= 0:
        raise argparse.ArgumentTypeError(f"must be positive: {text!r}")
    return value


def parse_headers(parser: argparse.ArgumentParser, items: Sequence[str]) -> dict[str, str]:
    """``K=V`` items -> a header mapping; a malformed one is a usage error (exit 2)."""
    headers: dict[str, str] = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep or not key.strip():
            parser.error(f"--header wants K=V, got {item.split('=', 1)[0]!r}...")
        headers[key.strip()] = value.strip()
    return headers


def parse_json(parser: argparse.ArgumentParser, option: str, text: str | None) -> Any:
    """The JSON value of ``option`` (``None`` when not given); invalid JSON is a usage error."""
    if text is None:
        return None
    try:
        return json.loads(text)
    except ValueError:
        parser.error(f"{option} is not valid JSON")
