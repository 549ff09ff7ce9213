"""Starting a bot: `APIRequest` and the HTTP POST to the start endpoint (httpx)."""

from __future__ import annotations

import ssl
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Final

import httpx

from lifecycle.errors import AuthenticationError, StartBotError
from lifecycle.http import BodyTooLarge, UnusableJSON, parse_json, send_json
from lifecycle.redact import (
    check_header_values,
    redact,
    redact_body,
    redact_url,
    redact_values,
    sent_secrets,
)
from lifecycle.timeouts import check_seconds

__all__ = [
    "MAX_START_RESPONSE",
    "TRANSPORT_KINDS",
    "WEBSOCKET_START_BODY",
    "APIRequest",
    "StartSettings",
    "as_api_request",
    "check_timeout",
    "parse_header",
    "post_start",
]

MAX_START_RESPONSE: Final = 1024 * 1024
"""The largest start response read; a bigger one is a StartBotError."""
_BODY_TEXT_LIMIT: Final = 4096


def check_timeout(value: object, what: str = "timeout") -> float:
    """``value`` as seconds: a finite number over 0, else ``TypeError``/``ValueError``.

    ``None``, strings and booleans are refused (``TypeError``); NaN, infinities, zero and
    negative numbers too (``ValueError``): each would otherwise mean an endless or no wait.
    """
    return check_seconds(value, what)


@dataclass(frozen=True, slots=True)
class APIRequest:
    """How to ask a server to start a bot: ``POST endpoint`` with JSON ``request_data``.

    Checked when built: ``endpoint`` a string, ``headers`` a mapping without CR/LF/NUL in
    any value, ``timeout`` a finite number of seconds over 0 (``TypeError``/``ValueError``).
    """

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

    def __post_init__(self) -> None:
        if not isinstance(self.endpoint, str):
            raise TypeError(f"endpoint must be a URL string, not {type(self.endpoint).__name__}")
        if not isinstance(self.headers, Mapping):
            raise TypeError(f"headers must be a mapping, not {type(self.headers).__name__}")
        check_header_values(self.headers)
        check_timeout(self.timeout, "APIRequest.timeout")

    def __repr__(self) -> str:
        headers = redact(dict(self.headers))
        return (
            f"APIRequest(endpoint={redact_url(self.endpoint)!r}, headers={headers!r},"
            f" request_data={redact(self.request_data)!r}, timeout={self.timeout!r},"
            f" ssl={self.ssl!r})"
        )


def as_api_request(request: object) -> APIRequest:
    """``request`` as an :class:`APIRequest`: a URL string is wrapped; else ``TypeError``."""
    if isinstance(request, APIRequest):
        return request
    if isinstance(request, str):
        return APIRequest(request)
    raise TypeError(f"expected a start URL (str) or an APIRequest, not {type(request).__name__}")


def _body_for_error(raw: bytes, secrets: frozenset[str]) -> Any:
    """The response body for StartBotError.body: JSON if it parses, else bounded text.

    Redacted either way: a server may echo the request's credentials back, under any
    field name: the values the request sent (``secrets``) are looked for everywhere too.
    """
    try:
        return redact_values(redact(parse_json(raw)), secrets)
    except UnusableJSON:
        text = raw[:_BODY_TEXT_LIMIT].decode("utf-8", "replace")
        return redact_body(redact_values(text, secrets))


async def post_start(request: APIRequest) -> Any:
    """POST the start request and return its parsed JSON body.

    Raises :class:`AuthenticationError` for 401/403 and :class:`StartBotError` for an
    unreachable server, a timeout, any status outside 2xx (redirects are not followed),
    an oversize body, or a body that is not usable JSON (not JSON, nested too deeply, an
    integer too long to convert). Messages never contain the URL's query or any header;
    nothing from the network stack is chained (its messages may quote header values).
    """
    where = redact_url(request.endpoint)
    body = request.request_data if request.request_data is not None else {}
    secrets = sent_secrets(request.endpoint, request.headers, body)
    failure: StartBotError
    try:
        status, raw = await send_json(
            "POST",
            request.endpoint,
            body,
            headers=request.headers,
            timeout=request.timeout,
            max_bytes=MAX_START_RESPONSE,
            ssl_context=request.ssl,
        )
    except TimeoutError:
        failure = StartBotError(f"start_bot timed out after {request.timeout} s ({where})")
    except BodyTooLarge as exc:
        failure = StartBotError(
            f"start response from {where} is over {MAX_START_RESPONSE} bytes",
            status=exc.status,
            body=redact_body(
                redact_values(exc.partial[:_BODY_TEXT_LIMIT].decode("utf-8", "replace"), secrets)
            ),
        )
    except (ValueError, httpx.InvalidURL):
        failure = StartBotError(f"invalid start URL {where}")
    except Exception as exc:  # httpx.HTTPError, and whatever else the network stack raises
        failure = StartBotError(f"start_bot could not reach {where}: {type(exc).__name__}")
    else:
        return _answer(where, status, raw, secrets)
    # Raised here, outside the handler, so the network error is not kept as __context__.
    raise failure


