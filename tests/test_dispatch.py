"""The callback queue and drain of API.md §12, and callbacks that end in a BaseException.

A :class:`Gate` callback holds the dispatcher so the queue fills exactly as a test says;
an event stream (fed when events happen, never thinned by the callback queue) tells the
test when the bot's messages have all arrived.
"""

from __future__ import annotations

import asyncio
import dataclasses
import math
import time
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from lifecycle import AudioFrame, ClientEvent, PipecatClient, State
from lifecycle.dispatch import LIFECYCLE_GRACE, MAX_PENDING_BYTES, EventBus, EventStream
from lifecycle.logs import get_logger
from tests.support.flood import Gate
from transports.loopback import LoopbackBot, LoopbackTransport

WAIT = 5.0


async def read_until(stream: EventStream, name: str, data: Any = None) -> list[ClientEvent]:
    """Events from ``stream`` up to and including the first ``name`` (with ``data``)."""
    seen: list[ClientEvent] = []
    async with asyncio.timeout(WAIT):
        async for event in stream:
            seen.append(event)
            if event.name == name and (data is None or _payload(event) == data):
                return seen
    raise AssertionError(f"stream closed before {name}")


def _payload(event: ClientEvent) -> Any:
    return event.data["data"] if event.name == "on_unhandled_message" else event.data


async def send(bot: LoopbackBot, items: list[str]) -> None:
    """``s…`` as server-messages, ``u…`` as an unknown type (on_unhandled_message)."""
    for item in items:
        if item.startswith("s"):
            await bot.send_server_message(item)
        else:
            await bot.send({"label": "rtvi-ai", "type": "x-custom", "data": item})


async def blocked_client(bot: LoopbackBot, **options: Any) -> tuple[PipecatClient, Gate, list[Any]]:
    """A READY client whose dispatcher is held by a Gate on the server-message "block"."""
    client = PipecatClient(LoopbackTransport(bot), **options)
    gate = Gate()
    delivered: list[Any] = []
    client.add_event_handler("on_server_message", gate)
    client.add_event_handler("on_server_message", delivered.append)
    client.add_event_handler("on_unhandled_message", lambda m: delivered.append(m["data"]))
    async with asyncio.timeout(WAIT):
        await client.connect()
        await bot.send_server_message("block")
        await gate.entered.wait()
    return client, gate, delivered


def warnings(logs: list[dict[str, Any]], text: str) -> list[dict[str, Any]]:
    return [e for e in logs if e["log_level"] == "warning" and text in e["event"]]


# ----------------------------------------------------------------- tiers


async def test_full_queue_drops_high_rate_events_first_oldest_first(
    bot: LoopbackBot, logs: Any
) -> None:
    client, gate, delivered = await blocked_client(bot, max_pending_events=4)
    async with client.events("on_server_message", "on_unhandled_message") as stream:
        await send(bot, ["u1", "u2", "u3", "s1", "s2", "u4", "u5", "u6"])
        await read_until(stream, "on_unhandled_message", "u6")
    assert client.dropped_events == 4  # u1..u4: the oldest high-rate ones
    gate.open()
    async with asyncio.timeout(WAIT):
        await client.disconnect()
    assert delivered == ["block", "s1", "s2", "u5", "u6"]
    assert len(warnings(logs, "callback queue full")) == 1
    assert warnings(logs, "callback queue full")[0]["session_id"] == 1


async def test_other_events_dropped_only_when_no_high_rate_one_is_queued(
    bot: LoopbackBot,
) -> None:
    client, gate, delivered = await blocked_client(bot, max_pending_events=3)
    async with client.events("on_server_message", "on_unhandled_message") as stream:
        # s1 goes when s4 arrives (nothing high-rate queued); then u1 is the oldest high-rate.
        await send(bot, ["s1", "s2", "s3", "s4", "u1"])
        await read_until(stream, "on_unhandled_message", "u1")
    gate.open()
    async with asyncio.timeout(WAIT):
        await client.disconnect()
    assert delivered == ["block", "s2", "s3", "s4"]
    assert client.dropped_events == 2


