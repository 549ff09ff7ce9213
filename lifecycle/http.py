"""One JSON request over HTTP(S) with httpx, bounded in time and size.

Requests go through an ``httpx.AsyncHTTPTransport`` directly: ``httpx.AsyncClient`` logs every
request's full URL at INFO on the stdlib ``httpx`` logger, which would put tokens in query
strings into applications' logs.

httpcore's DEBUG lines print the response headers (``Set-Cookie``, an echoed
``Authorization``, a ``Location`` with ``?token=``) and h11's errors quote illegal header
values. The library never configures logging, so it neither raises levels nor adds handlers:
it adds one filter to httpcore's own loggers that rewrites only the records emitted while
one of *our* requests runs (a context variable marks them). The application's own httpx
traffic and every other logger are left exactly as they were.
"""

from __future__ import annotations

import asyncio
import contextvars
import functools
import importlib
import json
import logging
import ssl
from collections.abc import Mapping
from typing import Any, Final, NamedTuple
from urllib.parse import urlsplit

import httpx

from lifecycle.redact import redact_header_reprs, redact_text

# httpx imports httpcore, and httpcore its asyncio backend, on the first request: ~40 ms that
# a fresh process would pay inside its first start_bot. Pay them when the client is imported.
for _module in ("httpcore", "httpcore._backends.anyio", "anyio._backends._asyncio"):
    importlib.import_module(_module)

__all__ = ["BodyTooLarge", "HTTPResult", "UnusableJSON", "parse_json", "send_json", "tls_context"]

_HTTPCORE_LOGGERS: Final = (
    "httpcore.connection",
    "httpcore.http11",
    "httpcore.http2",
    "httpcore.proxy",
    "httpcore.socks",
)
_IN_OUR_REQUEST: contextvars.ContextVar[bool] = contextvars.ContextVar(
    "lifecycle_http_request", default=False
)


class _RedactOurRequests(logging.Filter):
    """Redacts httpcore's records emitted during the library's requests; passes all others."""

    def filter(self, record: logging.LogRecord) -> bool:
        if _IN_OUR_REQUEST.get():
            record.msg = redact_text(redact_header_reprs(record.getMessage()))
            record.args = ()
        return True


@functools.cache
def _guard_httpcore_logs() -> None:
    """Put the filter on httpcore's loggers, once (records exist only at DEBUG: no cost else)."""
    guard = _RedactOurRequests()
    for name in _HTTPCORE_LOGGERS:
        logging.getLogger(name).addFilter(guard)


class HTTPResult(NamedTuple):
    """A response's status and raw body."""

    status: int
    body: bytes


class BodyTooLarge(ValueError):
    """The response body was over the limit; ``partial`` holds its first bytes."""

    def __init__(self, status: int, partial: bytes) -> None:
        super().__init__(f"response body over the limit (HTTP {status})")
        self.status = status
        self.partial = partial


class UnusableJSON(ValueError):
    """A body that cannot be used as JSON; the message says why (``is not JSON``...)."""


def _int_or_refuse(text: str) -> int:
    try:
        return int(text)
    except ValueError:  # over sys.get_int_max_str_digits(), which the application controls
        digits = len(text.lstrip("-"))
        raise UnusableJSON(
            f"holds a {digits}-digit integer, over this interpreter's limit for integer"
            " conversion (sys.set_int_max_str_digits)"
        ) from None


def parse_json(raw: bytes | str) -> Any:
    """The JSON value of ``raw``, or :class:`UnusableJSON` saying what is wrong with it.

    Never anything else: a body nested deeper than the interpreter's recursion limit
    (``json.loads`` raises ``RecursionError``) and an integer over ``int_max_str_digits``
    are ``UnusableJSON`` with their own message, not "not JSON" and not a crash.
    """
    try:
        return json.loads(raw, parse_int=_int_or_refuse)
    except UnusableJSON:
        raise
    except RecursionError:
        raise UnusableJSON("is nested too deeply to parse") from None
    except ValueError:
        raise UnusableJSON("is not JSON") from None


@functools.cache
def tls_context() -> ssl.SSLContext:
    """The default verifying TLS context, built once (building one costs ~30 ms)."""
    return httpx.create_ssl_context()


@functools.cache
def _no_tls_context() -> ssl.SSLContext:
    # For http:// URLs, which never use it: httpx wants a context, and loading the CA
    # bundle costs ~30 ms. It still verifies (and trusts no CA), so it can never weaken TLS.
    return ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)


async def send_json(
    method: str,
    url: str,
    body: Any,
    *,
    headers: Mapping[str, str],
    timeout: float,
    max_bytes: int,
    ssl_context: ssl.SSLContext | None = None,
) -> HTTPResult:
    """Send ``body`` as JSON and return the status and body (at most ``max_bytes``).

    Raises ``ValueError`` for an unusable URL (bad scheme or port), ``TimeoutError`` when the
    whole exchange takes over ``timeout`` seconds, :class:`BodyTooLarge`, or any
    ``httpx.HTTPError`` for network failures.
    """
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ValueError("not an http:// or https:// URL")
    _ = parts.port  # raises ValueError for a port out of range
    _guard_httpcore_logs()
    request = httpx.Request(
        method,
        url,
        json=body,
        headers=dict(headers),
        extensions={"timeout": httpx.Timeout(timeout).as_dict()},
    )
    marked = _IN_OUR_REQUEST.set(True)
    try:
        async with (
            asyncio.timeout(timeout),
            httpx.AsyncHTTPTransport(verify=_context_for(parts.scheme, ssl_context)) as transport,
        ):
            response = await transport.handle_async_request(request)
            try:
                return await _read_bounded(response, max_bytes)
            finally:
                await response.aclose()
    finally:
        _IN_OUR_REQUEST.reset(marked)


def _context_for(scheme: str, given: ssl.SSLContext | None) -> ssl.SSLContext:
    if given is not None:
        return given
    return tls_context() if scheme == "https" else _no_tls_context()


async def _read_bounded(response: httpx.Response, max_bytes: int) -> HTTPResult:
    chunks: list[bytes] = []
    size = 0
    async for chunk in response.aiter_bytes():
        size += len(chunk)
        if size > max_bytes:
            raise BodyTooLarge(response.status_code, b"".join(chunks))
        chunks.append(chunk)
    return HTTPResult(response.status_code, b"".join(chunks))
