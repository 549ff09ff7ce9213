"""API.md §9: every RTVI type a Pipecat 1.14 bot sends fires its named, typed event."""

from __future__ import annotations

import asyncio
import base64
import logging
import os
import re
import sys
from pathlib import Path
from typing import Any

import pytest
import structlog
from hypothesis import given, settings
from hypothesis import strategies as st

from lifecycle import (
    EVENT_NAMES,
    AudioFrame,
    AudioLevel,
    BotOutput,
    BotText,
    FunctionCall,
    FunctionCallStarted,
    FunctionCallStopped,
    LLMMarker,
    Metrics,
    PipecatClient,
    UserInput,
    UserTranscript,
    rtvi,
)
from lifecycle.events import EVENT_GROUPS, LIFECYCLE_EVENTS, TYPED_EVENTS, event_table_markdown
from transports.loopback import LoopbackBot, LoopbackTransport

WAIT = 5.0

PCM = b"\x01\x00\x02\x00\x03\x00\x04\x00"

# (RTVI type, data on the wire, event, the argument the callback must get; None: no argument)
ROWS: list[tuple[str, Any, str, Any]] = [
    *[
        (t, None, "on_" + t.replace("-", "_"), None)
        for t in (
            "user-started-speaking",
            "user-stopped-speaking",
            "vad-user-started-speaking",
            "vad-user-stopped-speaking",
            "user-mute-started",
            "user-mute-stopped",
            "bot-started-speaking",
            "bot-stopped-speaking",
            "bot-interrupted",
            "bot-llm-started",
            "bot-llm-stopped",
            "bot-tts-started",
            "bot-tts-stopped",
        )
    ],
    (
        "user-transcription",
        {"text": "hi", "final": True, "timestamp": "t0", "user_id": "u1"},
        "on_user_transcript",
        UserTranscript("hi", True, "t0", "u1"),
    ),
    (
        "user-input",
        {"text": "hi", "input_type": "chat", "final": True, "timestamp": "t", "msg_id": "m1"},
        "on_user_input",
        UserInput("hi", "chat", True, "t", None, "m1"),
    ),
    ("user-llm-text", {"text": "u"}, "on_user_llm_text", BotText("u")),
    (
        "bot-output",
        {
            "text": "Hello.",
            "aggregated_by": "sentence",
            "segment_id": 3,
            "will_be_spoken": True,
            "spoken_status": "new",
            "spoken_progress": {"accumulated_text": "", "remaining_text": "Hello."},
        },
        "on_bot_output",
        BotOutput(
            "Hello.",
            "sentence",
            3,
            True,
            "new",
            {"accumulated_text": "", "remaining_text": "Hello."},
        ),
    ),
    ("bot-transcription", {"text": "s"}, "on_bot_transcript", BotText("s")),
    ("bot-llm-text", {"text": "tok"}, "on_bot_llm_text", BotText("tok")),
    ("bot-tts-text", {"text": "say"}, "on_bot_tts_text", BotText("say")),
    ("stt-raw-text", {"text": "r", "final": False}, "on_stt_raw_text", BotText("r")),
    ("llm-raw-text", {"text": "l"}, "on_llm_raw_text", BotText("l")),
    ("tts-raw-text", {"text": "t"}, "on_tts_raw_text", BotText("t")),
    (
        "metrics",
        {"ttfb": [{"processor": "llm", "value": 0.2}], "tokens": [{"total_tokens": 3}]},
        "on_metrics",
        Metrics(ttfb=({"processor": "llm", "value": 0.2},), tokens=({"total_tokens": 3},)),
    ),
    (
        "llm-function-call-started",
        {"function_name": "f"},
        "on_llm_function_call_started",
        FunctionCallStarted("f"),
    ),
    (
        "llm-function-call-in-progress",
        {"tool_call_id": "c1", "function_name": "f", "arguments": {"a": 1}},
        "on_llm_function_call_in_progress",
        FunctionCall("c1", "f", {"a": 1}),
    ),
    (
        "llm-function-call",
        {"tool_call_id": "c2", "function_name": "f", "args": {"b": 2}},
        "on_llm_function_call",
        FunctionCall("c2", "f", {"b": 2}),
    ),
    (
        "llm-function-call-stopped",
        {"tool_call_id": "c1", "cancelled": False, "function_name": "f", "result": {"ok": 1}},
        "on_llm_function_call_stopped",
        FunctionCallStopped("c1", False, "f", {"ok": 1}),
    ),
    (
        "bot-llm-marker",
        {"text": "✓", "kind": "complete", "raw": "✓ Hi", "markers": ["✓", "○"]},
        "on_bot_llm_marker",
        LLMMarker("✓", "complete", "✓ Hi", ("✓", "○")),
    ),
    (
        "bot-tts-audio",
        {"audio": base64.b64encode(PCM).decode(), "sample_rate": 24000, "num_channels": 1},
        "on_bot_tts_audio",
        AudioFrame(PCM, 24000, 1),
    ),
    ("user-audio-level", {"value": 0.5}, "on_user_audio_level", AudioLevel(0.5)),
    ("bot-audio-level", {"value": 1}, "on_bot_audio_level", AudioLevel(1.0)),
    ("system-log", {"text": "log"}, "on_system_log", BotText("log")),
    ("bot-llm-search-response", {"search_result": "x"}, "on_bot_llm_search_response", None),
    ("ui-command", {"command": "toast", "payload": {}}, "on_ui_command", None),
    ("ui-job-group", {"kind": "group_started", "job_id": "j"}, "on_ui_job_group", None),
]
DATA_MAPPING_EVENTS = {"on_bot_llm_search_response", "on_ui_command", "on_ui_job_group"}


