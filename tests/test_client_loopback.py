"""PipecatClient behaviour (API.md §2-4) over the in-process loopback transport."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
import structlog

from lifecycle import (
    AudioFrame,
    BotNotReadyError,
    BotReadyData,
    ConnectionTimeoutError,
    InvalidStateError,
    MessageError,
    PipecatClient,
    RequestTimeoutError,
    RTVIError,
    SessionCancelledError,
    SessionClosedError,
    State,
    TransportError,
)
from transports.loopback import LoopbackBot, LoopbackTransport

from .support.recorder import Recorder, within

FULL_PATH = ["connecting", "connected", "ready"]


async def test_connect_resolves_on_bot_ready(client: PipecatClient, recorder: Recorder) -> None:
    data = await within(client.connect())
    assert isinstance(data, BotReadyData)
    assert data.version == "2.2.0" and data.about["library"] == "pipecat-lifecycle-loopback"
    assert client.state is State.READY and client.session_id == 1
    await within(client.disconnect())
    assert recorder.states() == [*FULL_PATH, "disconnecting", "disconnected"]
    assert recorder.names() == ["on_connected", "on_bot_ready", "on_disconnected"]
    assert recorder.args("on_bot_ready")[0][0] is data


async def test_client_ready_is_sent_with_protocol_version(
    client: PipecatClient, bot: LoopbackBot
) -> None:
    await within(client.connect())
    ready = bot.received[0]
    assert ready["label"] == "rtvi-ai" and ready["type"] == "client-ready"
    assert ready["data"]["version"] == "2.2.0"
    assert ready["data"]["about"]["library"] == "pipecat-lifecycle"
    assert {"library_version", "platform"} <= set(ready["data"]["about"])


async def test_start_bot_then_connect_uses_start_response(bot: LoopbackBot, http: Any) -> None:
    http.json_reply({"wsUrl": "ws://x", "token": "t0p"})
    seen: list[Any] = []

    class Spy(LoopbackTransport):
        async def connect(self, request: Any, events: Any) -> None:
            seen.append(request)
            await super().connect(request, events)

    client = PipecatClient(Spy(bot))
    rec = Recorder(client)
    response = await within(client.start_bot(http.url()))
    assert response == {"wsUrl": "ws://x", "token": "t0p"}
    assert client.state is State.AUTHENTICATED
    await within(client.connect())
    assert client.state is State.READY and client.session_id == 1
    assert seen[0].params == response and seen[0].start_endpoint == http.url()
    assert rec.states()[:2] == ["authenticating", "authenticated"]
    assert rec.args("on_bot_started") == [(response,)]
    assert http.requests[0].method == "POST" and http.requests[0].json() == {}
    await within(client.disconnect())


async def test_start_bot_and_connect(bot: LoopbackBot, http: Any) -> None:
    http.json_reply({"sessionId": "abc"})
    client = PipecatClient(LoopbackTransport(bot))
    rec = Recorder(client)
    data = await within(client.start_bot_and_connect(http.url()))
    assert data.version == "2.2.0"
    assert rec.states() == ["authenticating", "authenticated", *FULL_PATH]
    assert rec.names()[:3] == ["on_bot_started", "on_connected", "on_bot_ready"]
    await within(client.disconnect())


async def test_connect_with_explicit_params_overrides(client: PipecatClient) -> None:
    await within(client.connect({"wsUrl": "ws://direct"}))
    assert client.state is State.READY


async def test_one_client_many_sessions(client: PipecatClient, recorder: Recorder) -> None:
    for i in range(1, 6):
        await within(client.connect())
        assert client.session_id == i
        assert await within(client.send_client_request("echo", i)) == i
        await within(client.disconnect())
        assert client.state is State.DISCONNECTED
    assert recorder.count("on_disconnected") == 5
    transitions = [a[0] for a in recorder.args("on_transition")]
    assert [t.session_id for t in transitions if t.trigger == "connect"] == [1, 2, 3, 4, 5]


# ------------------------------------------------------------------ requests and messages


async def test_request_response_and_error_response(client: PipecatClient, bot: LoopbackBot) -> None:
    def refuse(data: Any) -> Any:
        raise ValueError("no way")

    bot.handlers["refuse"] = refuse
    await within(client.connect())
    assert await within(client.send_client_request("echo", {"x": [1, 2]})) == {"x": [1, 2]}
    with pytest.raises(MessageError) as info:
        await within(client.send_client_request("refuse", {}))
    assert str(info.value) == "no way" and info.value.data == {"error": "no way"}
    with pytest.raises(MessageError, match="no handler"):
        await within(client.send_client_request("unknown-type"))
    sent = [m for m in bot.received if m["type"] == "client-message"]
    assert sent[0]["data"] == {"t": "echo", "d": {"x": [1, 2]}}


async def test_async_handler_and_concurrent_requests_matched_by_id(
    client: PipecatClient, bot: LoopbackBot
) -> None:
    gates = {i: asyncio.Event() for i in range(3)}

    async def slow(data: int) -> int:
        await gates[data].wait()
        return data * 10

    bot.handlers["slow"] = slow
    await within(client.connect())
    tasks = [asyncio.create_task(client.send_client_request("slow", i)) for i in range(3)]
    for i in (2, 0, 1):  # answered out of order
        gates[i].set()
    assert await within(asyncio.gather(*tasks)) == [0, 10, 20]


async def test_request_timeout(client: PipecatClient, bot: LoopbackBot) -> None:
    never = asyncio.Event()
    bot.handlers["hang"] = lambda d: never.wait()
    await within(client.connect())
    with pytest.raises(RequestTimeoutError):
        await within(client.send_client_request("hang", timeout=0.05))
    # the default comes from request_timeout
    short = PipecatClient(
        LoopbackTransport(LoopbackBot(handlers={"hang": lambda d: never.wait()})),
        request_timeout=0.05,
    )
    await within(short.connect())
    with pytest.raises(RequestTimeoutError):
        await within(short.send_client_request("hang"))
    await within(short.disconnect())


async def test_request_timeouts_fire_in_deadline_order_whatever_the_sending_order(
    client: PipecatClient, bot: LoopbackBot
) -> None:
    never = asyncio.Event()
    bot.handlers["hang"] = lambda d: never.wait()
    await within(client.connect())
    slow = asyncio.create_task(client.send_client_request("hang", timeout=30))
    await within(bot.wait_for_message("client-message"))
    # Many answered requests behind one still waiting (their timeouts pile up behind it).
    for _ in range(3):
        answers = [client.send_client_request("echo", i) for i in range(600)]
        assert await within(asyncio.gather(*answers)) == list(range(600))
    # A shorter timeout sent later still fires first, with its own message.
    with pytest.raises(RequestTimeoutError, match=r"no response to 'hang' within 0.05 s"):
        await within(client.send_client_request("hang", timeout=0.05))
    assert not slow.done()
    slow.cancel()
    with pytest.raises(asyncio.CancelledError):
        await within(slow)
    assert await within(client.send_client_request("echo", 1)) == 1


async def test_cancelling_a_request_forgets_only_that_request(
    client: PipecatClient, bot: LoopbackBot
) -> None:
    never = asyncio.Event()
    bot.handlers["hang"] = lambda d: never.wait()
    await within(client.connect())
    task = asyncio.create_task(client.send_client_request("hang"))
    await within(bot.wait_for_message("client-message"))
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await within(task)
    assert client.state is State.READY
    assert await within(client.send_client_request("echo", 1)) == 1


async def test_disconnect_fails_pending_requests(client: PipecatClient, bot: LoopbackBot) -> None:
    never = asyncio.Event()
    bot.handlers["hang"] = lambda d: never.wait()
    await within(client.connect())
    pending = [asyncio.create_task(client.send_client_request("hang")) for _ in range(3)]
    await within(bot.wait_for_message("client-message", 3))
    await within(client.disconnect())
    for task in pending:
        with pytest.raises(SessionClosedError):
            await within(task)


async def test_send_client_message_and_text_and_disconnect_bot(
    client: PipecatClient, bot: LoopbackBot, recorder: Recorder
) -> None:
    await within(client.connect())
    client.send_client_message("note", {"a": 1})
    await within(client.send_text("hello", run_immediately=False))
    await within(bot.wait_for_message("send-text"))
    note = [m for m in bot.received if m["type"] == "client-message"][-1]
    assert note["data"] == {"t": "note", "d": {"a": 1}}
    text = bot.received[-1]
    assert text["data"] == {
        "content": "hello",
        "options": {"run_immediately": False, "audio_response": True},
    }
    await within(client.disconnect_bot())
    await recorder.wait_for("on_disconnected")
    assert client.state is State.DISCONNECTED
    assert recorder.count("on_bot_disconnected") == 1


async def test_sending_before_ready_raises_and_sends_nothing(bot: LoopbackBot) -> None:
    client = PipecatClient(LoopbackTransport(LoopbackBot(send_bot_ready=False)), connect_timeout=5)
    with pytest.raises(BotNotReadyError):
        client.send_client_message("x")
    with pytest.raises(BotNotReadyError):
        await within(client.send_client_request("x"))
    with pytest.raises(BotNotReadyError):
        await within(client.send_text("x"))
    with pytest.raises(BotNotReadyError):
        await within(client.send_audio(AudioFrame(b"\0\0", 16000, 1)))
    with pytest.raises(BotNotReadyError):
        await within(client.disconnect_bot())
    task = asyncio.create_task(client.connect())
    transport = client.transport
    assert isinstance(transport, LoopbackTransport)
    await within(transport.bot.wait_for_message("client-ready"))
    assert client.state is State.CONNECTED
    with pytest.raises(BotNotReadyError):
        client.send_client_message("x")
    assert [m["type"] for m in transport.bot.received] == ["client-ready"]
    await within(client.disconnect())
    with pytest.raises(SessionCancelledError):
        await within(task)


async def test_server_message_error_and_unhandled(
    client: PipecatClient, bot: LoopbackBot, recorder: Recorder
) -> None:
    await within(client.connect())
    await within(bot.send_server_message({"hello": 1}))
    await within(bot.send_error("minor"))
    await within(
        bot.send({"label": "rtvi-ai", "type": "x-app-transcription", "data": {"text": "hi"}})
    )
    await within(bot.send({"label": "rtvi-ai", "type": "error"}))
    await within(
        bot.send(
            {"label": "rtvi-ai", "type": "error-response", "id": "zz", "data": {"error": "late"}}
        )
    )
    await recorder.wait_for("on_message_error")
    assert recorder.args("on_server_message") == [({"hello": 1},)]
    errors = [a[0] for a in recorder.args("on_error")]
    assert errors[0] == RTVIError("minor", False)
    assert errors[1].fatal is False and "without details" in errors[1].message
    unhandled = recorder.args("on_unhandled_message")[0][0]
    assert unhandled["type"] == "x-app-transcription" and unhandled["data"] == {"text": "hi"}
    assert recorder.args("on_message_error")[0][0]["id"] == "zz"
    assert client.state is State.READY  # non-fatal errors change nothing


async def test_fatal_error_cleans_up_by_itself(
    client: PipecatClient, bot: LoopbackBot, recorder: Recorder
) -> None:
    never = asyncio.Event()
    bot.handlers["hang"] = lambda d: never.wait()
    await within(client.connect())
    pending = asyncio.create_task(client.send_client_request("hang"))
    await within(bot.wait_for_message("client-message"))
    await within(bot.send_error("dead", fatal=True))
    await recorder.wait_for("on_disconnected")
    assert client.state is State.DISCONNECTED
    assert recorder.states()[-2:] == ["disconnecting", "disconnected"]
    assert recorder.names()[-2:] == ["on_error", "on_disconnected"]
    assert recorder.args("on_error")[0][0] == RTVIError("dead", True)
    assert recorder.count("on_bot_disconnected") == 0
    with pytest.raises(SessionClosedError):
        await within(pending)
    await within(client.connect())  # no automatic reconnect, but a new session works
    assert client.session_id == 2


async def test_bot_leaves_cleanly(
    client: PipecatClient, bot: LoopbackBot, recorder: Recorder
) -> None:
    await within(client.connect())
    await within(bot.leave())
    await recorder.wait_for("on_disconnected")
    assert recorder.states()[-1] == "disconnected" and "disconnecting" not in recorder.states()
    assert recorder.names()[-2:] == ["on_bot_disconnected", "on_disconnected"]
    assert recorder.count("on_error") == 0
    assert client.state is State.DISCONNECTED


async def test_transport_lost_after_ready_is_fatal(
    client: PipecatClient, bot: LoopbackBot, recorder: Recorder
) -> None:
    await within(client.connect())
    await within(bot.crash())
    await recorder.wait_for("on_disconnected")
    assert recorder.names()[-3:] == ["on_error", "on_bot_disconnected", "on_disconnected"]
    error = recorder.args("on_error")[0][0]
    assert error.fatal is True
    assert recorder.states()[-1] == "disconnected" and "disconnecting" not in recorder.states()


async def test_audio_both_ways(client: PipecatClient, bot: LoopbackBot, recorder: Recorder) -> None:
    await within(client.connect())
    frame = AudioFrame(b"\x01\x00" * 160, 16000, 1)
    await within(client.send_audio(frame))
    assert bot.received_audio == [frame]
    await within(bot.send_audio(AudioFrame(b"\0\0" * 480, 24000, 1)))
    (received,) = await recorder.wait_for("on_bot_audio")
    assert received.sample_rate == 24000 and received.duration == pytest.approx(0.02)


# ------------------------------------------------------------------ startup failures


async def test_connect_failure_is_transport_error(recorder_free_bot: None = None) -> None:
    boom = OSError("refused")
    client = PipecatClient(LoopbackTransport(LoopbackBot(fail_connect=boom)))
    rec = Recorder(client)
    with pytest.raises(TransportError) as info:
        await within(client.connect())
    assert info.value.__cause__ is boom
    assert client.state is State.DISCONNECTED
    assert rec.states() == ["connecting", "disconnecting", "disconnected"]
    assert rec.count("on_disconnected") == 1
    assert len(asyncio.all_tasks()) == 1


async def test_bot_never_ready_times_out() -> None:
    client = PipecatClient(
        LoopbackTransport(LoopbackBot(send_bot_ready=False)), connect_timeout=0.1
    )
    rec = Recorder(client)
    with pytest.raises(ConnectionTimeoutError):
        await within(client.connect())
    assert client.state is State.DISCONNECTED
    assert rec.count("on_disconnected") == 1
    await within(client.disconnect())  # no-op
    assert rec.count("on_disconnected") == 1


async def test_transport_closing_before_ready_raises_at_once() -> None:
    bot = LoopbackBot(send_bot_ready=False)
    client = PipecatClient(LoopbackTransport(bot), connect_timeout=30)
    rec = Recorder(client)
    task = asyncio.create_task(client.connect())
    await within(bot.wait_for_message("client-ready"))
    await within(bot.crash())
    with pytest.raises(TransportError, match="before the bot was ready"):
        await within(task, 2)
    await rec.wait_for("on_disconnected")
    assert client.state is State.DISCONNECTED


async def test_fatal_error_before_ready_fails_connect() -> None:
    bot = LoopbackBot(send_bot_ready=False)
    client = PipecatClient(LoopbackTransport(bot))
    task = asyncio.create_task(client.connect())
    await within(bot.wait_for_message("client-ready"))
    await within(bot.send_error("cannot start", fatal=True))
    with pytest.raises(TransportError, match="cannot start"):
        await within(task)
    assert client.state is State.DISCONNECTED


async def test_second_start_raises_invalid_state_and_changes_nothing(
    client: PipecatClient, bot: LoopbackBot
) -> None:
    bot.send_bot_ready = False
    first = asyncio.create_task(client.connect())
    await within(bot.wait_for_message("client-ready"))
    for call in (
        client.connect(),
        client.start_bot("http://127.0.0.1:9/start"),
        client.start_bot_and_connect("http://127.0.0.1:9/start"),
    ):
        with pytest.raises(InvalidStateError):
            await within(call)
    assert client.state is State.CONNECTED and bot.connections == 1
    await within(client.disconnect())
    with pytest.raises(SessionCancelledError):
        await within(first)


# ------------------------------------------------------------------ disconnect in every state


@pytest.mark.parametrize(
    "phase", ["authenticating", "authenticated", "connecting", "connected", "ready"]
)
async def test_disconnect_in_every_phase(phase: str, http: Any) -> None:
    bot = LoopbackBot(handlers={"echo": lambda d: d})
    client = PipecatClient(LoopbackTransport(bot))
    rec = Recorder(client)
    http.json_reply({"ok": True}, delay=30 if phase == "authenticating" else 0)
    if phase == "connecting":
        bot.connect_delay = 30
    if phase == "connected":
        bot.send_bot_ready = False
    task: asyncio.Task[Any] | None = None
    if phase == "authenticated":
        await within(client.start_bot(http.url()))
    elif phase == "ready":
        await within(client.connect())
    else:
        starter = client.start_bot(http.url()) if phase == "authenticating" else client.connect()
        task = asyncio.create_task(starter)
        await rec.wait_for(
            "on_transport_state_changed",
            {"authenticating": 1, "connecting": 1, "connected": 2}[phase],
        )
    assert client.state.value == phase
    await within(client.disconnect())
    assert client.state is State.DISCONNECTED
    assert rec.states()[-2:] == ["disconnecting", "disconnected"]
    assert rec.count("on_disconnected") == 1 and rec.count("on_bot_disconnected") == 0
    if task is not None:
        with pytest.raises(SessionCancelledError):
            await within(task)
    assert len(asyncio.all_tasks()) == 1  # nothing of the client is left running
    await within(client.disconnect())  # idempotent
    assert rec.count("on_disconnected") == 1
    bot.connect_delay, bot.send_bot_ready = 0, True
    assert await within(client.connect()) is not None  # the same client starts again
    await within(client.disconnect())


async def test_disconnect_in_idle_is_noop(client: PipecatClient, recorder: Recorder) -> None:
    await within(client.disconnect())
    await within(client.disconnect())
    assert client.state is State.IDLE and recorder.events == []


@pytest.mark.parametrize("phase", ["authenticating", "connecting", "connected"])
async def test_cancelling_the_caller_abandons_the_attempt(phase: str, http: Any) -> None:
    bot = LoopbackBot(
        send_bot_ready=phase != "connected", connect_delay=30 * (phase == "connecting")
    )
    client = PipecatClient(LoopbackTransport(bot))
    rec = Recorder(client)
    http.json_reply({}, delay=30)
    call = (
        client.start_bot_and_connect(http.url()) if phase == "authenticating" else client.connect()
    )
    task = asyncio.create_task(call)
    await rec.wait_for("on_transport_state_changed", 2 if phase == "connected" else 1)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await within(task)
    await rec.wait_for("on_disconnected")
    assert client.state is State.DISCONNECTED
    assert rec.states()[-2:] == ["disconnecting", "disconnected"]
    await within(client.disconnect())
    assert rec.count("on_disconnected") == 1


# ------------------------------------------------------------------ callbacks


async def test_callbacks_serial_in_order_async_and_isolated(bot: LoopbackBot, logs: Any) -> None:
    order: list[str] = []
    running = 0

    async def slow_transition(event: Any) -> None:
        nonlocal running
        running += 1
        assert running == 1  # never two callbacks at once
        await asyncio.sleep(0)
        order.append(f"t:{event.dest.value}")
        running -= 1

    def broken() -> None:
        raise RuntimeError("user bug")

    client = PipecatClient(
        LoopbackTransport(bot),
        callbacks={"on_transition": slow_transition, "on_connected": broken},
    )

    @client.event_handler("on_bot_ready")
    def ready(data: BotReadyData) -> None:
        order.append("ready")

    await within(client.connect())
    await within(client.disconnect())
    assert order == [
        "t:connecting",
        "t:connected",
        "t:ready",
        "ready",
        "t:disconnecting",
        "t:disconnected",
    ]
    assert client.state is State.DISCONNECTED
    failures = [e for e in logs if e["event"] == "event callback failed"]
    assert failures and failures[0]["event_name"] == "on_connected"
    assert failures[0]["session_id"] == 1


async def test_every_callback_has_run_when_disconnect_returns(bot: LoopbackBot) -> None:
    done: list[str] = []

    async def slow(*args: Any) -> None:
        await asyncio.sleep(0.01)
        done.append("x")

    client = PipecatClient(LoopbackTransport(bot), callbacks={"on_disconnected": slow})
    await within(client.connect())
    await within(client.disconnect())
    assert done == ["x"]


async def test_unknown_event_name_raises(client: PipecatClient) -> None:
    with pytest.raises(ValueError, match="unknown event"):
        client.add_event_handler("on_nothing", print)
    with pytest.raises(ValueError):
        client.event_handler("onBotReady")
    with pytest.raises(ValueError):
        PipecatClient(LoopbackTransport(LoopbackBot()), callbacks={"bad": print})


async def test_remove_event_handler(client: PipecatClient) -> None:
    seen: list[Any] = []
    client.add_event_handler("on_connected", seen.append)
    client.remove_event_handler("on_connected", seen.append)
    await within(client.connect())
    assert seen == []


async def test_context_manager_disconnects(bot: LoopbackBot) -> None:
    async with PipecatClient(LoopbackTransport(bot)) as client:
        await within(client.connect())
        assert client.state is State.READY
    assert client.state is State.DISCONNECTED


async def test_disconnect_from_inside_a_callback(bot: LoopbackBot) -> None:
    client = PipecatClient(LoopbackTransport(bot))
    ended = asyncio.Event()

    async def on_ready(data: Any) -> None:
        await client.disconnect()
        ended.set()

    client.add_event_handler("on_bot_ready", on_ready)
    await within(client.connect())
    await within(ended.wait())
    assert client.state is State.DISCONNECTED


async def test_old_session_events_never_reach_the_next(bot: LoopbackBot) -> None:
    client = PipecatClient(LoopbackTransport(bot))
    sessions: list[int] = []
    client.add_event_handler("on_transition", lambda e: sessions.append(e.session_id))
    await within(client.connect())
    old_transport_events = bot._link.events if bot._link else None
    await within(client.disconnect())
    await within(client.connect())
    assert old_transport_events is not None
    old_transport_events.transport_closed(clean=False, reason="late")  # late report: ignored
    old_transport_events.message_received(
        '{"label":"rtvi-ai","type":"error","data":{"error":"x","fatal":true}}'
    )
    assert client.state is State.READY and client.session_id == 2
    await within(client.disconnect())
    assert sessions == sorted(sessions)


# ------------------------------------------------------------------ bad input


@pytest.mark.parametrize(
    "payload",
    [
        "not json",
        "[1,2]",
        "42",
        '"text"',
        '{"label":"other","type":"bot-ready"}',
        '{"label":"rtvi-ai"}',
        b"\xff\xfe",
        "{" * 100000,
        '{"label":"rtvi-ai","type":"server-response","data":{"d":1}}',
        '{"label":"rtvi-ai","type":"server-response","id":"nope","data":{"d":1}}',
        '{"label":"rtvi-ai","type":"bot-ready","data":{"version":"2.2.0"}}',
    ],
)
async def test_bad_inbound_is_dropped_and_logged(
    payload: str | bytes, client: PipecatClient, bot: LoopbackBot, recorder: Recorder, logs: Any
) -> None:
    await within(client.connect())
    await within(bot.send_raw(payload))
    assert await within(client.send_client_request("echo", "still fine")) == "still fine"
    assert client.state is State.READY
    assert recorder.count("on_error") == 0 and recorder.count("on_unhandled_message") == 0
    assert any("dropped" in e["event"] for e in logs)


async def test_oversize_message_dropped(client: PipecatClient, bot: LoopbackBot, logs: Any) -> None:
    await within(client.connect())
    huge = '{"label":"rtvi-ai","type":"server-message","data":"' + "x" * (1024 * 1024) + '"}'
    await within(bot.send_raw(huge))
    assert await within(client.send_client_request("echo", 1)) == 1
    assert any("over the" in str(e.get("reason")) for e in logs)


@pytest.mark.parametrize("version", ["1.0.0", "3.1.0", "garbage"])
async def test_other_major_version_accepted_with_warning(version: str, logs: Any) -> None:
    bot = LoopbackBot(send_bot_ready=False)
    client = PipecatClient(LoopbackTransport(bot))
    task = asyncio.create_task(client.connect())
    ready = await within(bot.wait_for_message("client-ready"))
    await within(
        bot.send(
            {
                "label": "rtvi-ai",
                "type": "bot-ready",
                "id": ready["id"],
                "data": {"version": version},
            }
        )
    )
    data = await within(task)
    assert data.version == version and client.state is State.READY
    assert any(e["event"].startswith("bot speaks another RTVI major") for e in logs)
    await within(client.disconnect())


async def test_injected_logger_gets_every_line_with_session_id(bot: LoopbackBot) -> None:
    capturing = structlog.testing.CapturingLogger()
    logger = structlog.wrap_logger(capturing, processors=[])
    client = PipecatClient(LoopbackTransport(bot), logger=logger)
    await within(client.connect())
    await within(client.disconnect())
    events = [call.kwargs for call in capturing.calls]
    transitions = [e for e in events if e.get("event") == "transition"]
    assert [(e["source"], e["dest"], e["trigger"]) for e in transitions][:3] == [
        ("idle", "connecting", "connect"),
        ("connecting", "connected", "transport_connected"),
        ("connected", "ready", "bot_ready"),
    ]
    assert all(e.get("session_id") == 1 for e in events)
