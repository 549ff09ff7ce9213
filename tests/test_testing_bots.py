"""The testing bots: one sans-I/O script, three wires (loopback, WebSocket, SmallWebRTC).

The script is tested on its own (messages in, actions out), then through each wire at the
transport seam (a ``TransportSink`` recorder, so what the client makes of the messages does
not matter here): every wire says the same things in the same order.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Callable, Iterable
from contextlib import asynccontextmanager
from typing import Any

import aioice.ice
import pytest

from lifecycle.media import AudioFrame
from lifecycle.rtvi import make_message
from lifecycle.transport import ConnectRequest, Transport
from transports.loopback import LoopbackBot, LoopbackTransport
from transports.testing import DEFAULT_DIALOGUE, Dialogue, FunctionTrigger, TestingBotServer
from transports.testing.actions import (
    Action,
    CallHandler,
    Leave,
    Send,
    SendAudio,
    Sleep,
    Speak,
    StartTimer,
    StopSpeaking,
)
from transports.testing.messages import sine_frames
from transports.testing.script import MAX_PENDING_CALLS, USER_TURN_TIMER, BotScript

T = 10.0  # the bound of every await

USER_TURN = [
    "user-started-speaking",
    "user-input",
    "user-transcription",
    "user-stopped-speaking",
]
LLM_START = ["bot-llm-started"]
LLM_END = ["bot-transcription", "bot-llm-stopped"]
SPOKEN = [
    "bot-tts-started",
    "bot-tts-text",
    "bot-tts-stopped",
    "bot-started-speaking",
    "bot-output",
    "bot-output",
    "bot-stopped-speaking",
    "metrics",
]


def reply_types(reply: str) -> list[str]:
    """The types of one spoken reply of ``reply``'s text (one bot-llm-text per word)."""
    return [*LLM_START, *["bot-llm-text"] * len(reply.split()), *LLM_END, *SPOKEN]


# --- the script, sans I/O -------------------------------------------------------------------


def flatten(actions: Iterable[Action]) -> list[Action]:
    """Actions in the order a wire plays them, speech lanes expanded."""
    out: list[Action] = []
    for action in actions:
        out += flatten(action.actions) if isinstance(action, Speak) else [action]
    return out


def sent(actions: Iterable[Action]) -> list[dict[str, Any]]:
    return [dict(a.message) for a in flatten(actions) if isinstance(a, Send)]


def types(actions: Iterable[Action]) -> list[str]:
    return [m["type"] for m in sent(actions)]


def talking_script(**dialogue: Any) -> BotScript:
    return BotScript(
        library="test", dialogue=Dialogue(**dialogue), clock=lambda: "2026-01-01T00:00:00.000Z"
    )


def send_text(text: str, msg_id: str = "t1", **options: Any) -> dict[str, Any]:
    return make_message("send-text", {"content": text, "options": options}, msg_id)


def test_client_ready_gets_bot_ready_2_2_with_its_id() -> None:
    script = BotScript(library="lib", library_version="9")
    (ready,) = sent(script.receive(make_message("client-ready", {"version": "2.2.0"}, "r1")))
    assert ready["type"] == "bot-ready" and ready["id"] == "r1"
    assert ready["data"]["version"] == "2.2.0"
    assert ready["data"]["about"] == {"library": "lib", "library_version": "9"}
    assert ready["data"]["capabilities"] == {"audio_in": True, "audio_out": True}


def test_a_wrong_protocol_version_gets_an_error_response_then_bot_ready() -> None:
    script = BotScript(library="lib", ready_delay=0.5)
    actions = script.receive(make_message("client-ready", {"version": "1.0.0"}, "r1"))
    assert types(actions) == ["error-response", "bot-ready"]
    assert Sleep(0.5) in actions
    script.send_bot_ready = False
    assert types(script.receive(make_message("client-ready", {"version": "2.0"}, "r2"))) == []


