"""The session's rules, driven through `SessionProtocol` without an event loop.

Each test feeds inputs (method calls) and checks the actions that come out, in a few lines,
as websockets' own ``tests/test_protocol.py`` does for its sans-I/O protocol.
"""

from __future__ import annotations

import json
from typing import Any

import pytest

from lifecycle import BotOutput, FunctionCall, State
from lifecycle.errors import (
    BotNotReadyError,
    InvalidStateError,
    MessageError,
    TransportError,
    UnsupportedFeatureError,
)
from lifecycle.protocol import (
    Action,
    Answer,
    CancelFunctions,
    Dropped,
    Emit,
    End,
    MarkReady,
    Note,
    RunFunction,
    Send,
    SessionProtocol,
    Stop,
    StopFunction,
    Transitioned,
)
from lifecycle.rtvi import LABEL


def msg(msg_type: str, data: Any = None, msg_id: str | None = None) -> str:
    """An inbound RTVI message as the wire carries it."""
    message: dict[str, Any] = {"label": LABEL, "type": msg_type, "id": msg_id or "m"}
    if data is not None:
        message["data"] = data
    return json.dumps(message)


BOT_READY = msg("bot-ready", {"version": "2.2.0", "about": {"library": "pipecat"}})


def emitted(actions: list[Action]) -> list[str]:
    """The names of the events emitted, in order."""
    return [action.name for action in actions if isinstance(action, Emit)]


def of(actions: list[Action], kind: type[Any]) -> list[Any]:
    """The actions of one kind."""
    return [action for action in actions if isinstance(action, kind)]


def connected() -> SessionProtocol:
    """A protocol whose transport just connected (state CONNECTED)."""
    protocol = SessionProtocol()
    protocol.begin("connect")
    protocol.transport_connected()
    return protocol


def ready() -> SessionProtocol:
    """A protocol in READY."""
    protocol = connected()
    protocol.receive(BOT_READY)
    return protocol


# ------------------------------------------------------------------ starting


def test_begin_starts_session_one_and_reports_the_transition() -> None:
    protocol = SessionProtocol()
    actions = protocol.begin("start_bot")
    assert protocol.state is State.AUTHENTICATING and protocol.session_id == 1
    assert isinstance(actions[0], Transitioned)
    assert emitted(actions) == ["on_transition", "on_transport_state_changed"]


def test_begin_while_a_session_is_in_progress_is_refused() -> None:
    protocol = connected()
    with pytest.raises(InvalidStateError, match="call disconnect"):
        protocol.begin("connect")
    assert protocol.state is State.CONNECTED


def test_bot_started_hands_the_start_response_on() -> None:
    protocol = SessionProtocol()
    protocol.begin("start_bot")
    actions = protocol.bot_started({"ws_url": "ws://x"})
    assert Emit("on_bot_started", ({"ws_url": "ws://x"},)) in actions
    assert protocol.state is State.AUTHENTICATED


def test_connect_goes_on_with_the_started_session_only_from_authenticated() -> None:
    protocol = SessionProtocol()
    protocol.begin("start_bot")
    assert protocol.proceed("connect") is None  # still authenticating
    protocol.bot_started({})
    assert protocol.proceed("connect") is not None
    assert protocol.state is State.CONNECTING and protocol.session_id == 1


def test_client_ready_goes_out_when_the_transport_connects() -> None:
    protocol = SessionProtocol()
    protocol.begin("connect")
    actions = protocol.transport_connected()
    assert emitted(actions)[-1] == "on_connected"
    (send,) = of(actions, Send)
    assert send.message["type"] == "client-ready"
    assert send.message["data"]["about"]["library"] == "pipecat-lifecycle"


def test_bot_ready_in_connected_marks_ready() -> None:
    protocol = connected()
    actions = protocol.receive(BOT_READY)
    (mark,) = of(actions, MarkReady)
    assert mark.info.version == "2.2.0" and protocol.bot_info == mark.info
    assert emitted(actions)[-1] == "on_bot_ready"
    assert protocol.state is State.READY


def test_bot_ready_before_the_transport_connected_is_dropped() -> None:
    protocol = SessionProtocol()
    protocol.begin("connect")
    assert of(protocol.receive(BOT_READY), MarkReady) == []
    assert protocol.bot_info is None and protocol.state is State.CONNECTING


