"""RTVI messages: building what the client sends and checking what it receives.

Pure functions and data classes, no I/O: transports carry the messages, the client
interprets them.
"""

from __future__ import annotations

import itertools
import json
import platform
import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Final

__all__ = [
    "DEFAULT_MAX_MESSAGE_SIZE",
    "LABEL",
    "PROTOCOL_VERSION",
    "BotReadyData",
    "InvalidMessage",
    "RTVIError",
    "about",
    "client_message",
    "client_ready",
    "decode",
    "disconnect_bot",
    "encode",
    "make_message",
    "new_id",
    "protocol_major",
    "send_text",
]

LABEL: Final = "rtvi-ai"
"""The envelope label of every RTVI message; others are ignored."""
PROTOCOL_VERSION: Final = "2.2.0"
"""The RTVI protocol version this client speaks (compatible with any 2.x bot)."""
DEFAULT_MAX_MESSAGE_SIZE: Final = 1024 * 1024
"""Inbound messages larger than this many bytes are dropped."""
LIBRARY: Final = "pipecat-lifecycle"


class InvalidMessage(ValueError):
    """An inbound message that is not a usable RTVI message; ``reason`` says why."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


@dataclass(frozen=True, slots=True)
class BotReadyData:
    """The data of the bot's ``bot-ready`` message."""

    version: str
    """The RTVI protocol version the bot speaks."""
    about: Mapping[str, Any] = field(default_factory=dict)
    """What the bot says about itself (library, library_version, ...)."""
    capabilities: Mapping[str, Any] | None = None
    """Media and feature flags, when the bot sends them."""
    raw: Mapping[str, Any] = field(default_factory=dict)
    """The whole ``data`` object as received."""

    @classmethod
    def from_data(cls, data: Any) -> BotReadyData:
        """Build from a ``bot-ready`` message's ``data`` (missing fields tolerated)."""
        data = data if isinstance(data, Mapping) else {}
        about = data.get("about")
        capabilities = data.get("capabilities")
        return cls(
            version=str(data.get("version", "")),
            about=about if isinstance(about, Mapping) else {},
            capabilities=capabilities if isinstance(capabilities, Mapping) else None,
            raw=data,
        )


@dataclass(frozen=True, slots=True)
class RTVIError:
    """An RTVI ``error`` from the bot (or a lost transport), passed to ``on_error``."""

    message: str
    """The bot's ``data.error`` text."""
    fatal: bool = False
    """Whether the session ends because of it."""

    @classmethod
    def from_data(cls, data: Any) -> RTVIError:
        """Build from an ``error`` message's ``data``; no data gives a generic non-fatal error."""
        if not isinstance(data, Mapping):
            return cls("the bot reported an error without details", False)
        text = data.get("error")
        return cls(
            str(text) if text is not None else "the bot reported an error without details",
            data.get("fatal") is True,
        )


_ID_PREFIX: Final = uuid.uuid4().hex[:8]
_ID_COUNTER = itertools.count(1)


def new_id() -> str:
    """A fresh message id, unique within this process (no syscall per message)."""
    return f"{_ID_PREFIX}-{next(_ID_COUNTER)}"


def make_message(msg_type: str, data: Any = None, msg_id: str | None = None) -> dict[str, Any]:
    """An RTVI envelope of ``msg_type`` carrying ``data``."""
    message: dict[str, Any] = {"label": LABEL, "type": msg_type, "id": msg_id or new_id()}
    if data is not None:
        message["data"] = data
    return message


def about(library_version: str) -> dict[str, str]:
    """The ``about`` object the client sends in ``client-ready``."""
    return {
        "library": LIBRARY,
        "library_version": library_version,
        "platform": platform.system().lower() or "unknown",
        "platform_version": platform.release(),
        "python_version": platform.python_version(),
    }


def client_ready(library_version: str) -> dict[str, Any]:
    """The ``client-ready`` message sent once the transport is connected."""
    return make_message(
        "client-ready", {"version": PROTOCOL_VERSION, "about": about(library_version)}
    )


def client_message(msg_type: str, data: Any = None, msg_id: str | None = None) -> dict[str, Any]:
    """A ``client-message`` ``{t, d}``."""
    payload: dict[str, Any] = {"t": msg_type}
    if data is not None:
        payload["d"] = data
    return make_message("client-message", payload, msg_id)


def send_text(content: str, *, run_immediately: bool, audio_response: bool) -> dict[str, Any]:
    """A ``send-text`` message."""
    return make_message(
        "send-text",
        {
            "content": content,
            "options": {"run_immediately": run_immediately, "audio_response": audio_response},
        },
    )


def disconnect_bot() -> dict[str, Any]:
    """A ``disconnect-bot`` message."""
    return make_message("disconnect-bot")


def encode(message: Mapping[str, Any]) -> str:
    """Serialize a message as compact JSON text."""
    return json.dumps(message, separators=(",", ":"), ensure_ascii=False)


def decode(raw: str | bytes | bytearray | Mapping[str, Any], max_size: int) -> dict[str, Any]:
    """Parse and check one inbound message.

    Raises :class:`InvalidMessage` for anything over ``max_size`` bytes, invalid JSON,
    JSON that is not an object, a missing ``type``, or a label other than ``rtvi-ai``.
    """
    if isinstance(raw, Mapping):
        message: Any = dict(raw)
    else:
        size = len(raw)
        if isinstance(raw, str) and size * 4 > max_size:  # a str of n chars is <= 4n bytes
            size = len(raw.encode("utf-8", "surrogatepass"))
        if size > max_size:
            raise InvalidMessage(f"message of {size} bytes is over the {max_size} byte limit")
        try:
            message = json.loads(raw)
        except (ValueError, RecursionError) as exc:
            raise InvalidMessage(f"invalid JSON: {exc.__class__.__name__}") from None
    if not isinstance(message, dict):
        raise InvalidMessage(f"JSON {type(message).__name__} where an object belongs")
    if message.get("label") != LABEL:
        raise InvalidMessage("label is not rtvi-ai")
    if not isinstance(message.get("type"), str):
        raise InvalidMessage("message has no type")
    return message


def protocol_major(version: str) -> int | None:
    """The major number of a protocol version string, ``None`` when unparsable."""
    head = version.split(".", 1)[0].strip()
    if not (head.isascii() and head.isdigit()) or len(head) > 9:
        return None  # "²" is a digit to isdigit() but not to int(); huge ones are nonsense
    return int(head)