def test_send_text_plays_a_voice_bot_turn_in_pipecat_order() -> None:
    script = talking_script()
    actions = script.receive(send_text("hello bot", "text-7"))
    assert types(actions) == USER_TURN + reply_types("You said: hello bot")
    messages = {m["type"]: m.get("data") for m in sent(actions)}
    assert messages["user-input"] == {
        "text": "hello bot",
        "input_type": "chat",
        "final": True,
        "timestamp": "2026-01-01T00:00:00.000Z",
        "user_id": "user",
        "msg_id": "text-7",
    }
    assert messages["user-transcription"]["text"] == "hello bot"
    tokens = [m["data"]["text"] for m in sent(actions) if m["type"] == "bot-llm-text"]
    assert "".join(tokens) == "You said: hello bot"
    outputs = [m["data"] for m in sent(actions) if m["type"] == "bot-output"]
    assert [o["spoken_status"] for o in outputs] == ["new", "completed"]
    assert outputs[1]["spoken_progress"] == {
        "accumulated_text": "You said: hello bot",
        "remaining_text": "",
    }
    assert all(o["aggregated_by"] == o["output_type"] == "sentence" for o in outputs)
    assert outputs[0]["segment_id"] == outputs[1]["segment_id"] and outputs[0]["will_be_spoken"]
    metrics = messages["metrics"]
    assert metrics["ttfb"][0].keys() == {"processor", "model", "value"}
    assert metrics["characters"][0]["value"] == len("You said: hello bot")
    assert metrics["tokens"][0]["completion_tokens"] == 4  # You said: hello bot
    # The reply's audio plays between bot-output "new" and "completed".
    played = flatten(actions)
    first_audio = next(i for i, a in enumerate(played) if isinstance(a, SendAudio))
    assert isinstance(played[first_audio - 1], Send)
    assert played[first_audio - 1].message["type"] == "bot-output"
    audio = [a.frame for a in played if isinstance(a, SendAudio)]
    assert sum(len(f.pcm) for f in audio) == 24000 * 2 * 200 // 1000


def test_audio_response_false_replies_in_text_only() -> None:
    actions = talking_script().receive(send_text("hi", audio_response=False))
    assert types(actions) == [
        *USER_TURN,
        *LLM_START,
        *["bot-llm-text"] * 3,
        *LLM_END,
        "bot-output",
        "metrics",
    ]
    assert not any(isinstance(a, SendAudio) for a in flatten(actions))
    (output,) = [m["data"] for m in sent(actions) if m["type"] == "bot-output"]
    assert output["will_be_spoken"] is False and "spoken_progress" not in output


def test_the_reply_and_token_delay_are_configurable() -> None:
    script = talking_script(reply=str.upper, token_delay=0.01, speech_ms=0)
    actions = flatten(script.receive(send_text("a b")))
    tokens = [
        a.message["data"]["text"]
        for a in actions
        if isinstance(a, Send) and a.message["type"] == "bot-llm-text"
    ]
    assert tokens == ["A ", "B"]
    assert actions.count(Sleep(0.01)) == 2
    assert BotScript(library="x").receive(send_text("quiet")) == []  # no dialogue: no talk


def function_call(
    script: BotScript,
    text: str = "What's the weather?",
    timeout: float = 10.0,
    name: str = "get_weather",
    arguments: dict[str, Any] | None = None,
) -> dict[str, Any]:
    actions = script.receive(send_text(text))
    assert types(actions) == [
        *USER_TURN,
        "bot-llm-started",
        "llm-function-call-started",
        "llm-function-call-in-progress",
        "bot-llm-stopped",
    ]
    (timer,) = [a for a in actions if isinstance(a, StartTimer)]
    assert timer.seconds == timeout
    started, in_progress = sent(actions)[5:7]
    assert started["data"] == {"function_name": name}
    assert in_progress["data"]["function_name"] == name
    assert in_progress["data"]["arguments"] == (
        {"location": "Lisbon"} if arguments is None else arguments
    )
    return {"timer": timer.key, **in_progress["data"]}


