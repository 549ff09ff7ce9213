"""pipecat-lifecycle: a Python client and embeddable session-lifecycle core for Pipecat bots.

The core (``State``, ``TRANSITIONS``, ``SessionLifecycle``, RTVI messages, errors) does no
I/O. ``PipecatClient`` drives it over a transport from the ``transports`` package.
"""

from __future__ import annotations

from importlib import import_module
from typing import TYPE_CHECKING, Any

from lifecycle.errors import (
    AuthenticationError,
    BotNotReadyError,
    ConnectionTimeoutError,
    InvalidStateError,
    MessageError,
    PipecatClientError,
    RequestTimeoutError,
    SessionCancelledError,
    SessionClosedError,
    StartBotError,
    TransportError,
    UnsupportedFeatureError,
)
from lifecycle.events import (
    EVENT_NAMES,
    AudioLevel,
    BotOutput,
    BotText,
    FunctionCall,
    FunctionCallStarted,
    FunctionCallStopped,
    LLMMarker,
    Metrics,
    UserInput,
    UserTranscript,
)
from lifecycle.machine import SessionLifecycle, TransitionEvent
from lifecycle.media import AudioFrame
from lifecycle.rtvi import PROTOCOL_VERSION, BotReadyData, RTVIError
from lifecycle.states import State
from lifecycle.table import TRANSITIONS
from lifecycle.version import __version__

if TYPE_CHECKING:
    from lifecycle.client import PipecatClient
    from lifecycle.dispatch import ClientEvent, EventStream
    from lifecycle.functions import FunctionCallHandler
    from lifecycle.start import APIRequest
    from lifecycle.turns import Turn

__all__ = [
    "EVENT_NAMES",
    "PROTOCOL_VERSION",
    "TRANSITIONS",
    "APIRequest",
    "AudioFrame",
    "AudioLevel",
    "AuthenticationError",
    "BotNotReadyError",
    "BotOutput",
    "BotReadyData",
    "BotText",
    "ClientEvent",
    "ConnectionTimeoutError",
    "EventStream",
    "FunctionCall",
    "FunctionCallHandler",
    "FunctionCallStarted",
    "FunctionCallStopped",
    "InvalidStateError",
    "LLMMarker",
    "MessageError",
    "Metrics",
    "PipecatClient",
    "PipecatClientError",
    "RTVIError",
    "RequestTimeoutError",
    "SessionCancelledError",
    "SessionClosedError",
    "SessionLifecycle",
    "StartBotError",
    "State",
    "TransitionEvent",
    "TransportError",
    "Turn",
    "UnsupportedFeatureError",
    "UserInput",
    "UserTranscript",
    "__version__",
]

# Import cost only (PEP 562): the client pulls in httpx and asyncio machinery, which the
# embeddable core (State, TRANSITIONS, SessionLifecycle) never needs. There is no cycle.
_LAZY = {
    "PipecatClient": "lifecycle.client",
    "FunctionCallHandler": "lifecycle.functions",
    "APIRequest": "lifecycle.start",
    "ClientEvent": "lifecycle.dispatch",
    "EventStream": "lifecycle.dispatch",
    "Turn": "lifecycle.turns",
}


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'lifecycle' has no attribute {name!r}")
    value = getattr(import_module(module), name)
    globals()[name] = value
    return value
