"""One job: what a WebSocket's failures and ends mean, said for the user (no I/O).

Which close codes are a clean bot-side end (the decision is explained in
:mod:`transports.websocket`), the reason text of an end, the likely cause of a failed
handshake, and the checks that keep header values (secrets) out of every message.
"""

from __future__ import annotations

import re
import ssl as ssl_module
from collections.abc import Mapping
from typing import Any, Final
from urllib.parse import urlsplit

from websockets.exceptions import InvalidMessage, InvalidStatus
from websockets.frames import Close

from lifecycle.errors import TransportError

__all__ = [
    "CLEAN_CLOSE_CODES",
    "check_headers",
    "connect_hint",
    "describe_close",
    "describe_keys",
    "route_hint",
]

CLEAN_CLOSE_CODES: Final = frozenset({1000, 1005})
"""Close codes from the bot that end a session cleanly; any other code is a lost link."""
# RFC 7230 token (header names) and field-value characters: what websockets accepts.
_HEADER_NAME: Final = re.compile(r"[-!#$%&'*+.^_`|~0-9A-Za-z]+")
_HEADER_VALUE: Final = re.compile(r"[\t\x20-\x7e\x80-\xff]*")
_MAX_KEYS_SHOWN: Final = 12
_MAX_KEY_CHARS: Final = 40


def describe_close(
    received: Close | None,
    sent: Close | None,
    received_first: bool | None,
    ping_timeout: float | None = None,
) -> tuple[bool, str]:
    """Whether a connection's end was a clean bot-side end, and a reason text for it.

    ``received``/``sent`` are the close frames (websockets' ``protocol.close_rcvd`` /
    ``close_sent``), ``received_first`` its ``close_rcvd_then_sent``; ``ping_timeout`` the
    keepalive's pong deadline, for the text. Clean means the server closed first with a code
    of :data:`CLEAN_CLOSE_CODES`.
    """
    if received is not None and (sent is None or received_first):
        text = f"server closed the connection: code {Close(received.code, '')}"
        if received.reason:
            text += f", reason {received.reason!r}"
        return received.code in CLEAN_CLOSE_CODES, text
    if sent is not None:
        if "keepalive" in sent.reason:  # websockets' own: "keepalive ping timeout"
            within = f" within {ping_timeout:g} s" if ping_timeout else ""
            return False, f"peer silent: no answer to a keepalive ping{within}"
        return False, f"closed by this client: code {sent}"
    return False, "connection lost without a close frame (code 1006)"


def describe_keys(params: Mapping[str, Any]) -> str:
    """The first keys of ``params``, bounded, for an error message (never a value)."""
    keys = [str(k)[:_MAX_KEY_CHARS] for k in list(params)[:_MAX_KEYS_SHOWN]]
    more = ", ..." if len(params) > _MAX_KEYS_SHOWN else ""
    return "{" + ", ".join(repr(k) for k in keys) + more + "}" if keys else "nothing"


def route_hint(url: str) -> str:
    """A hint when ``url`` is Pipecat runner's telephony route ``/ws`` (else "").

    The runner serves RTVI clients at ``/ws-client``; ``/ws`` expects a telephony provider's
    text handshake: runners up to 1.0 refuse the handshake (403), 1.4+ drop the connection
    without a close frame (1006). Neither says why.
    """
    try:
        path = urlsplit(url).path
    except ValueError:
        return ""
    if not path.rstrip("/").endswith("/ws"):
        return ""
    return (
        "; /ws is the Pipecat runner's telephony route (a telephony provider's handshake): "
        "an RTVI client connects to /ws-client"
    )


def connect_hint(exc: BaseException, scheme: str, url: str = "") -> str:
    """What a failure to open the WebSocket most likely means, for the error message."""
    telephony = route_hint(url)
    if telephony and isinstance(exc, InvalidStatus):
        return f" (HTTP {exc.response.status_code}{telephony})"
    if isinstance(exc, ssl_module.SSLCertVerificationError):
        return " (the certificate did not verify: pass ssl= a context that trusts it)"
    if isinstance(exc, ssl_module.SSLError) and scheme == "wss":
        return (
            " (the server did not answer in TLS: it may serve plain HTTP, then use ws://; "
            "Pipecat's development runner answers wss:// URLs unless started with "
            "--host localhost)"
        )
    if isinstance(exc, InvalidStatus):
        status = exc.response.status_code
        if status in (401, 403):
            return f" (HTTP {status}: credentials refused; a runner token is single-use)"
        if status == 404:
            return " (HTTP 404: no WebSocket route at this path)"
        return f" (HTTP {status} to the WebSocket handshake)"
    if isinstance(exc, InvalidMessage) and scheme == "ws":
        return " (no valid HTTP answer: if the server speaks TLS, use wss://)"
    if isinstance(exc, TimeoutError):
        return " (no answer to the opening handshake in time)"
    if isinstance(exc, ConnectionRefusedError):
        return " (connection refused: is the bot server running on that port?)"
    return ""


def check_headers(headers: Mapping[str, str]) -> None:
    """Refuse header names or values that HTTP forbids, never quoting a value (secrets)."""
    for name, value in headers.items():
        if not _HEADER_NAME.fullmatch(name):
            raise TransportError(f"invalid handshake header name {name[:_MAX_KEY_CHARS]!r}")
        if not _HEADER_VALUE.fullmatch(value):
            raise TransportError(
                f"the value of handshake header {name!r} holds characters HTTP forbids "
                "(CR, LF or other control characters); the value is not shown"
            )