def test_a_function_call_waits_for_the_clients_result_and_quotes_it() -> None:
    script = talking_script()
    call = function_call(script)
    assert script.replying
    other = {"tool_call_id": "someone-else", "result": {}}
    assert script.receive(make_message("llm-function-call-result", other)) == []
    result = {"tool_call_id": call["tool_call_id"], "function_name": "get_weather"}
    result |= {"arguments": call["arguments"], "result": {"sky": "clear"}}
    actions = script.receive(make_message("llm-function-call-result", result))
    stopped, *reply = sent(actions)
    assert stopped["type"] == "llm-function-call-stopped"
    assert stopped["data"] == {
        "tool_call_id": call["tool_call_id"],
        "cancelled": False,
        "function_name": "get_weather",
        "result": {"sky": "clear"},
    }
    text = 'get_weather says: {"sky": "clear"}'
    assert [m["type"] for m in reply] == reply_types(text)
    assert reply[-2]["type"] == "bot-stopped-speaking"
    assert [m["data"]["text"] for m in reply if m["type"] == "bot-transcription"] == [text]
    assert script.timer_expired(call["timer"]) == []  # answered: the timer does nothing


def test_a_function_call_without_result_gives_up_after_the_timeout() -> None:
    script = talking_script(functions=(FunctionTrigger("time", "get_time"),), function_timeout=2)
    call = function_call(script, "what time is it", 2, "get_time", {})
    actions = script.timer_expired(call["timer"])
    log, stopped, *reply = sent(actions)
    assert log["type"] == "system-log" and "get_time" in log["data"]["text"]
    assert "2 s" in log["data"]["text"]
    assert stopped["data"]["cancelled"] is True and "result" not in stopped["data"]
    assert "I got no result from get_time." in [
        m["data"]["text"] for m in reply if m["type"] == "bot-transcription"
    ]
    late = {"tool_call_id": call["tool_call_id"], "result": "late"}
    assert script.receive(make_message("llm-function-call-result", late)) == []


def test_calls_waiting_for_results_are_bounded() -> None:
    script = talking_script()
    for n in range(MAX_PENDING_CALLS):
        script.receive(send_text("weather?", f"t{n}", run_immediately=False))
    actions = script.receive(send_text("weather again?", "t-last", run_immediately=False))
    assert "llm-function-call-in-progress" not in types(actions)
    assert "You said: weather again?" in [
        m["data"]["text"] for m in sent(actions) if m["type"] == "bot-transcription"
    ]


def test_the_old_import_paths_still_work() -> None:
    import transports.testing.webrtc
    import transports.testing_webrtc

    assert transports.testing_webrtc.TestingWebRTCBotServer is (
        transports.testing.webrtc.TestingWebRTCBotServer
    )
    assert TestingBotServer.__module__ == "transports.testing.websocket"


def test_run_immediately_during_a_reply_interrupts_it() -> None:
    script = talking_script()
    script.receive(send_text("first"))
    assert script.replying
    actions = script.receive(send_text("second", "t2", run_immediately=True))
    assert isinstance(actions[0], StopSpeaking)
    assert types(actions)[:1] == ["bot-interrupted"]
    assert types(actions)[1:5] == USER_TURN
    script.speech_finished()
    assert not script.replying
    # Not replying any more: a new text interrupts nothing.
    assert "bot-interrupted" not in types(script.receive(send_text("third", run_immediately=True)))


def test_run_immediately_cancels_a_call_waiting_for_its_result() -> None:
    script = talking_script()
    call = function_call(script)
    script.speech_finished()
    actions = script.receive(send_text("never mind", "t2", run_immediately=True))
    assert types(actions)[:2] == ["bot-interrupted", "llm-function-call-stopped"]
    assert sent(actions)[1]["data"]["cancelled"] is True
    assert sent(actions)[1]["data"]["tool_call_id"] == call["tool_call_id"]


