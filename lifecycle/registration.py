"""Typed event registration: ``add_event_handler`` / ``event_handler`` for mypy.

One overload per argument type (:mod:`lifecycle.events` groups the names), so mypy checks
each callback against its event's argument; at run time an unknown name raises ``ValueError``.
Kept apart from the client, whose job is sessions, not typing; :meth:`events`,
:meth:`wait_for` and :attr:`dropped_events` live here too, beside registration.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Mapping
from typing import Any, Literal, TypeVar, overload

from lifecycle.dispatch import EventBus, EventStream
from lifecycle.events import (
    AnyDataEvent,
    AudioEvent,
    AudioLevel,
    AudioLevelEvent,
    BotOutput,
    BotText,
    BotTextEvent,
    DataMappingEvent,
    FunctionCall,
    FunctionCallEvent,
    FunctionCallStarted,
    FunctionCallStopped,
    LLMMarker,
    MessageEvent,
    Metrics,
    NoArgumentEvent,
    UserInput,
    UserTranscript,
)
from lifecycle.machine import TransitionEvent
from lifecycle.media import AudioFrame
from lifecycle.rtvi import BotReadyData, RTVIError
from lifecycle.states import State

__all__ = ["EventCallback", "EventRegistration"]

EventCallback = Callable[..., Any]
"""A plain function or coroutine function taking the event's arguments."""

_F = TypeVar("_F", bound=EventCallback)
_R = TypeVar("_R")