def test_a_second_bot_ready_changes_nothing() -> None:
    protocol = ready()
    first = protocol.bot_info
    actions = protocol.receive(msg("bot-ready", {"version": "2.0.0"}))
    assert emitted(actions) == [] and protocol.bot_info is first


def test_bot_ready_of_another_major_version_is_accepted() -> None:
    protocol = connected()
    protocol.receive(msg("bot-ready", {"version": "3.0.0"}))
    assert protocol.state is State.READY


# ------------------------------------------------------------------- sending


def test_sending_before_ready_raises() -> None:
    protocol = connected()
    with pytest.raises(BotNotReadyError, match="connected"):
        protocol.send({"type": "x"})
    with pytest.raises(BotNotReadyError):
        protocol.request("t")


def test_sending_in_ready_gives_a_send() -> None:
    assert ready().send({"type": "x"}) == Send({"type": "x"})


def test_dtmf_follows_the_bots_version() -> None:
    protocol = connected()
    protocol.receive(msg("bot-ready", {"version": "2.0.3"}))
    assert [s.message["data"] for s in protocol.dtmf("12")] == [{"button": "1"}, {"button": "2"}]
    assert [s.message["data"] for s in ready().dtmf("12")] == [{"buttons": ["1", "2"]}]


def test_send_file_needs_a_bot_on_rtvi_2_2() -> None:
    send = ready().file("see", b"\x00\x01", "image/png", "a.png", run_immediately=True)
    assert send.message["data"]["file"]["source"] == {"type": "bytes", "bytes": "AAE="}
    protocol = connected()
    protocol.receive(msg("bot-ready", {"version": "2.1.0"}))
    with pytest.raises(UnsupportedFeatureError, match="send-file"):
        protocol.file("see", b"", "image/png", None, run_immediately=True)


# ----------------------------------------------------------------- responses


def test_a_response_answers_its_request_once() -> None:
    protocol = ready()
    request_id = protocol.request("get", {"a": 1}).message["id"]
    response = msg("server-response", {"t": "get", "d": 42}, request_id)
    assert of(protocol.receive(response), Answer) == [Answer(request_id, 42)]
    assert of(protocol.receive(response), Answer) == []  # a duplicate is dropped


def test_an_error_response_fails_its_request() -> None:
    protocol = ready()
    request_id = protocol.request("get").message["id"]
    (answer,) = of(protocol.receive(msg("error-response", {"error": "no"}, request_id)), Answer)
    assert isinstance(answer.error, MessageError) and "no" in str(answer.error)


def test_an_error_response_for_no_request_is_an_event() -> None:
    actions = ready().receive(msg("error-response", {"error": "no"}, "nobody"))
    assert emitted(actions) == ["on_message_error"]


def test_a_forgotten_request_gets_no_answer() -> None:
    protocol = ready()
    request_id = protocol.request("get").message["id"]
    protocol.forget_request(request_id)
    assert protocol.receive(msg("server-response", {"d": 1}, request_id)) == [
        Note("message-in", "server-response")
    ]


# ------------------------------------------------------------------- inbound


def test_an_oversize_message_is_dropped_at_the_one_size_gate() -> None:
    protocol = SessionProtocol(max_message_size=64)
    protocol.begin("connect")
    (dropped,) = protocol.receive(msg("server-message", "x" * 100))
    assert isinstance(dropped, Dropped) and "over the 64 byte limit" in dropped.reason


@pytest.mark.parametrize("raw", ["{", "[]", json.dumps({"label": "other", "type": "x"}), "{}"])
def test_an_unusable_message_is_dropped(raw: str) -> None:
    assert [type(action) for action in ready().receive(raw)] == [Dropped]


@pytest.mark.parametrize(
    ("data", "expected"),
    [
        ("NaN", "nan"),  # Python's json.dumps writes these; the JSON spec has no such values
        ("-Infinity", "-inf"),
        ("1e400", "inf"),  # out of a double's range: orjson refuses it, json gives inf
        ('"\\ud83d"', "'\\ud83d'"),  # an escaped lone surrogate
        ("18446744073709551615", "18446744073709551615"),  # up to 64 bits: an exact int
        ("18446744073709551616", "1.8446744073709552e+19"),  # beyond: a float, as in a browser
        ('{"k": [1, 2.5, "é", null, true]}', "{'k': [1, 2.5, 'é', None, True]}"),
    ],
)
def test_json_beyond_the_spec_that_python_bots_send_still_parses(data: str, expected: str) -> None:
    raw = f'{{"label": "rtvi-ai", "type": "server-message", "data": {data}}}'
    (emit,) = of(ready().receive(raw), Emit)
    assert emit.name == "on_server_message" and repr(emit.args[0]) == expected


