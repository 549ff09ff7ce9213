"""The machine decides (issue 11.2) and the client-side parts of issue 12 (3, 9, 11)."""

from __future__ import annotations

import ast
import asyncio
import math
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from lifecycle import (
    BotNotReadyError,
    ConnectionTimeoutError,
    InvalidStateError,
    PipecatClient,
    PipecatClientError,
    SessionLifecycle,
    State,
    rtvi,
)
from lifecycle.table import refusal
from tests.support.source import parse_file
from transports.loopback import LoopbackBot, LoopbackTransport

WAIT = 5.0
CLIENT_SOURCE = Path(__file__).resolve().parents[1] / "lifecycle" / "client.py"
PROTOCOL_SOURCE = CLIENT_SOURCE.with_name("protocol.py")


# ------------------------------------------------------------------ the machine decides


def test_refused_trigger_returns_false_and_the_machine_says_why() -> None:
    machine = SessionLifecycle()
    assert machine.bot_ready() is False and machine.state is State.IDLE
    text = machine.refusal("bot_ready")
    assert "'bot_ready'" in text and "'idle'" in text and "connected" in text
    assert refusal(State.READY, "nope") == "'nope' is not a trigger of the session table"


async def test_a_refused_start_raises_from_the_machines_answer() -> None:
    client = PipecatClient(LoopbackTransport(LoopbackBot()), connect_timeout=2.0)
    async with asyncio.timeout(WAIT):
        await client.connect()
        for call in (client.connect(), client.start_bot("http://127.0.0.1:9/start")):
            with pytest.raises(InvalidStateError) as info:
                await call
            assert "in state 'ready'" in str(info.value)
        with pytest.raises(InvalidStateError, match="event 'start_bot' in state 'ready'"):
            await client.start_bot_and_connect("http://127.0.0.1:9/start")
        assert client.state is State.READY
        await client.disconnect()


def _state_tests(tree: ast.AST) -> list[int]:
    """Lines of client.py that compare something named ``state`` or a ``*_STATES`` set."""
    lines = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Compare):
            names = [
                n.attr if isinstance(n, ast.Attribute) else getattr(n, "id", "")
                for side in (node.left, *node.comparators)
                for n in ast.walk(side)
                if isinstance(n, ast.Attribute | ast.Name)
            ]
            if any(name == "state" or name.endswith("_STATES") for name in names):
                lines.append(node.lineno)
    return lines


def test_the_client_never_tests_state_sets() -> None:
    tree = parse_file(CLIENT_SOURCE)
    assert _state_tests(tree) == []
    imported = {
        alias.name
        for node in ast.walk(tree)
        if isinstance(node, ast.ImportFrom) and node.module == "lifecycle.table"
        for alias in node.names
    }
    assert not {name for name in imported if name.endswith("_STATES")}


def test_one_function_acts_on_transitions() -> None:
    """on_connected, on_bot_ready, on_disconnected, on_bot_disconnected and on_bot_started
    are emitted in exactly one function: the transition hook (of the session protocol, whose
    Emit actions the client carries out; the client emits none of them itself)."""
    where: dict[str, set[str]] = {}
    for source, call in ((CLIENT_SOURCE, "emit"), (PROTOCOL_SOURCE, "Emit")):
        tree = parse_file(source)
        for func in ast.walk(tree):
            if not isinstance(func, ast.FunctionDef | ast.AsyncFunctionDef):
                continue
            for node in ast.walk(func):
                if (
                    isinstance(node, ast.Call)
                    and (getattr(node.func, "attr", None) or getattr(node.func, "id", None)) == call
                    and node.args
                    and isinstance(node.args[0], ast.Constant)
                ):
                    where.setdefault(str(node.args[0].value), set()).add(func.name)
    for name in ("on_connected", "on_bot_ready", "on_disconnected", "on_bot_disconnected"):
        assert where[name] == {"_on_transition"}, name
    assert where["on_bot_started"] == {"_on_transition"}


# ------------------------------------------------- 12.3: a connect timeout says what came


async def test_connect_timeout_says_the_transport_was_up_and_nothing_arrived() -> None:
    client = PipecatClient(
        LoopbackTransport(LoopbackBot(send_bot_ready=False)), connect_timeout=0.2
    )
    with pytest.raises(ConnectionTimeoutError) as info:
        async with asyncio.timeout(WAIT):
            await client.connect()
    assert "transport was up" in str(info.value) and "nothing arrived" in str(info.value)
    assert client.state is State.DISCONNECTED


async def test_connect_timeout_names_the_message_types_that_arrived() -> None:
    bot = LoopbackBot(send_bot_ready=False)
    client = PipecatClient(LoopbackTransport(bot), connect_timeout=0.5)
    async with asyncio.timeout(WAIT):
        attempt = asyncio.ensure_future(client.connect())
        await bot.wait_for_message("client-ready")
        await bot.send(rtvi.make_message("metrics", {}))
        await bot.send(rtvi.make_message("x-" + "y" * 500, {}))
        with pytest.raises(ConnectionTimeoutError) as info:
            await attempt
    text = str(info.value)
    assert "transport was up" in text and "metrics" in text and "x-yyy" in text
    assert len(text) < 600  # a bot-controlled type is cut to a bounded prefix


