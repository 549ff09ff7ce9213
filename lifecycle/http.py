"""One JSON request over HTTP(S) with httpx, bounded in time and size.

Requests go through an ``httpx.AsyncHTTPTransport`` directly: ``httpx.AsyncClient`` logs every
request's full URL at INFO on the stdlib ``httpx`` logger, which would put tokens in query
strings into applications' logs.
"""

from __future__ import annotations

import asyncio
import functools
import ssl
from collections.abc import Mapping
from typing import Any, NamedTuple
from urllib.parse import urlsplit

import httpx

__all__ = ["BodyTooLarge", "HTTPResult", "send_json", "tls_context"]


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


@functools.cache
def tls_context() -> ssl.SSLContext:
    """The default verifying TLS context, built once (building one costs ~30 ms)."""
    return httpx.create_ssl_context()


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
    request = httpx.Request(
        method,
        url,
        json=body,
        headers=dict(headers),
        extensions={"timeout": httpx.Timeout(timeout).as_dict()},
    )
    async with (
        asyncio.timeout(timeout),
        httpx.AsyncHTTPTransport(verify=ssl_context or tls_context()) as transport,
    ):
        response = await transport.handle_async_request(request)
        try:
            chunks: list[bytes] = []
            size = 0
            async for chunk in response.aiter_bytes():
                size += len(chunk)
                if size > max_bytes:
                    raise BodyTooLarge(response.status_code, b"".join(chunks))
                chunks.append(chunk)
            return HTTPResult(response.status_code, b"".join(chunks))
        finally:
            await response.aclose()