def message(msg_type: str, data: Any = None) -> dict[str, Any]:
    out: dict[str, Any] = {"label": "rtvi-ai", "type": msg_type}
    if data is not None:
        out["data"] = data
    return out


class Seen(list[tuple[str, tuple[Any, ...]]]):
    """The events a client fired, in order; ``changed`` is set on each."""

    def __init__(self) -> None:
        super().__init__()
        self.changed = asyncio.Event()

    def record(self, name: str, args: tuple[Any, ...]) -> None:
        self.append((name, args))
        self.changed.set()


async def ready_client(bot: LoopbackBot) -> tuple[PipecatClient, Seen]:
    client = PipecatClient(LoopbackTransport(bot), connect_timeout=2.0)
    seen = Seen()
    for name in sorted(EVENT_NAMES - {"on_transition", "on_transport_state_changed"}):
        client.add_event_handler(name, lambda *args, _n=name: seen.record(_n, args))
    async with asyncio.timeout(WAIT):
        await client.connect()
    return client, seen


async def until(seen: Seen, name: str) -> tuple[Any, ...]:
    async with asyncio.timeout(WAIT):
        while True:
            for event, args in seen:
                if event == name:
                    return args
            seen.changed.clear()
            await seen.changed.wait()


def test_every_pipecat_type_has_a_row_and_a_name() -> None:
    assert {row[0] for row in ROWS} == set(TYPED_EVENTS)
    assert len(TYPED_EVENTS) == 36
    assert set(LIFECYCLE_EVENTS) | {row[2] for row in ROWS} == EVENT_NAMES


@pytest.mark.parametrize(("msg_type", "data", "event", "expected"), ROWS, ids=[r[0] for r in ROWS])
async def test_each_type_fires_its_typed_event(
    msg_type: str, data: Any, event: str, expected: Any
) -> None:
    bot = LoopbackBot()
    client, seen = await ready_client(bot)
    try:
        async with asyncio.timeout(WAIT):
            await bot.send(message(msg_type, data))
        args = await until(seen, event)
        if event in DATA_MAPPING_EVENTS:
            assert args == (data,)
        elif expected is None:
            assert args == ()
        else:
            assert args == (expected,)
            if hasattr(expected, "raw"):
                assert args[0].raw == data
        assert not [name for name, _ in seen if name == "on_unhandled_message"]
    finally:
        async with asyncio.timeout(WAIT):
            await client.disconnect()


JUNK_DATA = [None, "junk", 7, [], {"text": 5, "final": "yes", "value": "loud", "audio": "!!"}]