@pytest.mark.parametrize("raw", [None, 42, ["label", "rtvi-ai"], memoryview(b"{}")])
def test_an_inbound_object_that_is_neither_text_nor_a_mapping_is_dropped(raw: Any) -> None:
    (dropped,) = ready().receive(raw)
    assert isinstance(dropped, Dropped) and "where a message belongs" in dropped.reason


def test_a_notification_fires_its_typed_event() -> None:
    actions = ready().receive(msg("bot-output", {"text": "hi", "spoken": True}))
    (emit,) = of(actions, Emit)
    assert emit.name == "on_bot_output" and isinstance(emit.args[0], BotOutput)


def test_a_function_call_runs_and_its_stop_is_passed_on() -> None:
    protocol = ready()
    call = {"function_name": "f", "tool_call_id": "c1", "arguments": {}}
    (run,) = of(protocol.receive(msg("llm-function-call-in-progress", call)), RunFunction)
    assert isinstance(run.call, FunctionCall) and run.call.tool_call_id == "c1"
    stopped = msg("llm-function-call-stopped", {"tool_call_id": "c1", "cancelled": True})
    assert of(protocol.receive(stopped), StopFunction) == [StopFunction("c1", True)]


def test_server_message_unknown_type_and_interruption_frame() -> None:
    protocol = ready()
    assert emitted(protocol.receive(msg("server-message", {"k": 1}))) == ["on_server_message"]
    assert emitted(protocol.receive(msg("brand-new", {}))) == ["on_unhandled_message"]
    assert emitted(protocol.receive(msg("transport-interruption"))) == []


def test_every_message_in_is_noted_for_the_trace() -> None:
    assert ready().receive(msg("brand-new"))[0] == Note("message-in", "brand-new")


# --------------------------------------------------------------------- errors


def test_a_non_fatal_error_is_only_an_event() -> None:
    actions = ready().receive(msg("error", {"error": "meh"}))
    assert emitted(actions) == ["on_error"] and of(actions, End) == []


def test_a_fatal_error_ends_the_session_once() -> None:
    protocol = ready()
    (end,) = of(protocol.receive(msg("error", {"error": "boom", "fatal": True})), End)
    assert end.trigger == "fail" and "boom" in end.reason
    assert of(protocol.receive(msg("error", {"error": "again", "fatal": True})), End) == []
    assert of(protocol.transport_closed(clean=False), End) == []


def test_a_fatal_error_in_ready_stops_no_waiter_but_cancels_functions() -> None:
    protocol = ready()
    protocol.receive(msg("error", {"error": "boom", "fatal": True}))
    actions = protocol.end("fail", "fatal")
    assert of(actions, Stop) == [] and of(actions, CancelFunctions) == [CancelFunctions()]


def test_a_fatal_error_before_ready_stops_the_waiting_connect() -> None:
    protocol = connected()
    protocol.receive(msg("error", {"error": "no key", "fatal": True}))
    (stop,) = of(protocol.end("fail", "fatal"), Stop)
    assert isinstance(stop.error, TransportError) and "no key" in str(stop.error)


# ----------------------------------------------------------------- ending


def test_the_transport_lost_in_ready_is_a_fatal_error_and_the_bot_left() -> None:
    protocol = ready()
    (end,) = of(protocol.transport_closed(clean=False, reason="close 1006"), End)
    actions = protocol.end(end.trigger, end.reason)
    assert emitted(actions)[-2:] == ["on_error", "on_bot_disconnected"]
    assert "on_disconnected" not in emitted(actions)  # not before the cleanup
    assert emitted(protocol.cleanup_done(end.reason)) == ["on_disconnected"]
    assert protocol.state is State.DISCONNECTED


def test_the_bot_leaving_cleanly_in_ready_is_no_error() -> None:
    protocol = ready()
    protocol.transport_closed(clean=True)
    assert "on_error" not in emitted(protocol.end("transport_closed", "bot left"))


