"""Bot text made safe to print: one function for every terminal, JSON-line and XML writer.

A bot's text (transcripts, LLM tokens, error messages, function names) may hold ANSI escape
sequences, carriage returns, other control characters, bidirectional overrides or lone
surrogates. Written raw, they recolour or rewrite the user's terminal, fake output lines,
make a JUnit XML file unparseable, or fail the write itself (a lone surrogate cannot be
encoded). :func:`printable` escapes each such character visibly (``\\x1b``, ``\\r``,
``\\u202e``, ``\\udc80``) and leaves every other character, non-ASCII letters included, as
it is. :func:`json_line` does the same for a line of JSON (as ``\\uXXXX`` escapes, so the
line stays valid JSON).
"""

from __future__ import annotations

import json
import re
from typing import Any, Final

__all__ = ["json_line", "printable"]

# C0 controls but tab and newline, DEL, C1 controls, lone surrogates, the bidirectional
# embeddings/overrides/isolates, and the two non-characters XML 1.0 refuses.
_UNSAFE: Final = re.compile(
    "[\x00-\x08\x0b-\x1f\x7f-\x9f\u202a-\u202e\u2066-\u2069\ud800-\udfff\ufffe\uffff]"
)
_SHORT: Final = {"\r": "\\r", "\x1b": "\\x1b", "\x00": "\\x00"}


def _escape(match: re.Match[str]) -> str:
    char = match.group(0)
    short = _SHORT.get(char)
    if short is not None:
        return short
    code = ord(char)
    return f"\\x{code:02x}" if code <= 0xFF else f"\\u{code:04x}"


def printable(text: object, *, newlines: bool = True) -> str:
    """``str(text)`` with every unsafe character escaped visibly (see the module docstring).

    ``newlines=False`` escapes ``\\n`` too, for a value that must stay on one line.
    """
    value = text if isinstance(text, str) else str(text)
    value = _UNSAFE.sub(_escape, value)
    return value if newlines else value.replace("\n", "\\n")


def _json_escape(match: re.Match[str]) -> str:
    return f"\\u{ord(match.group(0)):04x}"


def json_line(value: Any) -> str:
    """``value`` as one line of JSON, non-ASCII kept readable, unsafe characters escaped."""
    text = json.dumps(value, ensure_ascii=False, default=str)
    return _UNSAFE.sub(_json_escape, text)  # only inside strings: still valid JSON