async def test_lifecycle_events_and_fatal_errors_are_never_dropped(bot: LoopbackBot) -> None:
    client, gate, delivered = await blocked_client(bot, max_pending_events=1)
    lifecycle: list[Any] = []
    for name in ("on_transport_state_changed", "on_error", "on_disconnected"):
        client.add_event_handler(name, lambda *a, name=name: lifecycle.append((name, *a)))
    async with client.events() as stream:
        await send(bot, ["s1", "u1", "s2"])
        await bot.send_error("minor", fatal=False)  # high-rate tier: dropped
        await bot.send_error("boom", fatal=True)  # never dropped; ends the session
        await read_until(stream, "on_disconnected")
    gate.open()
    async with asyncio.timeout(WAIT):
        await client.disconnect()
    errors = [(e[1].message, e[1].fatal) for e in lifecycle if e[0] == "on_error"]
    assert errors == [("boom", True)]
    assert [e[1] for e in lifecycle if e[0] == "on_transport_state_changed"] == [
        State.DISCONNECTING,
        State.DISCONNECTED,
    ]
    assert lifecycle[-1] == ("on_disconnected",)
    assert delivered == ["block"]
    assert client.dropped_events == 4


async def test_events_without_callbacks_are_not_queued(bot: LoopbackBot) -> None:
    client, gate, delivered = await blocked_client(bot, max_pending_events=1)
    async with client.events("on_error", "on_unhandled_message") as stream:
        for _ in range(50):
            await bot.send_error("no callback for this")
        await send(bot, ["u1"])
        seen = await read_until(stream, "on_unhandled_message", "u1")
    assert len(seen) == 51  # the stream saw every error...
    gate.open()
    async with asyncio.timeout(WAIT):
        await client.disconnect()
    assert delivered == ["block", "u1"]  # ...the queue held only what has a callback
    assert client.dropped_events == 0


@pytest.mark.parametrize(
    ("options", "error"),
    [
        ({"max_pending_events": 0}, ValueError),
        ({"max_pending_events": -5}, ValueError),
        ({"max_pending_events": 1.5}, TypeError),
        ({"max_pending_events": None}, TypeError),
        ({"max_pending_events": True}, TypeError),
        ({"drain_timeout": math.nan}, ValueError),
        ({"drain_timeout": math.inf}, ValueError),
        ({"drain_timeout": -1.0}, ValueError),
        ({"drain_timeout": None}, TypeError),
        ({"drain_timeout": "5"}, TypeError),
    ],
)
def test_bounds_are_validated_in_the_constructor(
    options: dict[str, Any], error: type[Exception]
) -> None:
    with pytest.raises(error):
        PipecatClient(LoopbackTransport(LoopbackBot()), **options)


# ----------------------------------------------------------------- drain


async def test_disconnect_waits_at_most_drain_timeout_then_discards_the_rest(
    bot: LoopbackBot, logs: Any
) -> None:
    drain_timeout = 0.2
    client = PipecatClient(LoopbackTransport(bot), drain_timeout=drain_timeout)
    ran: list[Any] = []
    ended: list[int] = []

    async def slow(data: Any) -> None:
        await asyncio.sleep(0.05)
        ran.append(data)

    client.add_event_handler("on_server_message", slow)
    client.add_event_handler("on_disconnected", lambda: ended.append(client.session_id))
    async with asyncio.timeout(WAIT):
        await client.connect()
    async with client.events("on_server_message") as stream:
        await send(bot, [f"s{i}" for i in range(100)])
        await read_until(stream, "on_server_message", "s99")
    started = time.monotonic()
    async with asyncio.timeout(WAIT):
        await client.disconnect()
    elapsed = time.monotonic() - started
    assert ended == [1]  # on_disconnected still ran, before disconnect() returned
    assert client.state is State.DISCONNECTED
    assert ran and len(ran) + client.dropped_events == 100
    assert ran == [f"s{i}" for i in range(len(ran))]  # the oldest ran, in order
    discarded = warnings(logs, "callbacks discarded")
    assert len(discarded) == 1 and discarded[0]["discarded"] == client.dropped_events
    # The contract's bound, with slack for a machine whose cores others hold (test-loaded).
    assert elapsed < drain_timeout + 1.0 + 2.0


