"""Simulated callers (lifecycle.testing.simulation) against the testing bot and the stand-in."""

from __future__ import annotations

import asyncio
import json
import re
from collections.abc import AsyncIterator, Callable, Iterator
from typing import Any

import pytest

from lifecycle import PipecatClient
from lifecycle.testing import ModelEndpoint
from lifecycle.testing.simulation import (
    END_REASONS,
    SimulatedCaller,
    SimulationResult,
)
from lifecycle.testing.simulation_file import ExpectedCall, Metric
from transports.testing import Dialogue, FunctionTrigger, TestingBotServer
from transports.websocket import WebSocketTransport

from .support.openai_stub import OpenAIStub, StubReply, Tool, scripted, tool_reply

T = 30.0
KEY = "sk-sim-SECRET-abcdef0123456789"
GREETING = "Hello, this is the restaurant, how can I help?"
Verdicts = Callable[[str, str], tuple[str, str]]


def end_call(text: str | None = None, success: bool = True) -> StubReply:
    return StubReply(
        text=text, tool_calls=(Tool("end_call", {"success": success, "reason": "done"}),)
    )


def yes(criterion: str, text: str) -> tuple[str, str]:
    return "yes", "it did"


def is_persona(request: dict[str, Any]) -> bool:
    return any(t["function"]["name"] == "end_call" for t in request.get("tools") or [])


def judge_answer(request: dict[str, Any], verdicts: Verdicts = yes) -> StubReply:
    """Answers the judge's question (the criterion in its instructions, the state as JSON)."""
    system, state = request["messages"][0]["content"], json.loads(request["messages"][1]["content"])
    criterion = re.search(r"Criterion: (.*?)\n\n", system, re.S)
    assert criterion is not None, system
    text = state.get("latest_bot_reply") or json.dumps(state["conversation"])
    verdict, reason = verdicts(criterion.group(1), text)
    return StubReply(text=json.dumps({"verdict": verdict, "reason": reason}))


def stand_in(persona: list[StubReply | str], verdicts: Verdicts = yes) -> Any:
    """Persona answers in order; the judge's questions answered by ``verdicts``."""
    next_persona = scripted(*persona)

    def handler(request: dict[str, Any]) -> StubReply | str:
        if not is_persona(request):
            return judge_answer(request, verdicts)
        return next_persona(request)

    return handler


