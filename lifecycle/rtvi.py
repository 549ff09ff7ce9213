"""RTVI messages: building what the client sends and checking what it receives.

Pure functions and data classes, no I/O: transports carry the messages, the client
interprets them.
"""

from __future__ import annotations

import itertools
import json
import platform
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, ClassVar, Final, TypeGuard

import orjson

from lifecycle.deprecation import renamed
from lifecycle.errors import UnsupportedFeatureError
from lifecycle.events import TYPED_EVENTS

__all__ = [
    "CLASSIFIED_TYPES",
    "DEFAULT_MAX_MESSAGE_SIZE",
    "DTMF_KEYS",
    "LABEL",
    "PROTOCOL_VERSION",
    "BotError",
    "BotReady",
    "BotReadyData",
    "ErrorResponse",
    "Ignored",
    "InboundMessage",
    "InvalidMessage",
    "Notification",
    "RTVIError",
    "ServerMessage",
    "ServerResponse",
    "Unknown",
    "about",
    "classify",
    "client_message",
    "client_ready",
    "decode",
    "disconnect_bot",
    "dtmf",
    "dtmf_keys",
    "encode",
    "function_call_result",
    "make_message",
    "new_id",
    "parse",
    "protocol_major",
    "response_result",
    "send_text",
    "ui_cancel_job_group",
    "ui_event",
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


# ---------------------------------------------------------- inbound messages
# What decode() returns: one classified message per inbound message. The protocol matches
# on it once; every class has ``type``, the RTVI type it came from.
# Built once per message, so not frozen (a frozen dataclass takes three times as long to
# build); nothing changes them once built.


@dataclass(slots=True)
class BotReady:
    """``bot-ready``: the bot's pipeline is up."""

    id: Any
    """The message id (echoes the client-ready id)."""
    info: BotReadyData
    """The message's data."""
    major: int | None
    """The major number of the bot's protocol version, ``None`` when unparsable."""
    type: ClassVar[str] = "bot-ready"


@dataclass(slots=True)
class ServerResponse:
    """``server-response``: the answer to a client request ``id``."""

    id: Any
    result: Any
    """The response's ``d``."""
    type: ClassVar[str] = "server-response"


@dataclass(slots=True)
class ErrorResponse:
    """``error-response``: the bot refused the request ``id``."""

    id: Any
    error: str
    """The bot's error text (a generic one when it sent none)."""
    message: dict[str, Any]
    """The whole message, for ``on_message_error``."""
    type: ClassVar[str] = "error-response"


@dataclass(slots=True)
class ServerMessage:
    """``server-message``: a bot-initiated message; ``data`` as sent."""

    data: Any
    type: ClassVar[str] = "server-message"


@dataclass(slots=True)
class BotError:
    """RTVI ``error``."""

    error: RTVIError
    type: ClassVar[str] = "error"


@dataclass(slots=True)
class Notification:
    """A typed RTVI message: fires ``event`` with ``args`` (none or one)."""

    type: str
    event: str
    args: tuple[Any, ...]


@dataclass(slots=True)
class Ignored:
    """A message that is no event at all (e.g. the WebSocket interruption frame)."""

    type: str
    reason: str


@dataclass(slots=True)
class Unknown:
    """An RTVI type this client does not know: ``on_unhandled_message`` gets ``message``."""

    type: str
    message: dict[str, Any]


InboundMessage = (
    BotReady
    | ServerResponse
    | ErrorResponse
    | ServerMessage
    | BotError
    | Notification
    | Ignored
    | Unknown
)
"""Everything :func:`decode` can return (an inbound RTVI message, classified)."""

_NOT_EVENTS: Final[Mapping[str, str]] = {
    # The WebSocket transport's protobuf interruption frame arrives beside the bot's own
    # bot-interrupted message, which is the event.
    "transport-interruption": "interruption frame (bot-interrupted is the event)",
}


_WIRE_TYPES: Final = (str, bytes, bytearray)

CLASSIFIED_TYPES: Final = frozenset(
    {"bot-ready", "server-response", "error-response", "server-message", "error", *_NOT_EVENTS}
)
"""The RTVI types :func:`classify` knows besides the typed events' (``TYPED_EVENTS``)."""

_TYPED: Final = dict(TYPED_EVENTS)  # a dict's get is quicker than the read-only proxy's

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
    """A ``send-text`` message; ``TypeError`` when ``content`` is not a ``str``."""
    if not isinstance(content, str):
        raise TypeError(f"send_text content must be a str, not {type(content).__name__}")
    return make_message(
        "send-text",
        {
            "content": content,
            "options": {"run_immediately": run_immediately, "audio_response": audio_response},
        },
    )


def send_file(
    content: str, data_b64: str, mime: str, name: str | None, *, run_immediately: bool
) -> dict[str, Any]:
    """A ``send-file`` message (RTVI 2.2): ``content`` and one file as inline base64 bytes."""
    file: dict[str, Any] = {"format": mime, "source": {"type": "bytes", "bytes": data_b64}}
    if name is not None:
        file["name"] = name
    return make_message(
        "send-file",
        {"content": content, "file": file, "options": {"run_immediately": run_immediately}},
    )


def supports_send_file(bot_version: str) -> bool:
    """Whether a bot speaking ``bot_version`` takes ``send-file`` (RTVI 2.2 and later)."""
    major, minor = (*_version_tuple(bot_version), None, None)[:2]
    return major is not None and minor is not None and (major, minor) >= (2, 2)


def disconnect_bot() -> dict[str, Any]:
    """A ``disconnect-bot`` message."""
    return make_message("disconnect-bot")


DTMF_KEYS: Final = frozenset("0123456789*#")
"""The keys a ``dtmf`` message may carry."""


def dtmf_keys(buttons: str | Sequence[str]) -> list[str]:
    """``buttons`` as a list of keys; ``ValueError`` for none or any key outside ``0-9*#``."""
    if not isinstance(buttons, str | Sequence):
        raise ValueError(f"DTMF buttons must be a string or a sequence of keys, not {buttons!r}")
    keys = list(buttons)
    if not keys:
        raise ValueError("DTMF needs at least one key")
    bad = [key for key in keys if not (isinstance(key, str) and key in DTMF_KEYS)]
    if bad:
        raise ValueError(f"invalid DTMF keys {bad[:8]!r}: each must be one of 0-9, * or #")
    return keys


def dtmf(keys: list[str], bot_version: str) -> list[dict[str, Any]]:
    """The ``dtmf`` message(s) for ``keys``, as pipecat-client-web 1.13 sends them.

    One ``{buttons}`` message for a bot on RTVI 2.1+ (or an unparsable version), one
    ``{button}`` per key for a 2.0.x bot. A bot below RTVI 2.0 has no ``dtmf``:
    :class:`~lifecycle.errors.UnsupportedFeatureError` (as client-js raises before sending).
    """
    major = _version_tuple(bot_version)[0]
    if major is not None and major < 2:
        raise UnsupportedFeatureError("dtmf", bot_version[:40], "2.0")
    if _version_tuple(bot_version)[:2] == (2, 0):
        return [make_message("dtmf", {"button": key}) for key in keys]
    return [make_message("dtmf", {"buttons": keys})]


def _version_tuple(version: str) -> tuple[int | None, ...]:
    parts = version.split(".")
    return tuple(protocol_major(part) for part in parts[:3])


def ui_event(event: str, payload: Any = None) -> dict[str, Any]:
    """A ``ui-event`` ``{event, payload?}`` (payload left out when None, as client-js does)."""
    data: dict[str, Any] = {"event": event}
    if payload is not None:
        data["payload"] = payload
    return make_message("ui-event", data)


def ui_cancel_job_group(job_id: str, reason: str | None = None) -> dict[str, Any]:
    """A ``ui-cancel-job-group`` ``{job_id, reason?}``."""
    data: dict[str, Any] = {"job_id": job_id}
    if reason is not None:
        data["reason"] = reason
    return make_message("ui-cancel-job-group", data)


def function_call_result(
    function_name: str, tool_call_id: str, arguments: Mapping[str, Any], result: Any
) -> dict[str, Any]:
    """An ``llm-function-call-result``, shaped as Pipecat 1.14 validates it.

    ``result`` goes as is when it is a dict or a str, else as its JSON text.
    """
    if not isinstance(result, dict | str):
        result = json.dumps(result, separators=(",", ":"), ensure_ascii=False)
    return make_message(
        "llm-function-call-result",
        {
            "function_name": function_name,
            "tool_call_id": tool_call_id,
            "arguments": dict(arguments),
            "result": result,
        },
    )


def encode(message: Mapping[str, Any]) -> str:
    """Serialize a message as compact JSON text."""
    return json.dumps(message, separators=(",", ":"), ensure_ascii=False)


def parse(raw: str | bytes | bytearray | Mapping[str, Any], max_size: int) -> dict[str, Any]:
    """Parse and check one inbound message: the inbound path's one size gate.

    Raises :class:`InvalidMessage` for anything over ``max_size`` bytes, invalid JSON,
    JSON that is not an object, a missing ``type``, or a label other than ``rtvi-ai``.
    """
    message: Any
    # Wire text first: a concrete-type check is cheaper than the Mapping ABC's.
    if isinstance(raw, _WIRE_TYPES):
        size = len(raw)
        if size * 4 > max_size and isinstance(raw, str):  # a str of n chars is <= 4n bytes
            size = len(raw.encode("utf-8", "surrogatepass"))
        if size > max_size:
            raise InvalidMessage(f"message of {size} bytes is over the {max_size} byte limit")
        try:
            message = orjson.loads(raw)  # about 5x json's speed: a bot streams tokens
        except orjson.JSONDecodeError:
            message = _loads_beyond_spec(raw)
    elif isinstance(raw, Mapping):
        message = dict(raw)
    else:
        raise InvalidMessage(f"{type(raw).__name__} where a message belongs")
    if not isinstance(message, dict):
        raise InvalidMessage(f"JSON {type(message).__name__} where an object belongs")
    if message.get("label") != LABEL:
        raise InvalidMessage("label is not rtvi-ai")
    if not isinstance(message.get("type"), str):
        raise InvalidMessage("message has no type")
    return message


def _loads_beyond_spec(raw: str | bytes | bytearray) -> Any:
    # What orjson refuses and json accepts outside the JSON spec (NaN, Infinity, lone
    # surrogates), which a Python bot's json.dumps can send: parsed as it always was.
    try:
        return json.loads(raw)
    except (ValueError, RecursionError) as exc:
        raise InvalidMessage(f"invalid JSON: {exc.__class__.__name__}") from None


def decode(raw: str | bytes | bytearray | Mapping[str, Any], max_size: int) -> InboundMessage:
    """One inbound message, checked and classified (:func:`parse`, then :func:`classify`).

    Raises :class:`InvalidMessage` for a message :func:`parse` rejects; a well-formed
    message of any type (known or not) always gives an event.
    """
    return classify(parse(raw, max_size))


def classify(message: dict[str, Any]) -> InboundMessage:
    """The class of a parsed RTVI message (bot-ready, response, typed notification...);
    never raises."""
    msg_type: str = message["type"]
    data = message.get("data")
    typed = _TYPED.get(msg_type)
    if typed is not None:
        name, build = typed
        return Notification(msg_type, name, () if build is None else (build(data),))
    msg_id = message.get("id")
    match msg_type:  # the most frequent first
        case "server-response":
            return ServerResponse(msg_id, response_result(data))
        case "bot-ready":
            info = BotReadyData.from_data(data)
            return BotReady(msg_id, info, protocol_major(info.version))
        case "error-response":
            text = data.get("error") if _is_mapping(data) else None
            return ErrorResponse(msg_id, str(text or "the bot refused the request"), message)
        case "server-message":
            return ServerMessage(data)
        case "error":
            return BotError(RTVIError.from_data(data))
        case _ if msg_type in _NOT_EVENTS:
            return Ignored(msg_type, _NOT_EVENTS[msg_type])
        case _:
            return Unknown(msg_type, message)


def response_result(data: Any) -> Any:
    """A ``server-response``'s result: the ``d`` of its ``data`` (``None`` without one)."""
    return data.get("d") if _is_mapping(data) else None


def _is_mapping(value: Any) -> TypeGuard[Mapping[str, Any]]:
    # JSON gives plain dicts: checked before the (slower) Mapping ABC.
    return type(value) is dict or isinstance(value, Mapping)


def protocol_major(version: str) -> int | None:
    """The major number of a protocol version string, ``None`` when unparsable."""
    head = version.split(".", 1)[0].strip()
    if not (head.isascii() and head.isdigit()) or len(head) > 9:
        return None  # "²" is a digit to isdigit() but not to int(); huge ones are nonsense
    return int(head)


# Old names kept for one release (CHANGELOG: Deprecated): "event" now means only what the
# client emits to callbacks; a decoded RTVI message is a message.
__getattr__ = renamed(
    __name__,
    {"InboundEvent": ("InboundMessage", InboundMessage), "to_event": ("classify", classify)},
)