async def test_connect_timeout_before_the_transport_connected() -> None:
    client = PipecatClient(LoopbackTransport(LoopbackBot(connect_delay=5.0)), connect_timeout=0.1)
    with pytest.raises(ConnectionTimeoutError, match="transport did not connect"):
        async with asyncio.timeout(WAIT):
            await client.connect()


# ------------------------------------------------------- 12.9: one loop per live session


@pytest.fixture
def other_loop() -> Iterator[asyncio.AbstractEventLoop]:
    loop = asyncio.new_event_loop()
    thread = threading.Thread(target=loop.run_forever, daemon=True)
    thread.start()
    yield loop
    loop.call_soon_threadsafe(loop.stop)
    thread.join(WAIT)
    loop.close()


def _on(loop: asyncio.AbstractEventLoop, coro: Any) -> Any:
    return asyncio.run_coroutine_threadsafe(coro, loop).result(WAIT)


async def test_a_call_from_another_loop_fails_naming_the_mismatch(
    other_loop: asyncio.AbstractEventLoop,
) -> None:
    bot = LoopbackBot(handlers={"echo": lambda d: d})
    client = PipecatClient(LoopbackTransport(bot), connect_timeout=2.0)
    _on(other_loop, client.connect())
    try:
        with pytest.raises(PipecatClientError, match="another event loop"):
            await client.send_client_request("echo", 1)
        with pytest.raises(PipecatClientError, match="another event loop"):
            await client.send_text("hi")
        with pytest.raises(PipecatClientError, match="another event loop"):
            await client.disconnect()
        with pytest.raises(PipecatClientError, match="another event loop"):
            await client.connect()
        error: list[BaseException] = []

        def from_a_thread() -> None:
            try:
                client.send_client_message("echo")
            except BaseException as exc:
                error.append(exc)

        thread = threading.Thread(target=from_a_thread)
        thread.start()
        thread.join(WAIT)
        assert isinstance(error[0], PipecatClientError) and "event loop" in str(error[0])
        assert _on(other_loop, client.send_client_request("echo", 2)) == 2  # its own loop works
    finally:
        _on(other_loop, client.disconnect())


def test_a_client_moves_to_a_new_loop_between_sessions() -> None:
    bot = LoopbackBot(handlers={"echo": lambda d: d})
    client = PipecatClient(LoopbackTransport(bot), connect_timeout=2.0)

    async def session(end: bool) -> Any:
        async with asyncio.timeout(WAIT):
            await client.connect()
            result = await client.send_client_request("echo", "ok")
            if end:
                await client.disconnect()
            return result

    assert asyncio.run(session(end=True)) == "ok"
    assert asyncio.run(session(end=False)) == "ok"  # its loop closes while READY
    assert asyncio.run(session(end=True)) == "ok"  # the abandoned session does not block
    assert client.state is State.DISCONNECTED and client.session_id == 3


# ------------------------------------------------------- 12.11: timeouts checked at once


BAD_TIMEOUTS: list[tuple[Any, type[Exception]]] = [
    (math.nan, ValueError),
    (math.inf, ValueError),
    (-1.0, ValueError),
    (None, TypeError),
    ("5", TypeError),
    (True, TypeError),
]


@pytest.mark.parametrize(("value", "error"), BAD_TIMEOUTS, ids=repr)
def test_bad_client_timeouts_fail_in_the_constructor(value: Any, error: type[Exception]) -> None:
    transport = LoopbackTransport(LoopbackBot())
    with pytest.raises(error, match="connect_timeout"):
        PipecatClient(transport, connect_timeout=value)
    with pytest.raises(error, match="request_timeout"):
        PipecatClient(transport, request_timeout=value)


@pytest.mark.parametrize(
    ("value", "error"), [v for v in BAD_TIMEOUTS if v[0] is not None], ids=repr
)
async def test_bad_request_timeout_fails_at_the_call(value: Any, error: type[Exception]) -> None:
    bot = LoopbackBot(handlers={"echo": lambda d: d})
    client = PipecatClient(LoopbackTransport(bot), connect_timeout=2.0)
    async with asyncio.timeout(WAIT):
        await client.connect()
        with pytest.raises(error, match="timeout"):
            await client.send_client_request("echo", 1, timeout=value)
        assert [m for m in bot.received if m["type"] == "client-message"] == []
        await client.disconnect()


# ------------------------------------------------------------------ sends (§2)