def _answer(where: str, status: int, raw: bytes, secrets: frozenset[str]) -> Any:
    if status in (401, 403):
        raise AuthenticationError(
            f"start_bot was refused by {where}: HTTP {status}",
            status=status,
            body=_body_for_error(raw, secrets),
        )
    if not 200 <= status < 300:
        kind = "a redirect, not followed" if 300 <= status < 400 else "not a success"
        raise StartBotError(
            f"start_bot failed at {where}: HTTP {status} ({kind})",
            status=status,
            body=_body_for_error(raw, secrets),
        )
    try:
        return parse_json(raw)
    except UnusableJSON as exc:
        reason = str(exc)
    raise StartBotError(
        f"start_bot got a response that {reason} from {where} (HTTP {status})",
        status=status,
        body=redact_body(redact_values(raw[:_BODY_TEXT_LIMIT].decode("utf-8", "replace"), secrets)),
    )


WEBSOCKET_START_BODY: Final = {"transport": "websocket"}
"""The start body sent for the WebSocket transport when none is given.

Pipecat's development runner (and Pipecat Cloud) answer for WebRTC when the body names no
transport; this asks them for a WebSocket session instead.
"""
TRANSPORT_KINDS: Final = ("ws", "webrtc")
"""The transports a start setting can name."""


def parse_header(item: str) -> tuple[str, str]:
    """``"NAME=VALUE"`` (or curl's ``"NAME: VALUE"``) -> ``(NAME, VALUE)``, both stripped.

    ``ValueError`` for an item with no separator or no name; the message names at most the
    first word of the item, never a value.
    """
    equals, colon = item.find("="), item.find(":")
    sep = ":" if colon >= 0 and (equals < 0 or colon < equals) else "="
    key, found, value = item.partition(sep)
    key = key.strip()
    if not found or not key or any(c.isspace() for c in key):
        name = (item.split() or [""])[0].split("=")[0].split(":")[0][:40]
        raise ValueError(f"a header is NAME=VALUE (e.g. Authorization=...), got {name!r}...")
    return key, value.strip()


@dataclass(frozen=True, slots=True)
class StartSettings:
    """How to reach a bot, as every command and the pytest plugin take it.

    ``start_url`` (a start endpoint, or ``None`` for a bot reached otherwise),
    ``start_data`` (the start request body; ``None``: the transport's default, see
    :meth:`start_body`), ``headers`` (start request headers), ``transport`` (``"ws"`` or
    ``"webrtc"``) and ``connect_timeout`` (seconds for the start request and for bot-ready).
    Checked when built (``TypeError``/``ValueError``).
    """

    start_url: str | None = None
    """The start endpoint (``POST``), e.g. ``http://localhost:7860/start``."""
    start_data: Any = None
    """The start request body; ``None`` leaves it to :meth:`start_body`."""
    headers: Mapping[str, str] = field(default_factory=dict)
    """Start request headers (e.g. ``Authorization``); never logged."""
    transport: str = "ws"
    """``"ws"`` (WebSocket) or ``"webrtc"`` (SmallWebRTC)."""
    connect_timeout: float = 30.0
    """Seconds for the start request, and again for bot-ready."""

    def __post_init__(self) -> None:
        if self.transport not in TRANSPORT_KINDS:
            raise ValueError(f"transport must be 'ws' or 'webrtc', not {self.transport!r}")
        if not isinstance(self.headers, Mapping):
            raise TypeError(f"headers must be a mapping, not {type(self.headers).__name__}")
        check_header_values(self.headers)
        check_timeout(self.connect_timeout, "connect_timeout")

    def __repr__(self) -> str:
        url = None if self.start_url is None else redact_url(self.start_url)
        return (
            f"StartSettings(start_url={url!r}, start_data={redact(self.start_data)!r},"
            f" headers={redact(dict(self.headers))!r}, transport={self.transport!r},"
            f" connect_timeout={self.connect_timeout!r})"
        )

    def start_body(self) -> Any:
        """``start_data`` when given; else ``{"transport": "websocket"}`` for ``ws``, else
        ``None`` (an empty body: the runner's default, WebRTC)."""
        if self.start_data is not None:
            return self.start_data
        return dict(WEBSOCKET_START_BODY) if self.transport == "ws" else None

    def api_request(self, start_url: str | None = None) -> APIRequest:
        """The start request: ``start_url`` (default :attr:`start_url`) with this body,
        these headers and ``connect_timeout``; ``ValueError`` when there is no URL."""
        url = start_url if start_url is not None else self.start_url
        if url is None:
            raise ValueError("no start URL")
        return APIRequest(
            url, self.headers, request_data=self.start_body(), timeout=self.connect_timeout
        )