async def test_disconnect_does_not_wait_for_a_hanging_callback(bot: LoopbackBot, logs: Any) -> None:
    client = PipecatClient(LoopbackTransport(bot), drain_timeout=0.05)
    gate = Gate()
    ended = asyncio.Event()
    client.add_event_handler("on_server_message", gate)
    client.add_event_handler("on_disconnected", ended.set)
    async with asyncio.timeout(WAIT):
        await client.connect()
        await bot.send_server_message("hang")
        await gate.entered.wait()
    async with asyncio.timeout(0.05 + LIFECYCLE_GRACE + WAIT):
        await client.disconnect()
    assert client.state is State.DISCONNECTED
    assert warnings(logs, "still running")
    # The hanging callback is abandoned: on_disconnected, queued behind it, still runs.
    async with asyncio.timeout(WAIT):
        await ended.wait()


async def test_a_callback_that_never_returns_does_not_silence_later_sessions(
    bot: LoopbackBot, logs: Any
) -> None:
    client = PipecatClient(LoopbackTransport(bot), drain_timeout=0.05)
    entered, arrived, ended = asyncio.Event(), asyncio.Event(), asyncio.Event()
    later: list[tuple[int, Any]] = []

    async def hangs_once(data: Any) -> None:
        if data == "hang":
            entered.set()
            await asyncio.Event().wait()  # never returns

    def after(data: Any) -> None:
        if data != "hang":
            later.append((client.session_id, data))
            arrived.set()

    client.add_event_handler("on_server_message", hangs_once)
    client.add_event_handler("on_server_message", after)
    client.add_event_handler("on_disconnected", ended.set)
    async with asyncio.timeout(WAIT):
        await client.connect()
        await bot.send_server_message("hang")
        await entered.wait()
    async with asyncio.timeout(0.05 + LIFECYCLE_GRACE + WAIT):
        await client.disconnect()
        await ended.wait()
        await client.connect()
        await bot.send_server_message("second session")
        await arrived.wait()  # the callback runs: session 1's stuck one was abandoned
        await client.disconnect()
    assert later == [(2, "second session")]
    assert warnings(logs, "abandoned")


@pytest.mark.parametrize("error", [GeneratorExit, asyncio.CancelledError])
async def test_wait_for_predicate_raising_a_base_exception_keeps_the_session(
    error: type[BaseException], bot: LoopbackBot
) -> None:
    client = PipecatClient(LoopbackTransport(bot))

    def predicate(data: Any) -> bool:
        raise error

    async with asyncio.timeout(WAIT):
        await client.connect()
        waiting = asyncio.ensure_future(
            client.wait_for("on_server_message", predicate, timeout=WAIT)
        )
        await asyncio.sleep(0)
        await bot.send_server_message("x")
        with pytest.raises(RuntimeError, match=error.__name__):
            await waiting
        # The reader lives on: the next message still arrives.
        got = asyncio.ensure_future(client.wait_for("on_server_message", timeout=WAIT))
        await asyncio.sleep(0)
        await bot.send_server_message("y")
        assert await got == "y"
        assert client.state is State.READY
        await client.disconnect()


async def test_thousands_of_concurrent_wait_for_calls_are_not_quadratic(bot: LoopbackBot) -> None:
    # 20,000 waiters took minutes when each one copied the subscriber list (O(n^2)).
    client = PipecatClient(LoopbackTransport(bot))
    async with asyncio.timeout(WAIT):
        await client.connect()
    async with asyncio.timeout(60):
        waiters = [
            asyncio.ensure_future(client.wait_for("on_server_message", timeout=60))
            for _ in range(20_000)
        ]
        await asyncio.sleep(0)
        await bot.send_server_message("all")
        assert set(await asyncio.gather(*waiters)) == {"all"}
        await client.disconnect()