def test_a_microphone_turn_is_heard_after_voice_then_silence() -> None:
    script = talking_script(min_voice_ms=100, end_of_speech_ms=300)
    silence = AudioFrame(b"\x00\x00" * 640, 16000, 1)
    assert script.receive_audio(silence) == []
    first, *rest = [script.receive_audio(f) for f in sine_frames(200, 16000)]
    assert types(first) == []  # 40 ms is not yet a turn
    assert sum(types(a).count("user-started-speaking") for a in rest) == 1
    assert all(StartTimer(USER_TURN_TIMER, 0.3) in a for a in [first, *rest])
    actions = script.timer_expired(USER_TURN_TIMER)
    assert types(actions)[:3] == ["user-transcription", "user-input", "user-stopped-speaking"]
    user_input = sent(actions)[1]["data"]
    assert user_input["input_type"] == "transcription" and "msg_id" not in user_input
    assert user_input["text"] == DEFAULT_DIALOGUE.audio_transcript
    assert script.timer_expired(USER_TURN_TIMER) == []  # heard once


def test_client_messages_go_to_handlers_then_builtins() -> None:
    def double(data: Any) -> Any:
        return data * 2

    script = BotScript(library="x", handlers={"double": double})
    (call,) = script.receive(make_message("client-message", {"t": "double", "d": 2}, "m1"))
    assert isinstance(call, CallHandler) and call.handler is double and call.data == 2
    assert sent(script.handler_returned(call, 4))[0] == {
        "label": "rtvi-ai",
        "type": "server-response",
        "id": "m1",
        "data": {"t": "double", "d": 4},
    }
    assert sent(script.handler_raised(call, ValueError("bad")))[0]["data"] == {"error": "bad"}
    (missing,) = sent(script.receive(make_message("client-message", {"t": "echo"}, "m2")))
    assert missing["data"] == {"error": "no handler for 'echo'"}
    assert sent(script.receive(make_message("what-is-this", None, "m3")))[0]["data"] == {
        "error": "Unsupported type what-is-this"
    }
    assert script.receive(make_message("dtmf", {"buttons": ["1"]})) == []
    assert script.receive(make_message("disconnect-bot")) == [Leave()]


@pytest.mark.parametrize(
    ("t", "d", "expected"),
    [
        ("echo", {"a": 1}, ["server-response"]),
        ("error", {"message": "boom"}, ["error-response"]),
        ("delay", {"seconds": 0.2}, ["server-response"]),
        ("delay", {"seconds": "soon"}, ["error-response"]),
        ("push", 5, ["server-message", "server-response"]),
        ("end", None, []),
        ("fatal", None, ["error"]),
        ("nonfatal", None, ["error", "server-response"]),
        ("audio", {"ms": 80}, ["server-response"]),
    ],
)
def test_the_servers_builtin_client_messages(t: str, d: Any, expected: list[str]) -> None:
    script = BotScript(library="x", builtins=True)
    actions = script.receive(make_message("client-message", {"t": t, "d": d}, "m"))
    assert types(actions) == expected
    assert (Leave() in actions) is (t == "end")
    assert len([a for a in actions if isinstance(a, SendAudio)]) == (2 if t == "audio" else 0)


# --- the wires ------------------------------------------------------------------------------


