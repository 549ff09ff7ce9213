"""Checked by mypy --strict in tests/test_typed_events.py, never run.

Each wrong registration carries a ``type: ignore`` for the error mypy must report; with
``warn_unused_ignores`` (part of --strict) an accepted wrong callback fails the check.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from lifecycle import (
    AudioFrame,
    BotOutput,
    BotReadyData,
    BotText,
    FunctionCall,
    PipecatClient,
    RTVIError,
    State,
    TransitionEvent,
    UserTranscript,
)


def check(client: PipecatClient) -> None:
    def on_transcript(event: UserTranscript) -> None: ...
    async def on_output(event: BotOutput) -> None: ...
    def on_text(event: BotText) -> None: ...
    def on_ready(data: BotReadyData) -> None: ...
    def on_nothing() -> None: ...
    def on_audio(frame: AudioFrame) -> None: ...
    def on_error(error: RTVIError) -> None: ...
    def on_state(state: State) -> None: ...
    def on_transition(event: TransitionEvent) -> None: ...
    def on_ui(data: Mapping[str, Any]) -> None: ...
    def on_call(call: FunctionCall) -> None: ...

    # Right: each callback takes its event's argument.
    client.add_event_handler("on_user_transcript", on_transcript)
    client.add_event_handler("on_bot_output", on_output)
    client.add_event_handler("on_bot_llm_text", on_text)
    client.add_event_handler("on_bot_ready", on_ready)
    client.add_event_handler("on_bot_started_speaking", on_nothing)
    client.add_event_handler("on_bot_tts_audio", on_audio)
    client.add_event_handler("on_error", on_error)
    client.add_event_handler("on_transport_state_changed", on_state)
    client.add_event_handler("on_transition", on_transition)
    client.add_event_handler("on_ui_command", on_ui)
    client.add_event_handler("on_llm_function_call_in_progress", on_call)
    decorated = client.event_handler("on_user_transcript")(on_transcript)
    decorated(UserTranscript())

    @client.event_handler("on_bot_output")
    async def output(event: BotOutput) -> None: ...

    # Wrong: mypy must reject every one of these.
    client.add_event_handler("on_user_transcript", on_text)  # type: ignore[call-overload]
    client.add_event_handler("on_bot_output", on_transcript)  # type: ignore[call-overload]
    client.add_event_handler("on_bot_ready", on_nothing)  # type: ignore[call-overload]
    client.add_event_handler("on_bot_started_speaking", on_audio)  # type: ignore[call-overload]
    client.add_event_handler("on_error", on_state)  # type: ignore[call-overload]
    client.add_event_handler("on_llm_function_call", on_transcript)  # type: ignore[call-overload]
    client.event_handler("on_user_transcript")(on_text)  # type: ignore[arg-type]

    @client.event_handler("on_bot_ready")  # type: ignore[arg-type]
    def wrong(data: State) -> None: ...
