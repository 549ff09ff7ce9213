"""Starting a bot: `APIRequest` and the HTTP POST to the start endpoint (httpx)."""

from __future__ import annotations

import json
import ssl
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Final

import httpx

from lifecycle.errors import AuthenticationError, StartBotError
from lifecycle.http import BodyTooLarge, send_json
from lifecycle.redact import redact, redact_url

__all__ = ["MAX_START_RESPONSE", "APIRequest", "post_start"]

MAX_START_RESPONSE: Final = 1024 * 1024
"""The largest start response read; a bigger one is a StartBotError."""
_BODY_TEXT_LIMIT: Final = 4096


@dataclass(frozen=True, slots=True)
class APIRequest:
    """How to ask a server to start a bot: ``POST endpoint`` with JSON ``request_data``."""

    endpoint: str
    """The start URL, e.g. ``http://localhost:7860/start``."""
    headers: Mapping[str, str] = field(default_factory=dict)
    """Extra HTTP headers (e.g. ``Authorization``); never logged."""
    request_data: Any = None
    """The JSON body; ``None`` sends ``{}``."""
    timeout: float = 15.0
    """Seconds for the whole request; then StartBotError with ``status=None``."""
    ssl: ssl.SSLContext | None = None
    """TLS context for ``https://`` (e.g. a private CA); the default verifies certificates."""

    def __repr__(self) -> str:
        headers = redact(dict(self.headers))
        return (
            f"APIRequest(endpoint={redact_url(self.endpoint)!r}, headers={headers!r},"
            f" request_data={redact(self.request_data)!r}, timeout={self.timeout!r},"
            f" ssl={self.ssl!r})"
        )


def _body_for_error(raw: bytes) -> Any:
    """The response body for StartBotError.body: JSON if it parses, else bounded text."""
    text = raw[:_BODY_TEXT_LIMIT].decode("utf-8", "replace")
    try:
        return redact(json.loads(raw))
    except ValueError:
        return text


async def post_start(request: APIRequest) -> Any:
    """POST the start request and return its parsed JSON body.

    Raises :class:`AuthenticationError` for 401/403 and :class:`StartBotError` for an
    unreachable server, a timeout, any other HTTP error, an oversize body, or a body that
    is not JSON. Messages never contain the URL's query or any header.
    """
    where = redact_url(request.endpoint)
    body = request.request_data if request.request_data is not None else {}
    try:
        result = await send_json(
            "POST",
            request.endpoint,
            body,
            headers=request.headers,
            timeout=request.timeout,
            max_bytes=MAX_START_RESPONSE,
            ssl_context=request.ssl,
        )
    except TimeoutError:
        raise StartBotError(
            f"start_bot timed out after {request.timeout} s ({where})", status=None
        ) from None
    except BodyTooLarge as exc:
        raise StartBotError(
            f"start response from {where} is over {MAX_START_RESPONSE} bytes",
            status=exc.status,
            body=exc.partial[:_BODY_TEXT_LIMIT].decode("utf-8", "replace"),
        ) from None
    except (ValueError, httpx.InvalidURL):
        raise StartBotError(f"invalid start URL {where}", status=None) from None
    except Exception as exc:  # httpx.HTTPError, and whatever else the network stack raises
        raise StartBotError(
            f"start_bot could not reach {where}: {type(exc).__name__}", status=None
        ) from None
    status, raw = result
    if status in (401, 403):
        raise AuthenticationError(
            f"start_bot was refused by {where}: HTTP {status}",
            status=status,
            body=_body_for_error(raw),
        )
    if status >= 400:
        raise StartBotError(
            f"start_bot failed at {where}: HTTP {status}", status=status, body=_body_for_error(raw)
        )
    try:
        return json.loads(raw)
    except ValueError:
        raise StartBotError(
            f"start_bot got a response that is not JSON from {where} (HTTP {status})",
            status=status,
            body=raw[:_BODY_TEXT_LIMIT].decode("utf-8", "replace"),
        ) from None