class EventRegistration:
    """The event methods of :class:`~lifecycle.PipecatClient`: registration typed per event
    name, streams, waits and the drop count, over the client's event bus."""

    _bus: EventBus  # the client's, built in its __init__

    def _handlers_for(self, name: str) -> list[EventCallback]:
        return self._bus.handlers_for(name)

    @property
    def dropped_events(self) -> int:
        """Events dropped by the callback queue's bound or the drain limit."""
        return self._bus.dropped

    def events(self, *names: str, maxsize: int = 10_000) -> EventStream:
        """Every event from now on (only ``names`` if given) as an async iterator.

        Use as ``async with client.events() as stream: async for event in stream: ...``;
        each item is a :class:`~lifecycle.dispatch.ClientEvent`. The stream is fed when the
        event happens, independently of callbacks, and lasts across sessions until closed.
        Falling ``maxsize`` behind drops its oldest events (never lifecycle ones), counted
        in ``stream.dropped``. Unknown names raise ``ValueError``.
        """
        return self._bus.stream(names, maxsize)

    async def wait_for(
        self, name: str, predicate: Callable[[Any], object] | None = None, *, timeout: float
    ) -> Any:
        """The data of the first ``name`` event after this call for which ``predicate`` holds.

        Raises ``TimeoutError`` after ``timeout`` seconds, and ``SessionClosedError`` if a
        session ends first (unless ``name`` is ``on_disconnected``). Called between
        sessions, it waits into the next one. ``predicate`` runs when the event happens.
        """
        return await self._bus.wait_for(name, predicate, timeout)

    @overload
    def add_event_handler(self, name: NoArgumentEvent, callback: Callable[[], object]) -> None: ...
    @overload
    def add_event_handler(
        self, name: Literal["on_transition"], callback: Callable[[TransitionEvent], object]
    ) -> None: ...
    @overload
    def add_event_handler(
        self, name: Literal["on_transport_state_changed"], callback: Callable[[State], object]
    ) -> None: ...
    @overload
    def add_event_handler(self, name: AnyDataEvent, callback: Callable[[Any], object]) -> None: ...
    @overload
    def add_event_handler(
        self, name: Literal["on_bot_ready"], callback: Callable[[BotReadyData], object]
    ) -> None: ...
    @overload
    def add_event_handler(
        self, name: MessageEvent, callback: Callable[[dict[str, Any]], object]
    ) -> None: ...
    @overload
    def add_event_handler(
        self, name: Literal["on_error"], callback: Callable[[RTVIError], object]
    ) -> None: ...
    @overload
    def add_event_handler(
        self, name: AudioEvent, callback: Callable[[AudioFrame], object]
    ) -> None: ...
    @overload
    def add_event_handler(
        self, name: Literal["on_user_transcript"], callback: Callable[[UserTranscript], object]
    ) -> None: ...
    @overload
    def add_event_handler(
        self, name: Literal["on_user_input"], callback: Callable[[UserInput], object]
    ) -> None: ...
    @overload
    def add_event_handler(
        self, name: BotTextEvent, callback: Callable[[BotText], object]
    ) -> None: ...
    @overload
    def add_event_handler(
        self, name: Literal["on_bot_output"], callback: Callable[[BotOutput], object]
    ) -> None: ...
    @overload
    def add_event_handler(
        self, name: Literal["on_metrics"], callback: Callable[[Metrics], object]
    ) -> None: ...
    @overload
    def add_event_handler(
        self,
        name: Literal["on_llm_function_call_started"],
        callback: Callable[[FunctionCallStarted], object],
    ) -> None: ...
    @overload
    def add_event_handler(
        self, name: FunctionCallEvent, callback: Callable[[FunctionCall], object]
    ) -> None: ...
    @overload
    def add_event_handler(
        self,
        name: Literal["on_llm_function_call_stopped"],
        callback: Callable[[FunctionCallStopped], object],
    ) -> None: ...
    @overload
    def add_event_handler(
        self, name: Literal["on_bot_llm_marker"], callback: Callable[[LLMMarker], object]
    ) -> None: ...
    @overload
    def add_event_handler(
        self, name: AudioLevelEvent, callback: Callable[[AudioLevel], object]
    ) -> None: ...
    @overload
    def add_event_handler(
        self, name: DataMappingEvent, callback: Callable[[Mapping[str, Any]], object]
    ) -> None: ...
    def add_event_handler(self, name: str, callback: EventCallback) -> None:
        """Call ``callback`` on event ``name``; unknown names raise ``ValueError``."""
        self._handlers_for(name).append(callback)

    def remove_event_handler(self, name: str, callback: EventCallback) -> None:
        """Stop calling ``callback`` on event ``name``."""
        handlers = self._handlers_for(name)
        with contextlib.suppress(ValueError):
            handlers.remove(callback)

    @overload
    def event_handler(
        self, name: NoArgumentEvent
    ) -> Callable[[Callable[[], _R]], Callable[[], _R]]: ...
    @overload
    def event_handler(
        self, name: Literal["on_transition"]
    ) -> Callable[[Callable[[TransitionEvent], _R]], Callable[[TransitionEvent], _R]]: ...
    @overload
    def event_handler(
        self, name: Literal["on_transport_state_changed"]
    ) -> Callable[[Callable[[State], _R]], Callable[[State], _R]]: ...
    @overload
    def event_handler(
        self, name: AnyDataEvent
    ) -> Callable[[Callable[[Any], _R]], Callable[[Any], _R]]: ...
    @overload
    def event_handler(
        self, name: Literal["on_bot_ready"]
    ) -> Callable[[Callable[[BotReadyData], _R]], Callable[[BotReadyData], _R]]: ...
    @overload
    def event_handler(
        self, name: MessageEvent
    ) -> Callable[[Callable[[dict[str, Any]], _R]], Callable[[dict[str, Any]], _R]]: ...
    @overload
    def event_handler(
        self, name: Literal["on_error"]
    ) -> Callable[[Callable[[RTVIError], _R]], Callable[[RTVIError], _R]]: ...
    @overload
    def event_handler(
        self, name: AudioEvent
    ) -> Callable[[Callable[[AudioFrame], _R]], Callable[[AudioFrame], _R]]: ...
    @overload
    def event_handler(
        self, name: Literal["on_user_transcript"]
    ) -> Callable[[Callable[[UserTranscript], _R]], Callable[[UserTranscript], _R]]: ...
    @overload
    def event_handler(
        self, name: Literal["on_user_input"]
    ) -> Callable[[Callable[[UserInput], _R]], Callable[[UserInput], _R]]: ...
    @overload
    def event_handler(
        self, name: BotTextEvent
    ) -> Callable[[Callable[[BotText], _R]], Callable[[BotText], _R]]: ...
    @overload
    def event_handler(
        self, name: Literal["on_bot_output"]
    ) -> Callable[[Callable[[BotOutput], _R]], Callable[[BotOutput], _R]]: ...
    @overload
    def event_handler(
        self, name: Literal["on_metrics"]
    ) -> Callable[[Callable[[Metrics], _R]], Callable[[Metrics], _R]]: ...
    @overload
    def event_handler(
        self, name: Literal["on_llm_function_call_started"]
    ) -> Callable[[Callable[[FunctionCallStarted], _R]], Callable[[FunctionCallStarted], _R]]: ...
    @overload
    def event_handler(
        self, name: FunctionCallEvent
    ) -> Callable[[Callable[[FunctionCall], _R]], Callable[[FunctionCall], _R]]: ...
    @overload
    def event_handler(
        self, name: Literal["on_llm_function_call_stopped"]
    ) -> Callable[[Callable[[FunctionCallStopped], _R]], Callable[[FunctionCallStopped], _R]]: ...
    @overload
    def event_handler(
        self, name: Literal["on_bot_llm_marker"]
    ) -> Callable[[Callable[[LLMMarker], _R]], Callable[[LLMMarker], _R]]: ...
    @overload
    def event_handler(
        self, name: AudioLevelEvent
    ) -> Callable[[Callable[[AudioLevel], _R]], Callable[[AudioLevel], _R]]: ...
    @overload
    def event_handler(
        self, name: DataMappingEvent
    ) -> Callable[[Callable[[Mapping[str, Any]], _R]], Callable[[Mapping[str, Any]], _R]]: ...
    def event_handler(self, name: str) -> Callable[[_F], _F]:
        """Decorator form of :meth:`add_event_handler`."""
        self._handlers_for(name)  # unknown names fail here, not at decoration

        def register(callback: _F) -> _F:
            self._handlers_for(name).append(callback)
            return callback

        return register