@pytest.mark.parametrize("junk", JUNK_DATA, ids=repr)
async def test_missing_or_mistyped_fields_still_fire(junk: Any) -> None:
    bot = LoopbackBot()
    client, seen = await ready_client(bot)
    try:
        for msg_type, _, _, _ in ROWS:
            async with asyncio.timeout(WAIT):
                await bot.send(message(msg_type, junk))
        await until(seen, "on_ui_job_group")  # the last row
        fired = [name for name, _ in seen if name not in LIFECYCLE_EVENTS]
        assert fired == [row[2] for row in ROWS]
        transcript = next(a for n, a in seen if n == "on_user_transcript")[0]
        assert transcript.text is None and transcript.final is None
        level = next(a for n, a in seen if n == "on_bot_audio_level")[0]
        assert level.value is None
        audio = next(a for n, a in seen if n == "on_bot_tts_audio")[0]
        assert audio.pcm == b""
    finally:
        async with asyncio.timeout(WAIT):
            await client.disconnect()


@settings(max_examples=200, deadline=None)
@given(
    msg_type=st.sampled_from(sorted(TYPED_EVENTS)),
    data=st.recursive(
        st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=5),
        lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=8), inner),
        max_leaves=10,
    ),
)
def test_typed_decode_never_raises(msg_type: str, data: Any) -> None:
    event = rtvi.classify(message(msg_type, data) | {"data": data})
    assert isinstance(event, rtvi.Notification) and event.event == TYPED_EVENTS[msg_type][0]


def test_bot_output_type_falls_back_to_the_older_names() -> None:
    assert BotOutput.from_data({"output_type": "word", "aggregated_by": "x"}).output_type == "word"
    assert BotOutput.from_data({"aggregated_by": "sentence"}).output_type == "sentence"
    assert BotOutput.from_data({"text_type": "code"}).output_type == "code"
    assert BotOutput.from_data({}).output_type is None


async def test_unknown_type_reaches_on_unhandled_message_whole() -> None:
    bot = LoopbackBot()
    client, seen = await ready_client(bot)
    try:
        custom = message("x-custom", {"a": [1]}) | {"id": "i1"}
        async with asyncio.timeout(WAIT):
            await bot.send(custom)
        assert await until(seen, "on_unhandled_message") == (custom,)
    finally:
        async with asyncio.timeout(WAIT):
            await client.disconnect()


async def test_the_websocket_interruption_frame_is_no_event() -> None:
    bot = LoopbackBot()
    client, seen = await ready_client(bot)
    try:
        with structlog.testing.capture_logs() as logs:
            async with asyncio.timeout(WAIT):
                await bot.send(message("transport-interruption", {}))
                await bot.send(message("bot-interrupted"))
            await until(seen, "on_bot_interrupted")
        assert [n for n, _ in seen if n not in LIFECYCLE_EVENTS] == ["on_bot_interrupted"]
        (line,) = [entry for entry in logs if entry["event"] == "inbound message ignored"]
        assert line["log_level"] == "debug"
    finally:
        async with asyncio.timeout(WAIT):
            await client.disconnect()


async def test_conversation_content_is_never_logged_at_info_or_above() -> None:
    secret = "PRIVATE-CONVERSATION-TEXT"
    bot = LoopbackBot()
    client, seen = await ready_client(bot)
    client.register_function_call_handler("f", lambda call: {"echo": secret})
    try:
        with structlog.testing.capture_logs() as logs:
            async with asyncio.timeout(WAIT):
                await client.send_text(secret)
                for msg_type, data, _, _ in ROWS:
                    if isinstance(data, dict):
                        data = {k: (secret if isinstance(v, str) else v) for k, v in data.items()}
                        data["tool_call_id"] = "c9"
                        data["function_name"] = "f"
                    await bot.send(message(msg_type, data))
                await bot.wait_for_message("llm-function-call-result")
            await until(seen, "on_ui_job_group")
        loud = [e for e in logs if logging.getLevelName(e["log_level"].upper()) >= logging.INFO]
        assert not [e for e in loud if secret in repr(e)]
    finally:
        async with asyncio.timeout(WAIT):
            await client.disconnect()