class Wire:
    """A TransportSink recorder: every message (parsed) and audio frame, waitable."""

    def __init__(self) -> None:
        self.messages: list[dict[str, Any]] = []
        self.audio: list[tuple[int, AudioFrame]] = []  # (messages seen before it, frame)
        self.closed: dict[str, Any] | None = None
        self._changed = asyncio.Event()

    def transport_connected(self) -> None:
        pass

    def message_received(self, message: Any) -> None:
        self.messages.append(message if isinstance(message, dict) else json.loads(message))
        self._changed.set()

    def message_dropped(self, reason: str) -> None:
        pass

    def audio_received(self, frame: AudioFrame) -> None:
        self.audio.append((len(self.messages), frame))

    def transport_closed(
        self, *, clean: bool, error: BaseException | None = None, reason: str | None = None
    ) -> None:
        self.closed = {"clean": clean, "reason": reason}
        self._changed.set()

    def types(self, start: int = 0) -> list[str]:
        return [m["type"] for m in self.messages[start:]]

    async def until(self, done: Callable[[], bool]) -> None:
        async with asyncio.timeout(T):
            while not done():
                self._changed.clear()
                await self._changed.wait()

    async def wait_for(self, msg_type: str, count: int = 1) -> dict[str, Any]:
        await self.until(lambda: self.types().count(msg_type) >= count)
        return [m for m in self.messages if m["type"] == msg_type][count - 1]


@pytest.fixture(autouse=True)
def loopback_ice(monkeypatch: pytest.MonkeyPatch) -> None:
    """aioice gathers no loopback address by default; this machine has only loopback."""

    def host_addresses(use_ipv4: bool, use_ipv6: bool) -> list[str]:
        return ["127.0.0.1"] if use_ipv4 else []

    monkeypatch.setattr(aioice.ice, "get_host_addresses", host_addresses)


@asynccontextmanager
async def session(kind: str, **dialogue: Any) -> AsyncIterator[tuple[Transport, Wire]]:
    """A connected transport of ``kind`` to its testing bot, with bot-ready received."""
    talk = Dialogue(**dialogue)
    wire = Wire()
    transport: Transport
    async with asyncio.timeout(T):
        if kind == "loopback":
            transport = LoopbackTransport(LoopbackBot(dialogue=talk))
            await transport.connect(ConnectRequest(), wire)
            yield await ready(transport, wire)
            await transport.disconnect()
        elif kind == "websocket":
            from transports.websocket import WebSocketTransport

            async with TestingBotServer(dialogue=talk) as server:
                transport = WebSocketTransport()
                await transport.connect(ConnectRequest({"wsUrl": server.ws_url}), wire)
                yield await ready(transport, wire)
                await transport.disconnect()
        else:
            from transports.small_webrtc import SmallWebRTCTransport
            from transports.testing_webrtc import TestingWebRTCBotServer

            async with TestingWebRTCBotServer(dialogue=talk) as webrtc:
                transport = SmallWebRTCTransport(ice_servers=[])
                await transport.connect(ConnectRequest({"webrtcUrl": webrtc.offer_url}), wire)
                yield await ready(transport, wire)
                await transport.disconnect()


async def ready(transport: Transport, wire: Wire) -> tuple[Transport, Wire]:
    transport.send_message(make_message("client-ready", {"version": "2.2.0", "about": {}}))
    await wire.wait_for("bot-ready")
    return transport, wire


WIRES = ["loopback", "websocket", "webrtc"]


@pytest.mark.parametrize("kind", WIRES)
async def test_every_wire_plays_the_same_turn(kind: str) -> None:
    async with session(kind, speech_ms=120) as (transport, wire):
        transport.send_message(send_text("hello there", "t-1"))
        await wire.wait_for("metrics")
        start = wire.types().index("user-started-speaking")
        assert wire.types(start) == USER_TURN + reply_types("You said: hello there")
        user_input = wire.messages[start + 1]["data"]
        assert user_input["msg_id"] == "t-1" and user_input["input_type"] == "chat"
        if kind != "webrtc":  # the WebRTC track carries silence besides, checked below
            at = {m["type"]: i for i, m in enumerate(wire.messages)}
            played = [n for n, _ in wire.audio]
            assert played and all(
                at["bot-started-speaking"] < n <= at["bot-stopped-speaking"] for n in played
            )
            assert sum(len(f.pcm) for _, f in wire.audio) == 24000 * 2 * 120 // 1000


