"""Events as a stream and ``wait_for`` (API.md §11)."""

from __future__ import annotations

import asyncio
import math
import re
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any, cast

import pytest

from lifecycle import (
    EVENT_NAMES,
    BotReadyData,
    ClientEvent,
    PipecatClient,
    RTVIError,
    SessionClosedError,
    State,
    TransitionEvent,
)
from lifecycle.dispatch import NEVER_DROPPED_EVENTS, EventStream
from tests.support.flood import Gate
from transports.loopback import LoopbackBot, LoopbackTransport

WAIT = 5.0


async def take(stream: EventStream, count: int) -> list[ClientEvent]:
    """The next ``count`` events of ``stream``."""
    events: list[ClientEvent] = []
    async with asyncio.timeout(WAIT):
        async for event in stream:
            events.append(event)
            if len(events) == count:
                break
    return events


async def until(stream: EventStream, name: str) -> list[ClientEvent]:
    """Events of ``stream`` up to and including the next ``name``."""
    events: list[ClientEvent] = []
    async with asyncio.timeout(WAIT):
        async for event in stream:
            events.append(event)
            if event.name == name:
                return events
    raise AssertionError(f"the stream ended before {name}")


# ---------------------------------------------------------------- streams


async def test_stream_yields_every_event_in_callback_order_across_sessions(
    bot: LoopbackBot,
) -> None:
    client = PipecatClient(LoopbackTransport(bot))
    callbacks: list[str] = []
    for name in sorted(EVENT_NAMES):
        add = cast(Any, client.add_event_handler)  # names chosen at run time
        add(name, lambda *a, name=name: callbacks.append(name))
    async with client.events() as stream:
        async with asyncio.timeout(WAIT):
            await client.connect()
            await bot.send_server_message({"n": 1})
            await bot.send_error("careful")
            await bot.send({"label": "rtvi-ai", "type": "x-custom", "data": 1})
            await client.send_client_request("echo", 1)  # everything above has arrived
            await bot.leave()
            first = await until(stream, "on_disconnected")
            await client.connect()
            await client.disconnect()
            second = await until(stream, "on_disconnected")
    names = [e.name for e in first + second]
    assert names == callbacks  # same events, same order as the callbacks saw them
    assert {e.session_id for e in first} == {1} and {e.session_id for e in second} == {2}
    by_name = {e.name: e.data for e in first}
    assert isinstance(by_name["on_transition"], TransitionEvent)
    assert isinstance(by_name["on_bot_ready"], BotReadyData)
    assert by_name["on_server_message"] == {"n": 1}
    assert isinstance(by_name["on_error"], RTVIError) and not by_name["on_error"].fatal
    assert by_name["on_unhandled_message"]["type"] == "x-custom"
    assert by_name["on_connected"] is None and by_name["on_disconnected"] is None
    times = [e.at for e in first + second]
    assert times == sorted(times)


async def test_stream_sees_events_that_have_no_callback(client: PipecatClient) -> None:
    async with client.events("on_bot_ready", "on_transport_state_changed") as stream:
        async with asyncio.timeout(WAIT):
            await client.connect()
        events = await take(stream, 4)
    assert [e.name for e in events] == ["on_transport_state_changed"] * 3 + ["on_bot_ready"]
    assert [e.data for e in events[:3]] == [State.CONNECTING, State.CONNECTED, State.READY]


async def test_stream_only_sees_events_after_it_opened(
    client: PipecatClient, bot: LoopbackBot
) -> None:
    async with asyncio.timeout(WAIT):
        await client.connect()
    await bot.send_server_message("before")
    async with asyncio.timeout(WAIT):
        await client.send_client_request("echo", 1)  # "before" has arrived by now
    async with client.events("on_server_message") as stream:
        await bot.send_server_message("after")
        [event] = await take(stream, 1)
    assert event.data == "after"


def test_unknown_names_and_bad_maxsize_are_refused() -> None:
    client = PipecatClient(LoopbackTransport(LoopbackBot()))
    with pytest.raises(ValueError, match="unknown event"):
        client.events("on_bot_ready", "onBotReady")
    with pytest.raises(ValueError):
        client.events(maxsize=0)
    with pytest.raises(TypeError):
        client.events(maxsize=2.5)  # type: ignore[arg-type]


async def test_stream_is_neither_delayed_nor_thinned_by_callbacks(bot: LoopbackBot) -> None:
    client = PipecatClient(LoopbackTransport(bot), max_pending_events=2)
    gate = Gate()
    client.add_event_handler("on_server_message", gate)  # holds the dispatcher throughout
    async with asyncio.timeout(WAIT):
        await client.connect()
    async with client.events("on_server_message") as stream:
        for i in range(100):
            await bot.send_server_message(i)
        events = await take(stream, 100)
    assert [e.data for e in events] == list(range(100))
    assert stream.dropped == 0
    assert client.dropped_events >= 97  # the callback queue, meanwhile, dropped
    assert gate.calls <= 1
    gate.open()
    async with asyncio.timeout(WAIT):
        await client.disconnect()


