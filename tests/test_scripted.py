"""The scripted runner (lifecycle.testing.scripted) against the in-process loopback bot.

The test plays the bot message by message, so each pipecat.evals rule is checked exactly:
calls announced twice or without names, send_after, context, image turns, markers, events a
production bot sends only on request, and what an observing turn keeps.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest

from lifecycle import PipecatClient
from lifecycle.testing.scenario import ScriptedScenario, load_scenarios
from lifecycle.testing.scripted import RunMemory, ScenarioResult, run_scenario
from lifecycle.testing.scripted_events import WATCHED
from tests.support.toolkit import write_scenario
from transports.loopback import LoopbackBot, LoopbackTransport

BOUND = 20.0
Play = Callable[[LoopbackBot], Awaitable[None]]


@pytest.fixture
async def bot_client() -> AsyncIterator[tuple[LoopbackBot, PipecatClient]]:
    bot = LoopbackBot(dialogue=None)
    client = PipecatClient(LoopbackTransport(bot), connect_timeout=5.0)
    yield bot, client
    async with asyncio.timeout(BOUND):
        await client.disconnect()


def scenario(tmp_path: Path, text: str) -> ScriptedScenario:
    (loaded,) = load_scenarios(write_scenario(tmp_path, "s.yaml", text))
    return loaded


async def run(
    pair: tuple[LoopbackBot, PipecatClient],
    scripted: ScriptedScenario,
    play: Play,
    **kwargs: Any,
) -> ScenarioResult:
    bot, client = pair
    async with asyncio.timeout(BOUND), client.events(*WATCHED) as stream:
        await client.connect()
        running = asyncio.create_task(run_scenario(scripted, client, stream=stream, **kwargs))
        await play(bot)
        return await running


async def said(bot: LoopbackBot, count: int = 1) -> dict[str, Any]:
    return await bot.wait_for_message("send-text", count)


async def reply(bot: LoopbackBot, text: str) -> None:
    await bot.send_event("bot-llm-started")
    await bot.send_event("bot-llm-text", {"text": text})
    await bot.send_event("bot-llm-stopped")


CALL_AFTER_REPLY = """
    name: calls
    turns:
      - user: "weather in Lisbon?"
        expect:
          - event: llm_response
            text_contains: "checking"
          - event: function_call
            calls:
              - name: get_weather
                args: {city: Lisbon}
