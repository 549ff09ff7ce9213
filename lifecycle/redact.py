"""Redaction of secrets (credential headers, token-like fields, URL query values)."""

from __future__ import annotations

import functools
import re
from collections.abc import Mapping
from typing import Any, Final
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

__all__ = ["REDACTED", "is_secret_key", "redact", "redact_query", "redact_text", "redact_url"]

REDACTED: Final = "***"

_SECRET_KEY = re.compile(
    r"auth|token|secret|passw|pwd|key|cookie|credential|signature|session[-_]?key|bearer",
    re.IGNORECASE,
)
_URL_IN_TEXT = re.compile(r"\b[A-Za-z][A-Za-z0-9+.-]*://[^\s'\"<>]+")
_QUERY_VALUE = re.compile(r"([?&;][^=&;#\s]+=)[^&;#\s]*")
_BEARER = re.compile(r"(?i)\b(bearer|basic)\s+[A-Za-z0-9._~+/=-]+")


def is_secret_key(key: object) -> bool:
    """Whether a field or header named ``key`` holds a credential."""
    return isinstance(key, str) and _is_secret_name(key)


@functools.lru_cache(maxsize=1024)
def _is_secret_name(key: str) -> bool:
    return _SECRET_KEY.search(key) is not None


def redact_query(text: str) -> str:
    """``text`` (a URL, a path or a request line) with every query value replaced."""
    return _QUERY_VALUE.sub(lambda m: m.group(1) + REDACTED, text) if "=" in text else text


def redact_url(url: str) -> str:
    """``url`` with every query value and any userinfo password replaced."""
    try:
        parts = urlsplit(url)
    except ValueError:
        return REDACTED
    netloc = parts.netloc
    if "@" in netloc:
        netloc = f"{REDACTED}@{netloc.rsplit('@', 1)[1]}"
    query = parts.query
    if query:
        query = urlencode([(k, REDACTED) for k, _ in parse_qsl(query, keep_blank_values=True)])
        query = query.replace("%2A", "*")
    return urlunsplit((parts.scheme, netloc, parts.path, query, ""))


def redact_text(text: str) -> str:
    """``text`` with URLs' query strings and bearer credentials redacted."""
    if "://" not in text:
        lowered = text.lower()
        if "bearer" not in lowered and "basic" not in lowered:
            return text  # the common case, without running the regexes
    text = _URL_IN_TEXT.sub(lambda m: redact_url(m.group(0)), text)
    return _BEARER.sub(lambda m: f"{m.group(1)} {REDACTED}", text)


def redact(value: Any, _depth: int = 0) -> Any:
    """A copy of ``value`` with secret-named fields, URL queries and bearer tokens redacted."""
    if value is None or isinstance(value, bool | int | float):
        return value
    if _depth > 20:
        return REDACTED
    if isinstance(value, Mapping):
        return {
            k: REDACTED if is_secret_key(k) else redact(v, _depth + 1) for k, v in value.items()
        }
    if isinstance(value, list | tuple):
        return type(value)(redact(v, _depth + 1) for v in value)
    if isinstance(value, str):
        return redact_text(value)
    return value