async def test_next_session_starts_after_the_previous_sessions_callbacks(
    bot: LoopbackBot,
) -> None:
    client = PipecatClient(LoopbackTransport(bot))
    order: list[tuple[int, str]] = []

    async def slow(data: Any) -> None:
        await asyncio.sleep(0.005)
        order.append((client.session_id, f"msg {data}"))

    client.add_event_handler("on_server_message", slow)
    client.add_event_handler(
        "on_transport_state_changed", lambda s: order.append((client.session_id, s.value))
    )
    client.add_event_handler("on_disconnected", lambda: order.append((client.session_id, "end")))
    async with asyncio.timeout(WAIT):
        await client.connect()
        async with client.events("on_server_message", "on_disconnected") as stream:
            await send(bot, [f"s{i}" for i in range(10)])
            await read_until(stream, "on_server_message", "s9")
            await bot.leave()  # the session ends by itself: no disconnect() drained it
            await read_until(stream, "on_disconnected")
        await client.connect()
        await client.disconnect()
    first = order.index((2, "connecting"))
    assert order[first - 1] == (1, "end")
    assert [e for e in order if e[1].startswith("msg")] == [(1, f"msg s{i}") for i in range(10)]
    assert client.dropped_events == 0


async def test_next_session_waits_for_old_callbacks_at_most_drain_timeout(
    bot: LoopbackBot,
) -> None:
    client = PipecatClient(LoopbackTransport(bot), drain_timeout=0.1)
    ended: list[int] = []
    sessions: list[int] = []

    async def slow(data: Any) -> None:
        await asyncio.sleep(0.05)

    client.add_event_handler("on_server_message", slow)
    client.add_event_handler("on_disconnected", lambda: ended.append(client.session_id))
    client.add_event_handler("on_transition", lambda e: sessions.append(e.session_id))
    async with asyncio.timeout(WAIT):
        await client.connect()
        async with client.events("on_server_message", "on_disconnected") as stream:
            await send(bot, [f"s{i}" for i in range(200)])  # 10 s of callbacks
            await read_until(stream, "on_server_message", "s199")
            await bot.leave()
            await read_until(stream, "on_disconnected")
        await client.connect()
        assert ended == [1]  # the old session's lifecycle callbacks ran, in its own time
        await client.disconnect()
    assert sessions == sorted(sessions)
    assert client.dropped_events > 150


# ------------------------------------------------- callbacks ending badly (issue 12.8)


async def test_callback_cancelled_error_is_not_raised_into_disconnect(
    bot: LoopbackBot, logs: Any
) -> None:
    client = PipecatClient(LoopbackTransport(bot))
    after: list[str] = []

    async def cancels(*args: Any) -> None:
        await asyncio.sleep(0.01)  # disconnect() is waiting for it by now
        raise asyncio.CancelledError

    client.add_event_handler("on_disconnected", cancels)
    client.add_event_handler("on_disconnected", lambda: after.append("still called"))
    async with asyncio.timeout(WAIT):
        await client.connect()
        await client.disconnect()  # nobody cancelled this caller: it must return normally
        await client.connect()  # and the dispatcher still works
        await client.disconnect()
    assert after == ["still called", "still called"]
    failures = [e for e in logs if e["event"] == "event callback failed"]
    assert len(failures) == 2 and "CancelledError" in failures[0]["error"]


class OwnBaseError(BaseException):
    """A BaseException that is neither KeyboardInterrupt nor SystemExit."""


@pytest.mark.parametrize("error", [GeneratorExit, OwnBaseError])
async def test_callback_base_exception_does_not_kill_the_dispatcher(
    error: type[BaseException], bot: LoopbackBot, logs: Any
) -> None:
    client = PipecatClient(LoopbackTransport(bot))
    calls: list[str] = []

    def raises(data: Any) -> None:
        raise error

    async def raises_async(data: Any) -> None:
        await asyncio.sleep(0)
        raise error

    client.add_event_handler("on_bot_ready", raises)
    client.add_event_handler("on_bot_ready", raises_async)
    client.add_event_handler("on_bot_ready", lambda data: calls.append("ready"))
    client.add_event_handler("on_disconnected", lambda: calls.append("ended"))
    async with asyncio.timeout(WAIT):
        await client.connect()
        await client.disconnect()
    assert calls == ["ready", "ended"]
    failures = [e for e in logs if e["event"] == "event callback failed"]
    assert len(failures) == 2