"""


async def test_a_call_announced_twice_matches_after_the_reply(
    tmp_path: Path, bot_client: tuple[LoopbackBot, PipecatClient]
) -> None:
    async def play(bot: LoopbackBot) -> None:
        await said(bot)
        await bot.send_event("bot-llm-started")
        await bot.send_event("bot-llm-text", {"text": "checking"})
        # The deprecated message goes straight to the transport, before bot-llm-stopped.
        deprecated = {
            "function_name": "get_weather",
            "tool_call_id": "c1",
            "args": {"city": "Lisbon"},
        }
        await bot.send_event("llm-function-call", deprecated)
        await bot.send_event("bot-llm-stopped")
        full = {
            "function_name": "get_weather",
            "tool_call_id": "c1",
            "arguments": {"city": "Lisbon"},
        }
        await bot.send_event("llm-function-call-in-progress", full)

    result = await run(bot_client, scenario(tmp_path, CALL_AFTER_REPLY), play)
    assert result.passed, result.failures
    assert [r.status for r in result.expectations] == ["passed", "passed"]


async def test_calls_without_names_fail_at_once_naming_the_setting(
    tmp_path: Path, bot_client: tuple[LoopbackBot, PipecatClient]
) -> None:
    async def play(bot: LoopbackBot) -> None:
        await said(bot)
        await reply(bot, "checking")
        await bot.send_event("llm-function-call-in-progress", {"tool_call_id": "c1"})

    began = time.monotonic()
    result = await run(bot_client, scenario(tmp_path, CALL_AFTER_REPLY), play)
    assert time.monotonic() - began < 30  # not the 60 s budget
    (failure,) = result.failures
    assert "reports function calls without names" in failure
    assert "function_call_report_level" in failure and failure.endswith("(FULL to check args:)")


async def test_send_after_an_event_and_a_bare_delay(
    tmp_path: Path, bot_client: tuple[LoopbackBot, PipecatClient]
) -> None:
    text = """
        name: barge_in
        turns:
          - user: "tell me a story"
            expect:
              - event: llm_started
          - user: "stop, what time is it?"
            send_after: {event: llm_started, delay_ms: 300}
            expect:
              - event: bot_interrupted
          - dtmf: "1"
            send_after: {delay_ms: 200}
    """
    times: dict[str, float] = {}

    async def play(bot: LoopbackBot) -> None:
        await said(bot)
        await bot.send_event("bot-started-speaking")  # the bot talks: only send_after may barge in
        await bot.send_event("bot-llm-started")
        times["llm_started"] = time.monotonic()
        await said(bot, 2)
        times["barge_in"] = time.monotonic()
        await bot.send_event("bot-interrupted")
        await bot.wait_for_message("dtmf")
        times["dtmf"] = time.monotonic()

    result = await run(bot_client, scenario(tmp_path, text), play)
    assert result.passed, result.failures
    assert times["barge_in"] - times["llm_started"] >= 0.3
    assert times["dtmf"] - times["barge_in"] >= 0.2


async def test_send_after_an_event_that_never_comes(
    tmp_path: Path, bot_client: tuple[LoopbackBot, PipecatClient], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr("lifecycle.testing.scripted.SEND_AFTER_MAX_WAIT_S", 0.5)
    text = """
        name: never
        turns:
          - user: "hi"
            send_after: {event: bot_interrupted, delay_ms: 10}
    """

    async def play(bot: LoopbackBot) -> None:
        return None

    result = await run(bot_client, scenario(tmp_path, text), play)
    (failure,) = result.failures
    assert "send_after never fired: 'bot_interrupted' not seen within 500ms" in failure


async def test_context_answered_and_not(
    tmp_path: Path, bot_client: tuple[LoopbackBot, PipecatClient], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr("lifecycle.testing.scripted.CONTEXT_ANSWER_S", 0.3)
    bot, _ = bot_client
    seen: list[Any] = []
    bot.handlers["eval-context"] = lambda data: seen.append(data) or {"ok": True}
    text = """
        name: ctx
        context:
          - {role: system, content: "You are terse."}
        turns:
          - user: "hi"
    """

    async def play(bot: LoopbackBot) -> None:
        await said(bot)

    result = await run(bot_client, scenario(tmp_path, text), play)
    assert result.passed and not result.notices
    assert seen == [{"messages": [{"role": "system", "content": "You are terse."}]}]


async def test_context_a_bot_does_not_answer_is_said_once(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr("lifecycle.testing.scripted.CONTEXT_ANSWER_S", 0.3)
    text = """
        name: ctx
        context: [{role: system, content: "x"}]
        turns:
          - user: "hi"
    """
    memory = RunMemory()
    notices = []
    for _ in range(2):
        bot = LoopbackBot(dialogue=None, handlers={})
        client = PipecatClient(LoopbackTransport(bot), connect_timeout=5.0)

        async def play(bot: LoopbackBot) -> None:
            await said(bot)

        try:
            result = await run((bot, client), scenario(tmp_path, text), play, memory=memory)
        finally:
            await client.disconnect()
        assert result.passed
        notices.extend(result.notices)
    (notice,) = notices
    assert "does not answer pipecat.evals' eval-context message" in notice


async def test_an_image_turn_sends_one_send_file(
    tmp_path: Path, bot_client: tuple[LoopbackBot, PipecatClient]
) -> None:
    (tmp_path / "cat.jpg").write_bytes(b"\xff\xd8\xff\xe0" + b"\x01" * 32)
    text = """
        name: img
        turns:
          - user: "What do you see?"
            image: cat.jpg
    """
    got: dict[str, Any] = {}

    async def play(bot: LoopbackBot) -> None:
        got.update(await bot.wait_for_message("send-file"))

    result = await run(bot_client, scenario(tmp_path, text), play)
    assert result.passed, result.failures
    data = got["data"]
    assert data["content"] == "What do you see?"
    assert data["file"]["format"] == "image/jpeg" and data["file"]["name"] == "cat.jpg"
    assert data["file"]["source"]["type"] == "bytes"


MARKERS = """
    name: markers
    turns:
      - user: "I'd go to Japan because"
        expect:
          - event: llm_marker
            marker: incomplete
            marker_first: true
            markers: 1
            text_after: false
