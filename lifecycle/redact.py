"""Redaction of secrets (credential headers, token-like fields, URL query values).

What counts as a secret in text: every query value (``?token=x``, and a bare ``?x``), path
parameters (``/p;token=x``), fragment parameters (``#access_token=x``), userinfo passwords,
``Bearer``/``Basic`` credentials, and the value of a header named like a credential in the
error messages of h11 and websockets. Bodies (:func:`redact_body`) also lose the value of any
``name: value`` / ``name=value`` pair whose name looks like a credential.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Mapping
from typing import Any, Final
from urllib.parse import parse_qsl, unquote, urlsplit, urlunsplit

__all__ = [
    "REDACTED",
    "check_header_values",
    "is_secret_key",
    "redact",
    "redact_body",
    "redact_header_reprs",
    "redact_query",
    "redact_text",
    "redact_url",
    "redact_values",
    "sent_secrets",
]

REDACTED: Final = "***"

_SECRET_WORDS: Final = (
    r"auth|token|secret|passw|pwd|key|cookie|credential|signature|session[-_]?key|bearer"
)
_SECRET_KEY = re.compile(_SECRET_WORDS, re.IGNORECASE)
_URL_IN_TEXT = re.compile(r"\b[A-Za-z][A-Za-z0-9+.-]*://[^\s'\"<>]+")
# A query string: "?" right after a path-like character (so prose "why? because" is left).
_QUERY_SPAN = re.compile(r"(?<=[^\s?'\"<>])\?([^\s#'\"<>]*)")
_QUERY_ITEM = re.compile(r"[^&;]+")
# Path parameters ("/p;token=x", ";jsessionid=x") and "k=v" pairs in a fragment.
_PATH_PARAM = re.compile(r";([^=;/?#\s'\"<>]+)=[^;/?#&\s'\"<>]*")
_FRAGMENT = re.compile(r"#([^\s#'\"<>]*=[^\s#'\"<>]*)")
# Backslash too: an escaped "\r\n" inside a repr'd header value belongs to the credential.
_BEARER = re.compile(r"(?i)\b(bearer|basic)\s+[A-Za-z0-9._~+/=\\-]+")
# h11: "Illegal header value b'...'", "illegal header line: bytearray(b'...')".
_H11_HEADER = re.compile(
    r"(?i)(illegal header (?:value|line|name)[: ]*)(?:bytearray\()?(b'(?:[^'\\]|\\.)*'|"
    r"b\"(?:[^\"\\]|\\.)*\")\)?"
)
# websockets: "invalid Authorization header: <value>"; the value may hold raw CR/LF, so
# the rest of the text goes with it.
_WS_HEADER = re.compile(r"(?is)(invalid ([!#$%&'*+.^_`|~0-9A-Za-z-]+) header: ).*")
_SECRET_PAIR = re.compile(
    r"(?i)([\"']?[\w.-]*(?:" + _SECRET_WORDS + r")[\w.-]*[\"']?\s*[:=]\s*[\"']?)"
    r"[^\s\"'&,;}<]+"
)
_HEADER_BREAKS = re.compile(r"[\r\n\0]")
_BYTES_REPR: Final = r"b'(?:[^'\\]|\\.)*'|b\"(?:[^\"\\]|\\.)*\""
_HEADER_PAIR = re.compile(rf"\((b'[^'\\]*'|b\"[^\"\\]*\"), ({_BYTES_REPR})\)")
_ANY_BYTES = re.compile(_BYTES_REPR)


def is_secret_key(key: object) -> bool:
    """Whether a field or header named ``key`` holds a credential."""
    return isinstance(key, str) and _is_secret_name(key)


@functools.lru_cache(maxsize=1024)
def _is_secret_name(key: str) -> bool:
    return _SECRET_KEY.search(key) is not None


def _redact_params(params: str) -> str:
    """``a=1&b&c=2`` -> ``a=***&***&c=***``: a bare item may itself be the token."""

    def item(match: re.Match[str]) -> str:
        name, sep, _ = match.group().partition("=")
        return f"{name}={REDACTED}" if sep else REDACTED

    return _QUERY_ITEM.sub(item, params)


def _query(match: re.Match[str]) -> str:
    """A query span redacted; one with no letter or digit is prose ("port?)"), kept."""
    params = match.group(1)
    if not any(c.isalnum() for c in params):
        return match.group()
    return "?" + _redact_params(params)


def redact_query(text: str) -> str:
    """``text`` (a URL, a path or a request line) with query, path and fragment values replaced.

    ``/ws?token=x HTTP/1.1`` -> ``/ws?token=*** HTTP/1.1``; ``/ws?x`` -> ``/ws?***``;
    ``/p;token=x`` -> ``/p;token=***``; ``#access_token=x`` -> ``#access_token=***``.
    """
    if "?" in text:
        text = _QUERY_SPAN.sub(_query, text)
    if "=" in text:
        if ";" in text:
            text = _PATH_PARAM.sub(lambda m: f";{m.group(1)}={REDACTED}", text)
        if "#" in text:
            text = _FRAGMENT.sub(lambda m: "#" + _redact_params(m.group(1)), text)
    return text


def redact_url(url: str) -> str:
    """``url`` with every query value, path parameter and userinfo password replaced.

    The fragment is dropped (it never travels, and OAuth puts tokens there).
    """
    try:
        parts = urlsplit(url)
    except ValueError:
        return REDACTED
    netloc = parts.netloc
    if "@" in netloc:
        netloc = f"{REDACTED}@{netloc.rsplit('@', 1)[1]}"
    path = parts.path
    if ";" in path:
        path = _PATH_PARAM.sub(lambda m: f";{m.group(1)}={REDACTED}", path)
    query = _redact_params(parts.query) if parts.query else ""
    return urlunsplit((parts.scheme, netloc, path, query, ""))


def _ws_header(match: re.Match[str]) -> str:
    return match.group(1) + REDACTED if _is_secret_name(match.group(2)) else match.group()


def redact_text(text: str) -> str:
    """``text`` with URLs' secrets, schemeless query strings and credentials redacted.

    Covers full URLs, ``path?token=`` and bare ``?<token>``, ``;token=`` path parameters,
    ``Bearer``/``Basic`` values, and the header value quoted by h11's and websockets'
    errors about an illegal header (a value with CR/LF must not leak through them).
    """
    if "://" in text:
        text = _URL_IN_TEXT.sub(lambda m: redact_url(m.group(0)), text)
    if "?" in text or "=" in text:
        text = redact_query(text)
    lowered = text.lower()
    if "bearer" in lowered or "basic" in lowered:
        text = _BEARER.sub(lambda m: f"{m.group(1)} {REDACTED}", text)
    if "header" in lowered:
        text = _H11_HEADER.sub(lambda m: m.group(1) + REDACTED, text)
        text = _WS_HEADER.sub(_ws_header, text)
    return text


def redact_body(text: str) -> str:
    """A response body's text with :func:`redact_text`'s rules and every credential pair.

    ``X-Auth-Token: abc``, ``"token": "abc"``, ``password=abc`` lose their values.
    """
    return _SECRET_PAIR.sub(lambda m: m.group(1) + REDACTED, redact_text(text))


def _header_pair(match: re.Match[str]) -> str:
    name, value = match.group(1), match.group(2)
    value = "b'***'" if _is_secret_name(name[2:-1]) else redact_text(value)
    return f"({name}, {value})"


def redact_header_reprs(text: str) -> str:
    """Header lists and wire bytes as httpcore's debug lines print them (Python reprs).

    ``(b'Set-Cookie', b'sid=x')`` -> ``(b'Set-Cookie', b'***')`` for every credential-named
    header, URL secrets in the others (``Location``); in a failure line (``exception=``)
    every bytes literal is wire data quoted by h11 and becomes ``b'***'``.
    """
    if "(b" in text:
        text = _HEADER_PAIR.sub(_header_pair, text)
    if "exception=" in text:
        text = _ANY_BYTES.sub("b'***'", text)
    return text


def check_header_values(headers: Mapping[str, str]) -> None:
    """Raise ``ValueError`` if a header value holds CR, LF or NUL, naming only the header.

    HTTP and WebSocket libraries quote the offending value in their own errors; refusing
    it first keeps a credential with a stray newline out of every message and log line.
    """
    for name, value in headers.items():
        if isinstance(value, str) and _HEADER_BREAKS.search(value):
            raise ValueError(f"header {name!r} has a value with CR, LF or NUL (value not shown)")


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


_MIN_SECRET: Final = 4  # shorter values are not looked for: "ab" would garble every body
_MAX_SECRETS: Final = 64


def sent_secrets(url: str, headers: Mapping[str, str], data: Any = None) -> frozenset[str]:
    """The secret values a request carries, to find them again in what comes back.

    The value of every credential-named header (``Authorization``, ``X-Api-Key``,
    ``Cookie``...) and its parts (the token after ``Bearer``, each cookie value), every
    query and path-parameter value and the password of ``url``, and every string under a
    secret-named field of ``data`` (the start request's body), at any depth.
    """
    found: set[str] = set()
    for name, value in headers.items():
        if isinstance(value, str) and is_secret_key(name):
            found.add(value)
            found.update(part.split("=", 1)[-1] for part in re.split(r"[\s;,]+", value))
    try:
        parts = urlsplit(url)
        found.update(v for _, v in parse_qsl(parts.query, keep_blank_values=False))
        found.update(unquote(m.group(0).split("=", 1)[1]) for m in _PATH_PARAM.finditer(url))
        found.update(v for _, v in parse_qsl(parts.fragment))
        if parts.password:
            found.add(unquote(parts.password))
    except ValueError:
        pass
    _secret_fields(data, found, 0)
    usable = sorted((v for v in found if len(v) >= _MIN_SECRET), key=len, reverse=True)
    return frozenset(usable[:_MAX_SECRETS])


def _secret_fields(value: Any, found: set[str], depth: int, secret: bool = False) -> None:
    if depth > 20:
        return
    if isinstance(value, str):
        if secret:
            found.add(value)
    elif isinstance(value, Mapping):
        for key, item in value.items():
            _secret_fields(item, found, depth + 1, secret or is_secret_key(key))
    elif isinstance(value, list | tuple):
        for item in value:
            _secret_fields(item, found, depth + 1, secret)


def redact_values(value: Any, secrets: frozenset[str], _depth: int = 0) -> Any:
    """A copy of ``value`` (text or JSON) with every occurrence of ``secrets`` replaced.

    Strings anywhere in a JSON value (keys too) are searched, longest secret first; nesting
    past 20 levels is replaced whole (what cannot be searched is not shown).
    """
    if not secrets or value is None or isinstance(value, bool | int | float):
        return value
    if isinstance(value, str):
        for secret in sorted(secrets, key=len, reverse=True):
            if secret in value:
                value = value.replace(secret, REDACTED)
        return value
    if _depth > 20:
        return REDACTED
    if isinstance(value, Mapping):
        return {
            redact_values(k, secrets, _depth + 1): redact_values(v, secrets, _depth + 1)
            for k, v in value.items()
        }
    if isinstance(value, list | tuple):
        return type(value)(redact_values(v, secrets, _depth + 1) for v in value)
    return value