async def test_cancelling_disconnect_still_cancels_its_caller(bot: LoopbackBot) -> None:
    client = PipecatClient(LoopbackTransport(bot))
    gate = Gate()
    client.add_event_handler("on_disconnected", gate)
    async with asyncio.timeout(WAIT):
        await client.connect()
        task = asyncio.create_task(client.disconnect())
        await gate.entered.wait()
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        gate.open()
        await client.disconnect()
    assert client.state is State.DISCONNECTED


# ------------------------------------------------------- the policy, against a model

_KINDS = {
    "keep": ("on_transition", None),
    "fatal": ("on_error", True),
    "normal": ("on_server_message", None),
    "high": ("on_unhandled_message", None),
    "minor": ("on_error", False),
}


def _model(kinds: list[str], bound: int) -> list[int]:
    """What survives, by the words of API.md §12, with a plain list."""
    queue: list[tuple[int, str]] = []
    for index, kind in enumerate(kinds):
        queue.append((index, kind))
        if len(queue) > bound:
            for droppable in (("high", "minor"), ("normal",)):
                victim = next((item for item in queue if item[1] in droppable), None)
                if victim is not None:
                    queue.remove(victim)
                    break
    return [index for index, _ in queue]


@settings(max_examples=200, deadline=None)
@given(
    kinds=st.lists(st.sampled_from(sorted(_KINDS)), max_size=60),
    bound=st.integers(min_value=1, max_value=8),
)
def test_queue_keeps_exactly_what_the_tier_rules_say(kinds: list[str], bound: int) -> None:
    async def run() -> tuple[list[int], int]:
        bus = EventBus(
            {name for name, _ in _KINDS.values()},
            session_id=lambda: 1,
            log=get_logger(),
            max_pending=bound,
        )
        delivered: list[int] = []
        for name in bus.names:
            bus.handlers_for(name).append(lambda item: delivered.append(item.index))
        for index, kind in enumerate(kinds):  # all at once: the dispatcher has not run yet
            name, fatal = _KINDS[kind]
            bus.emit(name, (_Item(index, fatal),))
        await bus.drain(1)
        return delivered, bus.dropped

    delivered, dropped = asyncio.run(run())
    assert delivered == _model(kinds, bound)
    assert dropped == len(kinds) - len(delivered)


@dataclasses.dataclass(frozen=True)
class _Item:
    index: int
    fatal: bool | None


async def test_an_ended_sessions_callbacks_never_run_in_the_next_one(
    bot: LoopbackBot, logs: Any
) -> None:
    client = PipecatClient(LoopbackTransport(bot), drain_timeout=0.05)
    gate = Gate()
    ended: list[int] = []
    client.add_event_handler("on_server_message", gate)
    client.add_event_handler("on_disconnected", lambda: ended.append(client.session_id))
    async with asyncio.timeout(WAIT):
        await client.connect()
        async with client.events("on_disconnected") as stream:
            await bot.send_server_message("hang")
            await gate.entered.wait()
            await bot.leave()
            await read_until(stream, "on_disconnected")
    # Session 1's on_disconnected waits behind the hanging callback; the start gives up
    # waiting after drain_timeout + LIFECYCLE_GRACE and session 2 begins.
    async with asyncio.timeout(0.05 + LIFECYCLE_GRACE + WAIT):
        await client.connect()
    gate.open()
    async with asyncio.timeout(WAIT):
        await client.disconnect()
    assert ended == [2]  # session 1's was skipped, never run inside session 2
    assert client.dropped_events == 1
    assert len(warnings(logs, "callbacks of an ended session skipped")) == 1


# ------------------------------------------------------------------ bytes