"""


async def test_llm_marker_checks(
    tmp_path: Path, bot_client: tuple[LoopbackBot, PipecatClient]
) -> None:
    async def play(bot: LoopbackBot) -> None:
        await said(bot)
        marker = {"text": "○", "kind": "short", "raw": "○", "markers": ["✓", "○", "◐"]}
        await bot.send_event("bot-llm-marker", marker)

    result = await run(bot_client, scenario(tmp_path, MARKERS), play)
    assert result.passed, result.failures


async def test_opt_in_events_a_bot_never_sends_fail_soon_naming_the_setting(
    tmp_path: Path, bot_client: tuple[LoopbackBot, PipecatClient]
) -> None:
    async def play(bot: LoopbackBot) -> None:
        await said(bot)
        await reply(bot, "Japan is lovely.")  # a reply, and no marker with it

    began = time.monotonic()
    result = await run(bot_client, scenario(tmp_path, MARKERS), play)
    assert time.monotonic() - began < 15
    (failure,) = result.failures
    assert "has never sent 'llm_marker'" in failure
    assert "RTVIObserverParams(bot_llm_marker_enabled=True)" in failure


@pytest.mark.parametrize(
    ("event", "problem"),
    [
        ("image", "comes only from pipecat.evals' eval transport"),
        ("vad_user_started_speaking", "a text turn sends no audio"),
    ],
)
async def test_events_a_production_bot_cannot_send_fail_at_once(
    tmp_path: Path, bot_client: tuple[LoopbackBot, PipecatClient], event: str, problem: str
) -> None:
    text = f"""
        name: never
        turns:
          - user: "draw me a cat"
            expect:
              - event: {event}
    """

    async def play(bot: LoopbackBot) -> None:
        await said(bot)

    began = time.monotonic()
    result = await run(bot_client, scenario(tmp_path, text), play)
    assert time.monotonic() - began < 10
    (failure,) = result.failures
    assert problem in failure


async def test_an_observing_turn_keeps_what_came_after_the_last_match(
    tmp_path: Path, bot_client: tuple[LoopbackBot, PipecatClient]
) -> None:
    text = """
        name: observe
        turns:
          - expect:
              - event: llm_response
                text_contains: "Hello"
          - user: "price of NVDA?"
            expect:
              - event: function_call
          - expect:
              - event: llm_response
                text_contains: "dollars"
                within_ms: 3000
    """

    async def play(bot: LoopbackBot) -> None:
        await reply(bot, "Hello there")  # the greeting, before the first turn looks
        await said(bot)
        await bot.send_event("llm-function-call-in-progress", {"tool_call_id": "c1"})
        await reply(bot, "It is 100 dollars.")  # may come before the third turn starts

    result = await run(bot_client, scenario(tmp_path, text), play)
    assert result.passed, result.failures


@pytest.mark.parametrize(
    ("version", "supported"),
    [
        ("2.2.0", True),
        ("2.3.1", True),
        ("3.0.0", True),
        ("2.1.0", False),
        ("1.9", False),
        ("", False),
        ("two", False),
    ],
)
def test_send_file_needs_rtvi_2_2(version: str, supported: bool) -> None:
    from lifecycle import rtvi

    assert rtvi.supports_send_file(version) is supported