@pytest.fixture(autouse=True)
def key(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OPENAI_API_KEY", KEY)


@pytest.fixture
def stub() -> Iterator[OpenAIStub]:
    with OpenAIStub() as server:
        yield server


def dialogue(**changes: Any) -> Dialogue:
    settings: dict[str, Any] = {"greeting": GREETING, **changes}
    return Dialogue(**settings)


@pytest.fixture
async def bot(request: pytest.FixtureRequest) -> AsyncIterator[TestingBotServer]:
    talk = getattr(request, "param", None) or dialogue()
    async with TestingBotServer(dialogue=talk) as server:
        yield server


@pytest.fixture
async def client(bot: TestingBotServer) -> AsyncIterator[PipecatClient]:
    client = PipecatClient(WebSocketTransport(), connect_timeout=T)
    yield client
    async with asyncio.timeout(T):
        await client.disconnect()


async def call(
    client: PipecatClient, bot: TestingBotServer, stub: OpenAIStub, **settings: Any
) -> SimulationResult:
    endpoint = ModelEndpoint(stub.base_url, "stub-model")
    options: dict[str, Any] = {
        "persona": "Jamie, calling to book a table.",
        "goal": "Book a table for two at 6 PM.",
        "success": "the bot confirmed a table for two",
        "model": endpoint,
        "judge": endpoint,
        **settings,
    }
    caller = SimulatedCaller(client, **options)  # listens before the bot can greet
    async with asyncio.timeout(T):
        await client.start_bot_and_connect(bot.start_url)
        return await caller.run()


def persona_requests(stub: OpenAIStub) -> list[dict[str, Any]]:
    return [r for r in stub.completions if is_persona(r)]


async def test_end_call_passes_and_records_the_conversation(
    client: PipecatClient, bot: TestingBotServer, stub: OpenAIStub
) -> None:
    stub.handler = stand_in(["A table for two at 6 PM, please.", end_call()])
    result = await call(client, bot, stub)
    assert (result.passed, result.end_reason, result.error) == (True, "end_call", None)
    assert [t.caller for t in result.turns] == ["A table for two at 6 PM, please."]
    assert result.turns[0].bot == "You said: A table for two at 6 PM, please."
    assert result.turns[0].first_token_ms is not None
    roles = [(m["role"], m["content"]) for m in result.transcript]
    assert roles == [
        ("assistant", GREETING),
        ("user", "A table for two at 6 PM, please."),
        ("assistant", "You said: A table for two at 6 PM, please."),
    ]
    assert result.end_call == {"success": True, "reason": "done"}
    [goal] = result.verdicts
    assert (goal.kind, goal.passed, goal.reason) == ("goal", True, "it did")
    # The persona ran under pipecat.evals' instruction, the bot's turns as "user" messages.
    first, second = persona_requests(stub)
    assert "Who you are: Jamie, calling to book a table." in first["messages"][0]["content"]
    assert first["messages"][1:] == [{"role": "user", "content": GREETING}]
    assert second["messages"][2]["role"] == "assistant"
    assert result.model_calls == 3
    json.dumps(result.to_json())  # JSON-ready


async def test_goodbye_line_waits_for_the_closing_reply(
    client: PipecatClient, bot: TestingBotServer, stub: OpenAIStub
) -> None:
    stub.handler = stand_in([end_call("Thanks, goodbye!")])
    result = await call(client, bot, stub)
    assert result.end_reason == "end_call" and result.passed
    assert result.transcript[-1] == {
        "role": "assistant",
        "content": "You said: Thanks, goodbye!",
        "at": result.transcript[-1]["at"],
    }


@pytest.mark.parametrize("bot", [dialogue(reply=lambda text: "")], indirect=True)
async def test_closing_reply_wait_ends_the_call_when_the_bot_says_nothing(
    client: PipecatClient, bot: TestingBotServer, stub: OpenAIStub
) -> None:
    stub.handler = stand_in([end_call("Bye!")])
    result = await call(client, bot, stub, closing_reply_wait_s=0.3)
    assert result.end_reason == "end_call"
    assert result.transcript[-1]["role"] == "user"


async def test_bot_hanging_up_ends_the_call(
    client: PipecatClient, bot: TestingBotServer, stub: OpenAIStub
) -> None:
    asked = asyncio.Event()
    loop = asyncio.get_running_loop()
    persona = stand_in(["Hello?"] * 50)

    def handler(request: dict[str, Any]) -> StubReply | str:
        loop.call_soon_threadsafe(asked.set)
        return persona(request)

    stub.handler = handler
    running = asyncio.ensure_future(call(client, bot, stub, max_turns=50))
    async with asyncio.timeout(T):
        await asked.wait()
        await client.disconnect_bot()
        result = await running
    assert result.end_reason == "bot"


async def test_max_turns_ends_the_call_and_fails_it(
    client: PipecatClient, bot: TestingBotServer, stub: OpenAIStub
) -> None:
    stub.handler = stand_in(["Hmm, let me think."])
    result = await call(client, bot, stub, max_turns=3)
    assert (result.end_reason, result.passed) == ("max_turns", False)
    assert len(result.turns) == 3
    assert result.reason == "the call ended by max_turns"
    assert result.verdicts[0].kind == "goal"  # still judged, for the report


async def test_max_duration_stops_a_slow_persona(
    client: PipecatClient, bot: TestingBotServer, stub: OpenAIStub
) -> None:
    stub.handler = stand_in([StubReply(text="late", delay=30)])
    result = await call(client, bot, stub, max_duration_s=0.5)
    assert (result.end_reason, result.passed) == ("max_duration", False)


@pytest.mark.parametrize("bot", [dialogue(greeting=None)], indirect=True)
async def test_silence_ends_a_call_nobody_speaks_in(
    client: PipecatClient, bot: TestingBotServer, stub: OpenAIStub
) -> None:
    result = await call(client, bot, stub, max_silence_s=0.3)
    assert (result.end_reason, result.passed, result.turns) == ("silence", False, [])
    assert persona_requests(stub) == []


async def test_unreachable_model_mid_conversation_is_an_error(
    client: PipecatClient, bot: TestingBotServer, stub: OpenAIStub
) -> None:
    stub.handler = stand_in(["A table, please.", StubReply(status=503)])
    result = await call(client, bot, stub)
    assert (result.end_reason, result.passed, result.unreachable) == ("error", False, True)
    assert result.error is not None and "HTTP 503" in result.error
    assert len(result.turns) == 1
    assert KEY not in json.dumps(result.to_json())


async def test_model_timeout_mid_conversation_is_an_error(
    client: PipecatClient, bot: TestingBotServer, stub: OpenAIStub
) -> None:
    stub.handler = stand_in(["A table, please.", StubReply(text="late", delay=30)])
    result = await call(client, bot, stub, model_timeout=0.5)
    assert (result.end_reason, result.unreachable) == ("error", True)
    assert result.error is not None and "did not answer within" in result.error


HOSTILE = {
    "unknown tool": tool_reply("transfer_money", amount=1),
    "huge": StubReply(text="a" * 3_000_000),
    "too long a turn": StubReply(text="word " * 2000),
    "deep": StubReply(
        raw=b'{"choices": [{"message": {"content": "x", "x": ' + b"[" * 100 + b"]" * 100 + b"}}]}"
    ),
    "not json": StubReply(raw=b"<html>"),
    "tool_calls a string": StubReply(raw=b'{"choices": [{"message": {"tool_calls": "end_call"}}]}'),
}


@pytest.mark.parametrize("name", sorted(HOSTILE))
async def test_hostile_persona_answers_end_the_run_as_an_error(
    client: PipecatClient, bot: TestingBotServer, stub: OpenAIStub, name: str
) -> None:
    stub.handler = stand_in([HOSTILE[name]])
    result = await call(client, bot, stub)
    assert (result.end_reason, result.passed, result.unreachable) == ("error", False, False)
    assert result.error is not None and result.error.startswith("persona: ")
    assert len(result.error) < 600


async def test_model_call_cap_stops_a_persona_that_never_hangs_up(
    client: PipecatClient, bot: TestingBotServer, stub: OpenAIStub
) -> None:
    stub.handler = stand_in(["Go on."])
    result = await call(client, bot, stub, max_turns=100, max_model_calls=4)
    assert result.end_reason == "error"
    assert result.error == "persona: model call limit reached (4 calls to stub-model)"
    assert len(persona_requests(stub)) == 4


async def test_judge_cap_counts_the_persona_calls(
    client: PipecatClient, bot: TestingBotServer, stub: OpenAIStub
) -> None:
    stub.handler = stand_in(["One.", end_call()])
    result = await call(client, bot, stub, max_model_calls=2)
    assert result.end_reason == "end_call" and not result.passed
    assert result.error == "judge: model call limit reached (2) before judging"


def picky(criterion: str, text: str) -> tuple[str, str]:
    if criterion.startswith("the reply is polite") and "rude" in text:
        return "no", "the reply was rude"
    return "yes", "fine"


@pytest.mark.parametrize(
    "bot",
    [
        dialogue(
            reply=lambda text: "That is rude of you." if "rude" in text else f"Sure: {text}",
            functions=(FunctionTrigger("weather", "get_weather", {"location": "Lisbon"}),),
        )
    ],
    indirect=True,
)
async def test_metrics_criteria_measures_and_calls(
    client: PipecatClient, bot: TestingBotServer, stub: OpenAIStub
) -> None:
    client.register_function_call_handler("get_weather", lambda call: {"sky": "clear"})
    stub.handler = stand_in(
        ["What is the weather like?", "Be rude to me.", "Thanks.", end_call()], picky
    )
    metrics = [
        Metric("politeness", criterion="the reply is polite", min_score=1),
        Metric("lenient", criterion="the reply is polite", min_score=0.5),
        Metric("words", measure="words", max_value=60),
        Metric("short", measure="words", max_value=3),
        Metric("latency", measure="latency", max_value=30),
        Metric("calls", measure="function_calls", calls=(ExpectedCall("get_weather"),)),
        Metric("no_calls", measure="function_calls", calls=()),
    ]
    result = await call(client, bot, stub, metrics=metrics)
    by_name = {v.name: v for v in result.verdicts}
    politeness = by_name["politeness"]
    assert not politeness.passed and politeness.score == pytest.approx(3 / 4)
    assert [t.verdict for t in politeness.turns] == ["yes", "yes", "no", "yes"]
    assert politeness.reason == "turn 3: the reply was rude"
    assert by_name["lenient"].passed
    assert by_name["words"].passed and not by_name["short"].passed
    assert by_name["latency"].passed and by_name["latency"].value is not None
    assert by_name["calls"].passed, by_name["calls"].reason
    assert not by_name["no_calls"].passed
    assert result.turns[0].function_calls == ("get_weather",)
    assert result.turns[0].bot.startswith("get_weather says:")
    assert not result.passed and result.reason == "politeness: turn 3: the reply was rude"
    tool_calls = [m for m in result.transcript if m["role"] == "tool_call"]
    assert tool_calls[0]["name"] == "get_weather" and not tool_calls[0]["cancelled"]


async def test_goal_not_met_fails_with_the_judges_reason(
    client: PipecatClient, bot: TestingBotServer, stub: OpenAIStub
) -> None:
    stub.handler = stand_in(["Hi.", end_call(success=False)], lambda c, t: ("no", "no booking"))
    result = await call(client, bot, stub)
    assert (result.passed, result.reason) == (False, "goal not met: no booking")
    assert result.end_call == {"success": False, "reason": "done"}


async def test_a_judge_callable_instead_of_an_endpoint(
    client: PipecatClient, bot: TestingBotServer, stub: OpenAIStub
) -> None:
    asked: list[str] = []

    async def judge(criterion: str, text: str) -> bool:
        asked.append(criterion)
        return True

    stub.handler = stand_in(["Hi.", end_call()])
    result = await call(client, bot, stub, judge=None, judge_fn=judge)
    assert result.passed and asked == ["the bot confirmed a table for two"]


def test_every_end_reason_is_covered_here() -> None:
    assert set(END_REASONS) == {"end_call", "bot", "max_turns", "max_duration", "silence", "error"}


def test_bad_settings_are_refused() -> None:
    endpoint = ModelEndpoint("http://127.0.0.1:9/v1", "m")
    client = PipecatClient(WebSocketTransport())
    with pytest.raises(ValueError, match="need a judge"):
        SimulatedCaller(client, persona="p", goal="g", success="s", model=endpoint)
    with pytest.raises(ValueError, match="max_turns"):
        SimulatedCaller(client, persona="p", goal="g", model=endpoint, max_turns=0)
    with pytest.raises(ValueError, match="persona"):
        SimulatedCaller(client, persona=" ", goal="g", model=endpoint)


async def test_load_run_of_simulated_calls_gives_pass_rate_and_turn_percentiles(
    stub: OpenAIStub,
) -> None:
    from lifecycle.load import LoadPlan, LoadRun
    from lifecycle.testing.simulation_file import parse_simulation
    from lifecycle.testing.simulation_load import SimulationHook

    def persona(request: dict[str, Any]) -> StubReply | str:
        said = sum(m["role"] == "assistant" for m in request["messages"])
        if "Casey" in request["messages"][0]["content"]:
            return "Hmm."  # never hangs up: fails by max_turns
        return "Two people at 6 PM." if said < 2 else end_call()

    stub.handler = lambda request: (
        persona(request) if is_persona(request) else judge_answer(request)
    )
    endpoint = ModelEndpoint(stub.base_url, "stub-model")
    specs = [
        parse_simulation({**BASE_SIM, "name": f"f/{who}", "persona": who, "max_turns": 3}, "f.yaml")
        for who in ("Jamie", "Jamie", "Casey")
    ]
    hook = SimulationHook(specs, lambda spec: (endpoint, endpoint, None))
    async with TestingBotServer(dialogue=dialogue()) as bot:
        plan = LoadPlan(start=bot.start_url, sessions=6, concurrency=3)
        async with asyncio.timeout(T * 2):
            stats = await LoadRun(plan, WebSocketTransport, scenario=hook).run()
    summary = stats.summary()
    assert (summary["sessions"], summary["ok"], summary["failed"]) == (6, 4, 2)
    assert summary["errors_by_phase"] == {"scenario": {"SimulationFailedError": 2}}
    assert hook.pass_rate == pytest.approx(4 / 6)
    assert {r.end_reason for r in hook.results} == {"end_call", "max_turns"}
    turns = summary["latency_ms"]["turn_llm_first"]
    # Two turns per call that hung up, three per max_turns call (the last one's reply may
    # come after the session ended).
    assert 4 * 2 + 2 * 2 <= turns["count"] <= 4 * 2 + 2 * 3
    assert turns["p50"] <= turns["p90"] <= turns["p99"] <= turns["max"]


BASE_SIM: dict[str, Any] = {
    "persona": "Jamie",
    "goal": "Book a table.",
    "success": "a table was booked",
}


def tone(text: str) -> list[Any]:
    """A stand-in voice: half a second of a loud 440 Hz tone per utterance."""
    import numpy as np

    from lifecycle.media import AudioFrame

    t = np.arange(8000) / 16000
    pcm = (0.5 * 32767 * np.sin(2 * np.pi * 440 * t)).astype("<i2").tobytes()
    return [AudioFrame(pcm, 16000, 1)]


def espeak(text: str) -> Any:
    """The local voice (espeak-ng, the voice extra)."""
    from lifecycle.testing import local_voice

    return local_voice()(text)


@pytest.mark.parametrize("voice", [tone, espeak], ids=["tone", "local_voice"])
async def test_audio_modality_speaks_and_times_from_the_bot_hearing_the_end(
    client: PipecatClient, bot: TestingBotServer, stub: OpenAIStub, voice: Any
) -> None:
    stub.handler = stand_in(["A table, please.", end_call()])
    result = await call(client, bot, stub, voice=voice)
    assert result.passed and result.end_reason == "end_call"
    assert bot.received_audio, "the persona's turn went out as audio"
    assert not any(m.get("type") == "send-text" for m in bot.received)
    # The testing bot hears any speech as its audio transcript.
    assert result.turns[0].bot == "You said: Hello from the microphone."
    assert result.turns[0].first_token_ms is not None


@pytest.mark.parametrize(
    ("judge_reply", "unreachable"),
    [(StubReply(status=503), True), (StubReply(text="I think so"), True)],
    ids=["unreachable", "no-verdict"],
)
async def test_a_judge_that_fails_ends_the_run_as_an_error(
    client: PipecatClient,
    bot: TestingBotServer,
    stub: OpenAIStub,
    judge_reply: StubReply,
    unreachable: bool,
) -> None:
    persona = scripted("Hi.", end_call())
    stub.handler = lambda request: persona(request) if is_persona(request) else judge_reply
    result = await call(client, bot, stub)
    assert (result.passed, result.end_reason, result.unreachable) == (
        False,
        "end_call",
        unreachable,
    )
    assert result.error is not None and result.error.startswith("judge: ")
    assert KEY not in result.error