def test_the_transport_closing_while_connecting_stops_the_waiter() -> None:
    protocol = SessionProtocol()
    protocol.begin("connect")
    protocol.transport_closed(clean=False, error=OSError("refused"))
    actions = protocol.end("transport_closed", "lost")
    (stop,) = of(actions, Stop)
    assert "before the bot was ready" in str(stop.error)
    assert isinstance(stop.error.__cause__, OSError)
    assert "on_bot_disconnected" not in emitted(actions)


def test_the_transport_closing_in_connected_means_the_bot_left() -> None:
    protocol = connected()
    protocol.transport_closed(clean=True)
    assert "on_bot_disconnected" in emitted(protocol.end("transport_closed", "bot left"))


def test_disconnect_then_cleanup_reaches_disconnected_once() -> None:
    protocol = ready()
    assert protocol.end("disconnect", "client").__len__() > 0
    assert protocol.state is State.DISCONNECTING and not protocol.sending_allowed
    actions = protocol.cleanup_done("client")
    assert emitted(actions).count("on_disconnected") == 1
    assert protocol.state is State.DISCONNECTED and not protocol.ending


def test_cleanup_after_transport_closed_moves_nothing_more() -> None:
    protocol = ready()
    protocol.transport_closed(clean=True)
    protocol.end("transport_closed", "bot left")
    actions = protocol.cleanup_done("bot left")
    assert of(actions, Transitioned) == [] and emitted(actions) == ["on_disconnected"]


def test_abandon_ends_the_session_at_once() -> None:
    protocol = ready()
    actions = protocol.abandon("loop closed")
    assert protocol.state is State.DISCONNECTED
    assert emitted(actions)[-1] == "on_disconnected"


def test_a_new_session_starts_with_no_facts_of_the_last() -> None:
    protocol = ready()
    protocol.request("get")
    protocol.end("disconnect", "x")
    protocol.cleanup_done("x")
    protocol.begin("connect")
    assert protocol.session_id == 2 and protocol.bot_info is None
    assert protocol.pending_requests == frozenset()


# ---------------------------------------------------------- connect timeout


def test_timeout_message_when_the_transport_never_connected() -> None:
    protocol = SessionProtocol()
    protocol.begin("connect")
    assert protocol.timeout_message(5.0).endswith("the transport did not connect")


def test_timeout_message_when_nothing_arrived() -> None:
    assert "nothing arrived from the bot" in connected().timeout_message(5.0)


def test_timeout_message_names_what_arrived_bounded_and_once_each() -> None:
    protocol = connected()
    for n in range(20):
        protocol.receive(msg(f"t{n % 10}"))
    text = protocol.timeout_message(5.0)
    assert "t0, t1, t2, t3, t4, t5, t6, t7, but no bot-ready" in text


# ------------------------------------------------- the one path through the client


async def test_one_bot_output_passes_each_layer_once(monkeypatch: pytest.MonkeyPatch) -> None:
    # socket -> transport's sink -> SessionProtocol.receive -> the client's carrying-out
    # loop -> the event bus -> the user's callback: each entered once for one message.
    import asyncio
    from collections import Counter
    from collections.abc import Callable

    from lifecycle import PipecatClient
    from lifecycle.dispatch import EventBus
    from lifecycle.session_io import SessionSink
    from transports.loopback import LoopbackBot, LoopbackTransport

    bot = LoopbackBot()
    client = PipecatClient(LoopbackTransport(bot))
    got: asyncio.Future[BotOutput] = asyncio.get_running_loop().create_future()
    client.add_event_handler("on_bot_output", got.set_result)
    calls: Counter[str] = Counter()
    for owner, name in (
        (SessionSink, "message_received"),
        (SessionProtocol, "receive"),
        (PipecatClient, "_carry_out"),
        (EventBus, "emit"),
    ):
        original: Callable[..., Any] = getattr(owner, name)

        def counted(
            *args: Any, _o: Callable[..., Any] = original, _n: str = name, **kwargs: Any
        ) -> Any:
            calls[_n] += 1
            return _o(*args, **kwargs)

        monkeypatch.setattr(owner, name, counted)
    async with asyncio.timeout(10):
        await client.connect()  # the session's sink binds the (counted) carrying-out loop
    calls.clear()
    async with asyncio.timeout(10):
        await bot.send_event("bot-output", {"text": "hi", "spoken": True})
        assert (await got).text == "hi"
    assert calls == {"message_received": 1, "receive": 1, "_carry_out": 1, "emit": 1}
    monkeypatch.undo()
    async with asyncio.timeout(10):
        await client.disconnect()