@pytest.mark.parametrize("kind", WIRES)
async def test_every_wire_makes_a_function_call_and_waits_for_the_result(kind: str) -> None:
    async with session(kind, speech_ms=0) as (transport, wire):
        transport.send_message(send_text("how is the weather"))
        call = (await wire.wait_for("llm-function-call-in-progress"))["data"]
        assert "llm-function-call-stopped" not in wire.types()
        result = {**call, "result": "sunny"}
        transport.send_message(make_message("llm-function-call-result", result))
        stopped = await wire.wait_for("llm-function-call-stopped")
        assert stopped["data"]["result"] == "sunny" and stopped["data"]["cancelled"] is False
        transcript = await wire.wait_for("bot-transcription")
        assert transcript["data"]["text"] == "get_weather says: sunny"


async def test_a_function_call_times_out_over_the_websocket() -> None:
    async with session("websocket", function_timeout=0.05, speech_ms=0) as (transport, wire):
        transport.send_message(send_text("weather please"))
        log = await wire.wait_for("system-log")
        assert "got no result" in log["data"]["text"]
        stopped = await wire.wait_for("llm-function-call-stopped")
        assert stopped["data"]["cancelled"] is True


@pytest.mark.parametrize("kind", ["loopback", "websocket"])
async def test_run_immediately_interrupts_a_slow_reply(kind: str) -> None:
    async with session(kind, token_delay=0.2) as (transport, wire):
        transport.send_message(send_text("one two three four five six seven eight nine ten"))
        await wire.wait_for("bot-llm-text")
        transport.send_message(send_text("stop", "t-2", run_immediately=True))
        await wire.wait_for("metrics")
        after = wire.types(wire.types().index("bot-interrupted"))
        assert after[:5] == ["bot-interrupted", *USER_TURN]
        assert wire.types().count("metrics") == 1  # the first reply never finished
        assert wire.messages[-1]["type"] == "metrics"


@pytest.mark.parametrize("kind", WIRES)
async def test_every_wire_hears_a_microphone_turn(kind: str) -> None:
    async with session(kind, end_of_speech_ms=150, speech_ms=0) as (transport, wire):
        frames = sine_frames(400, 16000)
        if kind == "webrtc":  # the track plays what is queued in real time
            for frame in frames:
                transport.send_audio(frame)
        else:
            for frame in frames:
                transport.send_audio(frame)
                await asyncio.sleep(0)
        heard = await wire.wait_for("user-input")
        assert heard["data"]["input_type"] == "transcription"
        await wire.wait_for("metrics")
        start = wire.types().index("user-started-speaking")
        assert wire.types(start)[:4] == [
            "user-started-speaking",
            "user-transcription",
            "user-input",
            "user-stopped-speaking",
        ]


# --- LoopbackBot's helpers -----------------------------------------------------------------


@asynccontextmanager
async def loopback(bot: LoopbackBot) -> AsyncIterator[tuple[LoopbackTransport, Wire]]:
    wire = Wire()
    transport = LoopbackTransport(bot)
    async with asyncio.timeout(T):
        await transport.connect(ConnectRequest(), wire)
        await ready(transport, wire)
        yield transport, wire
        await transport.disconnect()


async def test_send_event_sends_any_bot_event() -> None:
    bot = LoopbackBot()
    async with loopback(bot) as (_, wire):
        await bot.send_event("bot-llm-text", {"text": "hi"})
        await bot.send_event("bot-started-speaking")
        await wire.wait_for("bot-started-speaking")
        assert wire.messages[-2:] == [
            {"label": "rtvi-ai", "type": "bot-llm-text", "data": {"text": "hi"}},
            {"label": "rtvi-ai", "type": "bot-started-speaking"},
        ]
        with pytest.raises(ValueError, match="not a bot event type"):
            await bot.send_event("client-ready", {})