async def test_send_text_returns_the_id_it_sent() -> None:
    bot = LoopbackBot()
    client = PipecatClient(LoopbackTransport(bot), connect_timeout=2.0)
    async with asyncio.timeout(WAIT):
        await client.connect()
        msg_id = await client.send_text("hello", run_immediately=False)
        sent = await bot.wait_for_message("send-text")
        await client.disconnect()
    assert isinstance(msg_id, str) and sent["id"] == msg_id
    assert sent["data"] == {
        "content": "hello",
        "options": {"run_immediately": False, "audio_response": True},
    }


async def _ready_with_version(version: str) -> tuple[PipecatClient, LoopbackBot]:
    bot = LoopbackBot(send_bot_ready=False)
    client = PipecatClient(LoopbackTransport(bot), connect_timeout=2.0)
    attempt = asyncio.ensure_future(client.connect())
    ready = await bot.wait_for_message("client-ready")
    await bot.send(rtvi.make_message("bot-ready", {"version": version}, ready["id"]))
    await attempt
    return client, bot


@pytest.mark.parametrize(
    ("version", "expected"),
    [
        ("2.2.0", [{"buttons": ["1", "2", "#"]}]),
        ("2.1.0", [{"buttons": ["1", "2", "#"]}]),
        ("2.0.3", [{"button": "1"}, {"button": "2"}, {"button": "#"}]),
    ],
)
async def test_send_dtmf_follows_the_bots_protocol_version(
    version: str, expected: list[dict[str, Any]]
) -> None:
    async with asyncio.timeout(WAIT):
        client, bot = await _ready_with_version(version)
        await client.send_dtmf("12#")
        await bot.wait_for_message("dtmf", len(expected))
        await client.send_dtmf(["*"])
        await bot.wait_for_message("dtmf", len(expected) + 1)
        await client.disconnect()
    sent = [m["data"] for m in bot.received if m["type"] == "dtmf"]
    star = {"buttons": ["*"]} if "buttons" in expected[0] else {"button": "*"}
    assert sent == [*expected, star]


@pytest.mark.parametrize("version", ["0.3.0", "1.0.0", "1.9.9"])
async def test_send_dtmf_to_a_bot_below_rtvi_2_raises_before_sending(version: str) -> None:
    from lifecycle import PipecatClientError, UnsupportedFeatureError

    async with asyncio.timeout(WAIT):
        client, bot = await _ready_with_version(version)
        with pytest.raises(UnsupportedFeatureError, match=f"RTVI 2.0.*{version}") as caught:
            await client.send_dtmf("1")
        assert isinstance(caught.value, PipecatClientError) and caught.value.feature == "dtmf"
        assert client.state.value == "ready"  # the session goes on
        await client.disconnect()
    assert [m for m in bot.received if m["type"] == "dtmf"] == []


@pytest.mark.parametrize("content", [None, 42, b"bytes", {"text": "hi"}, ["hi"]], ids=repr)
async def test_send_text_refuses_what_is_not_a_string_and_sends_nothing(content: Any) -> None:
    bot = LoopbackBot()
    client = PipecatClient(LoopbackTransport(bot), connect_timeout=2.0)
    async with asyncio.timeout(WAIT):
        await client.connect()
        with pytest.raises(TypeError, match="must be a str"):
            await client.send_text(content)
        await client.disconnect()
    assert [m for m in bot.received if m["type"] == "send-text"] == []


@pytest.mark.parametrize("bad", ["", "12a", ["1", "10"], [1], None, "٣"], ids=repr)
async def test_send_dtmf_rejects_bad_keys_and_sends_nothing(bad: Any) -> None:
    bot = LoopbackBot()
    client = PipecatClient(LoopbackTransport(bot), connect_timeout=2.0)
    async with asyncio.timeout(WAIT):
        await client.connect()
        with pytest.raises(ValueError):
            await client.send_dtmf(bad)
        await client.disconnect()
    assert [m for m in bot.received if m["type"] == "dtmf"] == []


async def test_ui_event_and_cancel_job_group_as_client_js_sends_them() -> None:
    bot = LoopbackBot()
    client = PipecatClient(LoopbackTransport(bot), connect_timeout=2.0)
    with pytest.raises(BotNotReadyError):
        client.send_ui_event("nav_click")
    async with asyncio.timeout(WAIT):
        await client.connect()
        client.send_ui_event("nav_click", {"view": "home"})
        client.send_ui_event("hello")
        client.cancel_ui_job_group("t1")
        client.cancel_ui_job_group("t1", "user clicked cancel")
        await bot.wait_for_message("ui-cancel-job-group", 2)
        await client.disconnect()
    sent = [(m["type"], m["data"]) for m in bot.received if m["type"].startswith("ui-")]
    assert sent == [
        ("ui-event", {"event": "nav_click", "payload": {"view": "home"}}),
        ("ui-event", {"event": "hello"}),
        ("ui-cancel-job-group", {"job_id": "t1"}),
        ("ui-cancel-job-group", {"job_id": "t1", "reason": "user clicked cancel"}),
    ]
