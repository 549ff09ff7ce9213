"""API.md §10: function calls answered by the client's handlers."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import pytest
import structlog

from lifecycle import FunctionCall, PipecatClient
from transports.loopback import LoopbackBot, LoopbackTransport

WAIT = 5.0


def call_message(
    call_id: str | None = "c1",
    name: str | None = "get_weather",
    arguments: Any = None,
    msg_type: str = "llm-function-call-in-progress",
) -> dict[str, Any]:
    data: dict[str, Any] = {}
    if call_id is not None:
        data["tool_call_id"] = call_id
    if name is not None:
        data["function_name"] = name
    if arguments is not None:
        data["args" if msg_type == "llm-function-call" else "arguments"] = arguments
    return {"label": "rtvi-ai", "type": msg_type, "data": data}


def stopped(call_id: str, *, cancelled: bool) -> dict[str, Any]:
    data = {"tool_call_id": call_id, "cancelled": cancelled, "function_name": "get_weather"}
    return {"label": "rtvi-ai", "type": "llm-function-call-stopped", "data": data}


def results(bot: LoopbackBot) -> list[dict[str, Any]]:
    return [m["data"] for m in bot.received if m["type"] == "llm-function-call-result"]


@pytest.fixture
def bot() -> LoopbackBot:
    return LoopbackBot()


@pytest.fixture
async def client(bot: LoopbackBot) -> AsyncIterator[PipecatClient]:
    client = PipecatClient(LoopbackTransport(bot), connect_timeout=2.0)
    async with asyncio.timeout(WAIT):
        await client.connect()
    yield client
    async with asyncio.timeout(WAIT):
        await client.disconnect()


async def result_of(bot: LoopbackBot, count: int = 1) -> dict[str, Any]:
    async with asyncio.timeout(WAIT):
        message = await bot.wait_for_message("llm-function-call-result", count)
    data: dict[str, Any] = message["data"]
    return data


async def settle(client: PipecatClient, bot: LoopbackBot) -> None:
    """Every message sent so far was handled: a request round trip behind them answered."""
    bot.handlers["ping"] = lambda d: d
    async with asyncio.timeout(WAIT):
        await client.send_client_request("ping")
        for _ in range(3):  # handler tasks started by those messages have run their course
            await asyncio.sleep(0)


async def test_sync_handler_result_goes_back(client: PipecatClient, bot: LoopbackBot) -> None:
    calls: list[FunctionCall] = []

    def weather(call: FunctionCall) -> dict[str, Any]:
        calls.append(call)
        return {"temp": 21}

    client.register_function_call_handler("get_weather", weather)
    await bot.send(call_message(arguments={"city": "Paris"}))
    assert await result_of(bot) == {
        "function_name": "get_weather",
        "tool_call_id": "c1",
        "arguments": {"city": "Paris"},
        "result": {"temp": 21},
    }
    assert calls == [FunctionCall("c1", "get_weather", {"city": "Paris"})]


@pytest.mark.parametrize(
    ("returned", "sent"),
    [
        ("sunny", "sunny"),
        ([1, 2], "[1,2]"),
        (3.5, "3.5"),
        (True, "true"),
        ({"a": None}, {"a": None}),
    ],
)
async def test_async_handler_result_shaped_for_pipecat(
    client: PipecatClient, bot: LoopbackBot, returned: Any, sent: Any
) -> None:
    async def weather(call: FunctionCall) -> Any:
        await asyncio.sleep(0)
        return returned

    client.register_function_call_handler("get_weather", weather)
    await bot.send(call_message())
    data = await result_of(bot)
    assert data["result"] == sent and data["arguments"] == {}  # arguments absent -> {}


async def test_star_handles_functions_without_their_own(
    client: PipecatClient, bot: LoopbackBot
) -> None:
    client.register_function_call_handler("*", lambda call: f"any:{call.function_name}")
    client.register_function_call_handler("own", lambda call: "own")
    client.register_function_call_handler("own", lambda call: "replaced")
    await bot.send(call_message("c1", "other"))
    await bot.send(call_message("c2", "own"))
    await result_of(bot, 2)
    assert {r["tool_call_id"]: r["result"] for r in results(bot)} == {
        "c1": "any:other",
        "c2": "replaced",
    }


async def test_unregistered_handlers_answer_nothing(
    client: PipecatClient, bot: LoopbackBot
) -> None:
    client.register_function_call_handler("get_weather", lambda call: "x")
    client.register_function_call_handler("*", lambda call: "y")
    client.unregister_function_call_handler("get_weather")
    await bot.send(call_message("c1"))
    assert (await result_of(bot))["result"] == "y"
    client.unregister_all_function_call_handlers()
    await bot.send(call_message("c2"))
    await settle(client, bot)
    assert len(results(bot)) == 1


async def test_raising_handler_sends_an_error_result(
    client: PipecatClient, bot: LoopbackBot
) -> None:
    def broken(call: FunctionCall) -> Any:
        raise RuntimeError("no weather today")

    client.register_function_call_handler("get_weather", broken)
    with structlog.testing.capture_logs() as logs:
        await bot.send(call_message())
        data = await result_of(bot)
    assert data["result"] == {"error": "no weather today"}
    (line,) = [e for e in logs if e["event"] == "function call handler failed"]
    assert line["log_level"] == "error" and "no weather" not in repr(line)


async def test_a_handler_runs_at_most_once_per_call(
    client: PipecatClient, bot: LoopbackBot
) -> None:
    runs: list[str] = []
    client.register_function_call_handler("get_weather", lambda call: runs.append("x") or "ok")
    await bot.send(call_message("c1"))
    await bot.send(call_message("c1", msg_type="llm-function-call"))  # the deprecated twin
    await bot.send(call_message("c1"))
    await result_of(bot)
    await settle(client, bot)
    assert runs == ["x"] and len(results(bot)) == 1


async def test_cancelled_call_cancels_its_handler(client: PipecatClient, bot: LoopbackBot) -> None:
    started, cancelled = asyncio.Event(), asyncio.Event()

    async def slow(call: FunctionCall) -> str:
        started.set()
        try:
            await asyncio.Event().wait()
        except asyncio.CancelledError:
            cancelled.set()
            raise
        return "never"

    client.register_function_call_handler("get_weather", slow)
    await bot.send(call_message("c1"))
    async with asyncio.timeout(WAIT):
        await started.wait()
        await bot.send(stopped("c1", cancelled=False))  # not a cancellation: keeps running
        await settle(client, bot)
        assert not cancelled.is_set()
        await bot.send(stopped("c1", cancelled=True))
        await cancelled.wait()
    await settle(client, bot)
    assert results(bot) == []


async def test_session_end_cancels_handlers_and_sends_nothing(bot: LoopbackBot) -> None:
    client = PipecatClient(LoopbackTransport(bot), connect_timeout=2.0)
    started, cancelled = asyncio.Event(), asyncio.Event()

    async def slow(call: FunctionCall) -> str:
        started.set()
        try:
            await asyncio.Event().wait()
        except asyncio.CancelledError:
            cancelled.set()
            raise
        return "never"

    client.register_function_call_handler("get_weather", slow)
    async with asyncio.timeout(WAIT):
        await client.connect()
        await bot.send(call_message())
        await started.wait()
        await client.disconnect()
        await cancelled.wait()
    assert results(bot) == []


async def test_handler_never_delays_other_events(client: PipecatClient, bot: LoopbackBot) -> None:
    release, delivered = asyncio.Event(), asyncio.Event()
    client.add_event_handler("on_server_message", lambda data: delivered.set())

    async def slow(call: FunctionCall) -> str:
        await release.wait()
        return "late"

    client.register_function_call_handler("get_weather", slow)
    await bot.send(call_message())
    await bot.send_server_message({"n": 1})
    async with asyncio.timeout(WAIT):
        await delivered.wait()
    assert results(bot) == []
    release.set()
    assert (await result_of(bot))["result"] == "late"


async def test_none_result_sends_nothing_and_warns_once_per_function(
    client: PipecatClient, bot: LoopbackBot
) -> None:
    client.register_function_call_handler("*", lambda call: None)
    with structlog.testing.capture_logs() as logs:
        for i, name in enumerate(["a", "a", "b"]):
            await bot.send(call_message(f"c{i}", name))
        await settle(client, bot)
    assert results(bot) == []
    warned = [
        e for e in logs if e["event"] == "function call handler returned None: no result sent"
    ]
    assert [e["function_name"] for e in warned] == ["a", "b"]


async def test_call_without_name_fires_event_runs_nothing_warns_once_per_session(
    bot: LoopbackBot,
) -> None:
    client = PipecatClient(LoopbackTransport(bot), connect_timeout=2.0)
    ran: list[FunctionCall] = []
    fired: list[FunctionCall] = []
    client.register_function_call_handler("*", lambda call: ran.append(call) or "x")
    client.add_event_handler("on_llm_function_call_in_progress", fired.append)
    with structlog.testing.capture_logs() as logs:
        for _ in range(2):  # two sessions
            async with asyncio.timeout(WAIT):
                await client.connect()
            await bot.send(call_message("c1", None))
            await bot.send(call_message("c2", None))
            await settle(client, bot)
            async with asyncio.timeout(WAIT):
                await client.disconnect()
    assert ran == [] and len(fired) == 4 and results(bot) == []
    warned = [e for e in logs if "function_call_report_level" in e["event"]]
    assert len(warned) == 2 and all(e["log_level"] == "warning" for e in warned)


def test_registration_checks_its_arguments() -> None:
    client = PipecatClient(LoopbackTransport(LoopbackBot()))
    with pytest.raises(ValueError):
        client.register_function_call_handler("", lambda call: None)
    with pytest.raises(TypeError):
        client.register_function_call_handler("f", "not callable")  # type: ignore[arg-type]


# ------------------------------------------------ a bot that calls too much (issue 20)


async def test_running_handlers_are_capped_and_overflow_is_answered(
    client: PipecatClient, bot: LoopbackBot
) -> None:
    from lifecycle.functions import MAX_RUNNING_CALLS

    started = 0
    release = asyncio.Event()

    async def stuck(call: FunctionCall) -> str:
        nonlocal started
        started += 1
        await release.wait()
        return "late"

    client.register_function_call_handler("*", stuck)
    calls = MAX_RUNNING_CALLS * 4
    with structlog.testing.capture_logs() as logs:
        for i in range(calls):
            await bot.send(call_message(f"c{i}"))
        await result_of(bot, calls - MAX_RUNNING_CALLS)  # every overflow call is answered
        await settle(client, bot)
    assert started == MAX_RUNNING_CALLS
    errors = results(bot)
    assert len(errors) == calls - MAX_RUNNING_CALLS
    assert all("too many function calls" in e["result"]["error"] for e in errors)
    warned = [e for e in logs if e["event"].startswith("too many function calls")]
    assert 1 <= len(warned) <= 11  # rate-limited, not one per call
    release.set()
    await result_of(bot, calls)  # the capped ones answer once released


async def test_a_call_id_resent_after_many_others_runs_once(
    client: PipecatClient, bot: LoopbackBot
) -> None:
    runs: list[str] = []
    client.register_function_call_handler("*", lambda call: runs.append(call.tool_call_id or ""))
    await bot.send(call_message("first"))
    for i in range(3000):  # more than the old 1,024-id memory
        await bot.send(call_message(f"c{i}"))
    await bot.send(call_message("first"))
    await settle(client, bot)
    assert runs.count("first") == 1


async def test_bot_sized_call_ids_are_not_kept_after_the_session(bot: LoopbackBot) -> None:
    import gc
    import tracemalloc

    client = PipecatClient(LoopbackTransport(bot), connect_timeout=2.0)
    client.register_function_call_handler("*", lambda call: None)  # no result, nothing echoed
    async with asyncio.timeout(WAIT):
        await client.connect()
    tracemalloc.start()
    try:
        before = tracemalloc.get_traced_memory()[0]
        for i in range(40):
            await bot.send(call_message(f"{i}-" + "x" * 100_000))
        await settle(client, bot)
        bot.received.clear()
        async with asyncio.timeout(WAIT):
            await client.disconnect()
        gc.collect()
        kept = tracemalloc.get_traced_memory()[0] - before
    finally:
        tracemalloc.stop()
    assert kept < 1_000_000, f"{kept:,} bytes kept of 4 MB of call ids"


@pytest.mark.parametrize(
    "result",
    [
        pytest.param("lone \ud800 surrogate", id="lone-surrogate"),
        pytest.param({"s": "\udfff"}, id="surrogate-in-dict"),
        pytest.param("deep", id="deep-nesting"),
        pytest.param({1, 2}, id="not-json"),
    ],
)
async def test_result_that_cannot_be_encoded_answers_with_an_error(
    client: PipecatClient, bot: LoopbackBot, result: Any
) -> None:
    if result == "deep":
        deep: list[Any] = []
        for _ in range(100_000):
            deep = [deep]
        result = {"deep": deep}
    client.register_function_call_handler("get_weather", lambda call: result)
    await bot.send(call_message("c1"))
    answer = await result_of(bot)
    assert answer["tool_call_id"] == "c1"
    assert "cannot be encoded" in answer["result"]["error"]