async def test_call_function_returns_the_clients_result() -> None:
    bot = LoopbackBot()
    async with loopback(bot) as (transport, wire):
        call = asyncio.create_task(bot.call_function("lookup", {"q": 1}, timeout=T))
        progress = (await wire.wait_for("llm-function-call-in-progress"))["data"]
        assert progress["function_name"] == "lookup" and progress["arguments"] == {"q": 1}
        assert wire.types()[-2] == "llm-function-call-started"
        wrong = {**progress, "tool_call_id": "other", "result": "no"}
        transport.send_message(make_message("llm-function-call-result", wrong))
        transport.send_message(
            make_message("llm-function-call-result", {**progress, "result": {"a": 1}})
        )
        assert await asyncio.wait_for(call, T) == {"a": 1}
        stopped = await wire.wait_for("llm-function-call-stopped")
        assert stopped["data"] == {
            "tool_call_id": progress["tool_call_id"],
            "cancelled": False,
            "function_name": "lookup",
            "result": {"a": 1},
        }


async def test_call_function_times_out_and_cancels_the_call() -> None:
    bot = LoopbackBot()
    async with loopback(bot) as (_, wire):
        with pytest.raises(TimeoutError, match="lookup"):
            await bot.call_function("lookup", tool_call_id="c-1", timeout=0.05)
        stopped = await wire.wait_for("llm-function-call-stopped")
        assert stopped["data"]["cancelled"] is True and stopped["data"]["tool_call_id"] == "c-1"
        for bad in (float("nan"), float("inf"), 0, -1):
            with pytest.raises(ValueError):
                await bot.call_function("lookup", timeout=bad)
        with pytest.raises(TypeError):
            await bot.call_function("lookup", timeout=None)  # type: ignore[arg-type]


async def test_loopback_handlers_still_answer_and_settings_apply_live() -> None:
    async def slow_double(data: Any) -> Any:
        await asyncio.sleep(0)
        return data * 2

    bot = LoopbackBot(handlers={"double": slow_double}, dialogue=None)
    async with loopback(bot) as (transport, wire):
        transport.send_message(make_message("client-message", {"t": "double", "d": 3}, "m1"))
        response = await wire.wait_for("server-response")
        assert response["id"] == "m1" and response["data"] == {"t": "double", "d": 6}
        transport.send_message(send_text("silent bot"))
        bot.handlers["late"] = lambda data: "added later"
        transport.send_message(make_message("client-message", {"t": "late"}, "m2"))
        assert (await wire.wait_for("server-response", 2))["data"]["d"] == "added later"
        assert "user-input" not in wire.types()  # dialogue=None: it never talks


# ----------------------------------------------------- real-time audio of the WebSocket bot


async def test_websocket_bot_paces_its_audio_in_real_time_when_asked() -> None:
    from lifecycle import PipecatClient
    from transports.websocket import WebSocketTransport

    speech_ms = 400
    talking = Dialogue(speech_ms=speech_ms)
    assert TestingBotServer().realtime_audio is False  # tests keep their speed by default
    server = TestingBotServer(dialogue=talking, realtime_audio=True)
    async with server, PipecatClient(WebSocketTransport()) as client:
        async with asyncio.timeout(30):
            await client.start_bot_and_connect(server.start_url)
        names = ("on_bot_started_speaking", "on_bot_audio", "on_bot_stopped_speaking")
        async with client.events(*names) as stream:
            await client.send_text("hello")
            seen: list[tuple[str, float]] = []
            async with asyncio.timeout(30):
                async for event in stream:
                    seen.append((event.name, event.at))
                    if event.name == "on_bot_stopped_speaking":
                        break
    started = next(at for name, at in seen if name == "on_bot_started_speaking")
    audio = [at for name, at in seen if name == "on_bot_audio"]
    # The frames arrive spread over the speech as it plays (a busy machine only adds time),
    # and the bot stops speaking once the last frame has played.
    assert audio[-1] - audio[0] >= (speech_ms - 40) / 1000 * 0.9
    assert seen[-1][1] - started >= speech_ms / 1000 * 0.9