# ------------------------------------------------------------------ typed registration


def _overload_names() -> set[str]:
    import typing

    names: set[str] = set()
    for method in (PipecatClient.add_event_handler, PipecatClient.event_handler):
        found: set[str] = set()
        for overload in typing.get_overloads(method):
            hint = typing.get_type_hints(overload, vars(sys.modules[method.__module__]))["name"]
            found |= set(typing.get_args(hint))
        assert names in (set(), found)
        names = found
    return names


def test_every_event_has_a_typed_overload() -> None:
    assert _overload_names() == EVENT_NAMES
    assert set(EVENT_GROUPS["FunctionCallEvent"]) == {
        name for name, build in TYPED_EVENTS.values() if build == FunctionCall.from_data
    }
    assert set(EVENT_GROUPS["BotTextEvent"]) == {
        name for name, build in TYPED_EVENTS.values() if build == BotText.from_data
    }
    assert set(EVENT_GROUPS["NoArgumentEvent"]) - set(LIFECYCLE_EVENTS) == {
        name for name, build in TYPED_EVENTS.values() if build is None
    }


def test_unknown_event_names_still_fail_at_runtime() -> None:
    client = PipecatClient(LoopbackTransport(LoopbackBot()))
    with pytest.raises(ValueError, match="unknown event"):
        client.add_event_handler("on_nope", lambda: None)  # type: ignore[call-overload]
    with pytest.raises(ValueError, match="unknown event"):
        client.event_handler("on_nope")  # type: ignore[call-overload]


def test_mypy_rejects_a_callback_of_the_wrong_type(tmp_path: Path) -> None:
    """tests/typecheck/typed_registration.py marks each wrong registration with the error mypy
    must raise; --strict's warn_unused_ignores fails the check if one is accepted. The README's
    conversation example is checked in the same run."""
    from mypy import api

    root = Path(__file__).resolve().parents[1]
    example = tmp_path / "readme_conversation.py"
    example.write_text(readme_conversation_example())
    out, err, status = api.run(
        [
            "--strict",
            "--no-incremental",
            "--cache-dir",
            os.devnull,
            str(root / "tests" / "typecheck" / "typed_registration.py"),
            str(example),
        ]
    )
    assert status == 0, out + err


# ------------------------------------------------------------------------- the README

README = Path(__file__).resolve().parents[1] / "README.md"


def test_readme_event_table_is_generated_from_the_code() -> None:
    text = README.read_text()
    begin = text.index("<!-- events:begin")
    begin = text.index("\n", begin) + 1
    end = text.index("<!-- events:end -->")
    assert text[begin:end] == event_table_markdown()


def readme_conversation_example() -> str:
    text = README.read_text()
    section = text[text.index("## Reacting to the conversation") : text.index("<!-- events:begin")]
    (code,) = re.findall(r"```python\n(.*?)```", section, re.S)
    return str(code)


def test_readme_conversation_example_compiles_and_uses_real_names() -> None:
    code = readme_conversation_example()
    compile(code, "README.md", "exec")
    for name in re.findall(r'"(on_[a-z_]+)"', code):
        assert name in EVENT_NAMES, name


def test_the_drop_tiers_name_only_known_events() -> None:
    from lifecycle.dispatch import HIGH_RATE_EVENTS, NEVER_DROPPED_EVENTS
    from lifecycle.events import EVENT_NAMES

    assert HIGH_RATE_EVENTS <= EVENT_NAMES, HIGH_RATE_EVENTS - EVENT_NAMES
    assert NEVER_DROPPED_EVENTS <= EVENT_NAMES, NEVER_DROPPED_EVENTS - EVENT_NAMES
    assert not HIGH_RATE_EVENTS & NEVER_DROPPED_EVENTS
    # streamed per token or frame, as the rows of lifecycle/events.py say
    assert {"on_bot_llm_text", "on_bot_tts_audio", "on_metrics", "on_bot_audio"} <= HIGH_RATE_EVENTS
    assert "on_bot_output" not in HIGH_RATE_EVENTS