async def test_a_stream_behind_by_maxsize_drops_its_oldest_but_no_lifecycle_event(
    bot: LoopbackBot, logs: Any
) -> None:
    client = PipecatClient(LoopbackTransport(bot))
    async with asyncio.timeout(WAIT):
        await client.connect()
    async with client.events(maxsize=3) as stream:
        ended = asyncio.ensure_future(client.wait_for("on_disconnected", timeout=WAIT))
        for i in range(10):
            await bot.send_server_message(i)
        await bot.send_error("fatal", fatal=True)
        await ended  # everything was emitted; nothing read yet
        events = await until(stream, "on_disconnected")
    lifecycle = [e for e in events if e.name in NEVER_DROPPED_EVENTS or e.name == "on_error"]
    assert [e.name for e in lifecycle] == [
        "on_error",
        "on_transition",
        "on_transport_state_changed",
        "on_transition",
        "on_transport_state_changed",
        "on_disconnected",
    ]
    kept = [e.data for e in events if e.name == "on_server_message"]
    assert kept == sorted(kept) and len(kept) + stream.dropped == 10
    assert stream.dropped >= 7
    warned = [e for e in logs if "event stream fell behind" in e["event"]]
    assert len(warned) == 1 and warned[0]["log_level"] == "warning"


async def test_stream_survives_sessions_and_ends_when_closed(bot: LoopbackBot) -> None:
    client = PipecatClient(LoopbackTransport(bot))
    seen: list[ClientEvent] = []
    stream = client.events("on_bot_ready", "on_disconnected")

    async def consume() -> None:
        async with stream:
            async for event in stream:
                seen.append(event)
                if len(seen) == 4:
                    stream.close()

    consumer = asyncio.ensure_future(consume())
    async with asyncio.timeout(WAIT):
        for _ in range(3):
            await client.connect()
            await client.disconnect()
        await consumer  # it stopped after four events, from inside the loop
    assert [(e.name, e.session_id) for e in seen] == [
        ("on_bot_ready", 1),
        ("on_disconnected", 1),
        ("on_bot_ready", 2),
        ("on_disconnected", 2),
    ]
    assert stream.closed


async def test_closing_a_stream_wakes_its_reader(client: PipecatClient) -> None:
    async with client.events() as stream:
        reader = asyncio.ensure_future(take(stream, 1))
        await asyncio.sleep(0)  # the reader is waiting for an event that never comes
    async with asyncio.timeout(WAIT):
        assert await reader == []


# --------------------------------------------------------------- wait_for


async def test_wait_for_returns_the_first_matching_event_after_the_call(
    client: PipecatClient, bot: LoopbackBot
) -> None:
    async with asyncio.timeout(WAIT):
        await client.connect()
        waiting = asyncio.ensure_future(
            client.wait_for("on_server_message", lambda d: d["n"] > 1, timeout=WAIT)
        )
        await asyncio.sleep(0)  # one loop turn: the waiter registers
        for n in range(4):
            await bot.send_server_message({"n": n})
        assert await waiting == {"n": 2}


async def test_wait_for_between_sessions_waits_for_the_next(client: PipecatClient) -> None:
    async with asyncio.timeout(WAIT):
        waiting = asyncio.ensure_future(client.wait_for("on_bot_ready", timeout=WAIT))
        await asyncio.sleep(0)
        await client.connect()
        assert isinstance(await waiting, BotReadyData)


async def test_wait_for_raises_session_closed_when_the_session_ends_first(
    client: PipecatClient, bot: LoopbackBot
) -> None:
    async with asyncio.timeout(WAIT):
        await client.connect()
        waiting = asyncio.ensure_future(client.wait_for("on_server_message", timeout=WAIT))
        ending = asyncio.ensure_future(client.wait_for("on_disconnected", timeout=WAIT))
        await asyncio.sleep(0)
        await bot.leave()
        with pytest.raises(SessionClosedError):
            await waiting
        assert await ending is None  # waiting for the end itself is no error


async def test_wait_for_times_out(client: PipecatClient) -> None:
    with pytest.raises(TimeoutError, match="on_bot_ready"):
        await client.wait_for("on_bot_ready", timeout=0.01)


async def test_wait_for_predicate_error_reaches_the_caller(
    client: PipecatClient, bot: LoopbackBot
) -> None:
    async with asyncio.timeout(WAIT):
        await client.connect()
        waiting = asyncio.ensure_future(
            client.wait_for("on_server_message", lambda d: d["missing"], timeout=WAIT)
        )
        await asyncio.sleep(0)
        await bot.send_server_message({})
        with pytest.raises(KeyError):
            await waiting
    assert client.state is State.READY


@pytest.mark.parametrize(
    ("timeout", "error"),
    [
        (math.nan, ValueError),
        (math.inf, ValueError),
        (-1, ValueError),
        (None, TypeError),
        ("1", TypeError),
        (True, TypeError),
    ],
)
async def test_wait_for_validates_timeout_and_name(
    timeout: Any, error: type[Exception], client: PipecatClient
) -> None:
    with pytest.raises(error):
        await client.wait_for("on_bot_ready", timeout=timeout)
    with pytest.raises(ValueError, match="unknown event"):
        await client.wait_for("bot-ready", timeout=1.0)


# ----------------------------------------------------------------- README


README_BLOCKS = re.findall(
    r"```python\n(.*?)```", (Path(__file__).parent.parent / "README.md").read_text(), re.S
)


@pytest.mark.parametrize(
    ("marker", "printed"),
    [
        ('client.events("on_bot_ready", "on_server_message")', "1 on_server_message {'score': 3}"),
        ('client.wait_for("on_server_message"', "{'score': 3}"),
    ],
    ids=["events", "wait_for"],
)
def test_readme_stream_examples_run(marker: str, printed: str) -> None:
    (code,) = [textwrap.dedent(block) for block in README_BLOCKS if marker in block]
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=True
    )
    assert printed in out.stdout