async def test_queued_bot_data_is_bounded_in_bytes_too(bot: LoopbackBot) -> None:
    # 10,000 queued 1 MiB messages would be 10 GiB: the queue also holds at most
    # MAX_PENDING_BYTES of bot data (wire size; PCM for audio), dropping by the same tiers.
    client, gate, delivered = await blocked_client(bot)
    big = '{"label":"rtvi-ai","type":"server-message","data":"' + "x" * 1_000_000 + '"}'
    pcm = AudioFrame(bytes(1_000_000), 16_000, 1)
    audio: list[AudioFrame] = []
    client.add_event_handler("on_bot_audio", audio.append)
    async with client.events("on_server_message", "on_bot_audio") as stream:
        for _ in range(60):
            await bot.send_raw(big)
        for _ in range(60):
            await bot.send_audio(pcm)
        await send(bot, ["s-last"])
        await read_until(stream, "on_server_message", "s-last")
        assert stream.dropped > 0  # a stream has the same byte bound
    gate.open()
    async with asyncio.timeout(WAIT):
        await client.disconnect()
    kept = len(delivered) - 2 + len(audio)  # less "block" and "s-last"
    assert kept * 1_000_000 <= MAX_PENDING_BYTES
    assert client.dropped_events == 120 - kept
    assert audio == []  # high-rate audio went first; the server messages after
    assert delivered[-1] == "s-last"


# ------------------------------------------------- callbacks run at once when idle


async def test_sync_and_async_callbacks_keep_the_order_of_events(bot: LoopbackBot) -> None:
    # A message's sync callbacks may run as soon as it is handled; one that arrives while
    # an async callback is still running waits its turn behind it.
    client = PipecatClient(LoopbackTransport(bot))
    seen: list[str] = []

    async def slow(data: str) -> None:
        seen.append(f"async {data} begins")
        for _ in range(3):
            await asyncio.sleep(0)
        seen.append(f"async {data} ends")

    client.add_event_handler("on_server_message", lambda data: seen.append(f"sync {data}"))
    client.add_event_handler("on_server_message", slow)
    client.add_event_handler("on_server_message", lambda data: seen.append(f"last {data}"))
    async with asyncio.timeout(WAIT):
        await client.connect()
        async with client.events("on_server_message") as stream:
            await send(bot, ["s1", "s2", "s3"])
            await read_until(stream, "on_server_message", "s3")
        await client.disconnect()  # waits for the queued callbacks
    expected = []
    for n in ("s1", "s2", "s3"):
        expected += [f"sync {n}", f"async {n} begins", f"async {n} ends", f"last {n}"]
    assert seen == expected


@pytest.mark.parametrize("error", [ValueError, GeneratorExit, OwnBaseError])
async def test_a_failing_sync_callback_is_logged_and_the_next_one_runs(
    error: type[BaseException], bot: LoopbackBot, logs: Any
) -> None:
    client = PipecatClient(LoopbackTransport(bot))
    seen: list[str] = []

    def raises(data: str) -> None:
        raise error

    client.add_event_handler("on_server_message", raises)
    client.add_event_handler("on_server_message", seen.append)
    async with asyncio.timeout(WAIT):
        await client.connect()
        async with client.events("on_server_message") as stream:
            await send(bot, ["s1", "s2"])
            await read_until(stream, "on_server_message", "s2")
        await client.disconnect()
    assert seen == ["s1", "s2"]
    assert len([e for e in logs if e["event"] == "event callback failed"]) == 2


async def test_an_event_fired_inside_a_callback_waits_for_the_current_events_callbacks() -> None:
    bus = EventBus({"on_a", "on_b"}, session_id=lambda: 1, log=get_logger())
    seen: list[str] = []

    def first_a() -> None:
        seen.append("a1")
        bus.emit("on_b", now=True)  # fired from inside a callback: queued, not nested

    bus.handlers_for("on_a").extend([first_a, lambda: seen.append("a2")])
    bus.handlers_for("on_b").append(lambda: seen.append("b"))
    bus.emit("on_a", now=True)
    assert seen == ["a1", "a2"]  # on_a ran at once; on_b waits for the dispatcher
    async with asyncio.timeout(WAIT):
        await bus.drain(1)
    assert seen == ["a1", "a2", "b"]
