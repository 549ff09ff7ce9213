"""The typed RTVI surface against a real Pipecat 1.14 voice bot (tests/interop/voice_bot.py).

The bot is Pipecat's own pipeline (RTVIProcessor, user/assistant aggregators, STTService,
LLMService and TTSService subclasses as stand-ins, RTVIObserver with function calls reported
FULL, metrics, audio levels and raw text on), over WebSocket and SmallWebRTC. Every RTVI type
it sends must arrive as its typed event (API.md §9) with the right fields, in order; a
function-call handler's result must come back in ``llm-function-call-stopped`` (§10); DTMF
must reach the bot as InputDTMFFrames. Run with ``-s`` to see the RTVI types received.
"""

from __future__ import annotations

import math
import struct
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from lifecycle import AudioFrame, FunctionCall, PipecatClient
from tests.support.interop_bots import BotProcess, EventLog, rtvi_types_received, running_voice_bot
from transports.websocket import WebSocketTransport

T = 15.0
TEXT_REPLY = "You said: hello there. How can I help?"
AUDIO_TRANSCRIPT = "hello from the microphone"  # what voice_bot's stand-in STT always hears
TRANSPORTS = ["ws", "webrtc"]

# Every RTVI type of API.md §9 this bot sends, by its event.
VOICE_EVENTS = {
    "on_user_started_speaking": "user-started-speaking",
    "on_user_stopped_speaking": "user-stopped-speaking",
    "on_vad_user_started_speaking": "vad-user-started-speaking",
    "on_vad_user_stopped_speaking": "vad-user-stopped-speaking",
    "on_user_mute_started": "user-mute-started",
    "on_user_mute_stopped": "user-mute-stopped",
    "on_bot_started_speaking": "bot-started-speaking",
    "on_bot_stopped_speaking": "bot-stopped-speaking",
    "on_bot_interrupted": "bot-interrupted",
    "on_user_transcript": "user-transcription",
    "on_user_input": "user-input",
    "on_user_llm_text": "user-llm-text",
    "on_bot_output": "bot-output",
    "on_bot_transcript": "bot-transcription",
    "on_bot_llm_started": "bot-llm-started",
    "on_bot_llm_stopped": "bot-llm-stopped",
    "on_bot_llm_text": "bot-llm-text",
    "on_bot_tts_started": "bot-tts-started",
    "on_bot_tts_stopped": "bot-tts-stopped",
    "on_bot_tts_text": "bot-tts-text",
    "on_stt_raw_text": "stt-raw-text",
    "on_llm_raw_text": "llm-raw-text",
    "on_tts_raw_text": "tts-raw-text",
    "on_metrics": "metrics",
    "on_llm_function_call_started": "llm-function-call-started",
    "on_llm_function_call_in_progress": "llm-function-call-in-progress",
    "on_llm_function_call_stopped": "llm-function-call-stopped",
    "on_user_audio_level": "user-audio-level",
    "on_bot_audio_level": "bot-audio-level",
    "on_ui_command": "ui-command",
}
SEEN_TYPES: dict[str, set[str]] = {t: set() for t in TRANSPORTS}
FIRED: dict[str, set[str]] = {t: set() for t in TRANSPORTS}
PASSED: dict[str, int] = {t: 0 for t in TRANSPORTS}
SESSION_TESTS = 6  # the tests below that run a session (each ends with assert_typed)


@dataclass
class Session:
    """A READY client of the voice bot, its event log and its transport's name."""

    client: PipecatClient
    log: EventLog
    kind: str


@pytest.fixture(autouse=True)
def _loopback_ice(loopback_ice: None) -> None:
    """Every test here may open a WebRTC peer on this loopback-only host."""


@pytest.fixture(scope="module")
def voice_bot(interop_python_path: Path) -> Iterator[BotProcess]:
    with running_voice_bot(interop_python_path, "pipecat-voice-") as bot:
        yield bot
    print(f"\nvoice bot: started in {bot.start_seconds:.2f}s, log {bot.log_path}")
    for transport, types in SEEN_TYPES.items():
        if types:
            print(f"RTVI types received over {transport} ({len(types)}): {sorted(types)}")


@pytest.fixture(params=TRANSPORTS)
async def session(request: pytest.FixtureRequest, voice_bot: BotProcess) -> AsyncIterator[Session]:
    """A READY client of the voice bot over the parametrised transport, with its event log."""
    kind: str = request.param
    if kind == "ws":
        client = PipecatClient(WebSocketTransport(), connect_timeout=T)
        log = EventLog(client)
        await within(client.start_bot_and_connect(f"{voice_bot.base_url}/start"))
    else:
        pytest.importorskip("aiortc")
        from transports.small_webrtc import SmallWebRTCTransport

        transport = SmallWebRTCTransport(f"{voice_bot.base_url}/api/offer", ice_servers=[])
        client = PipecatClient(transport, connect_timeout=T)
        log = EventLog(client)
        await within(client.connect())
    try:
        yield Session(client, log, kind)
    finally:
        SEEN_TYPES[kind].update(rtvi_types_received(client))
        await within(client.disconnect())


async def within(awaitable: Any, timeout: float = T) -> Any:
    import asyncio

    return await asyncio.wait_for(awaitable, timeout)


def joined(log: EventLog, name: str, start: int, end: int) -> str:
    """The texts of the ``name`` events between two positions, concatenated."""
    return "".join(arg.text for n, arg in log.events[start:end] if n == name)


async def assert_typed(session: Session) -> None:
    """Every §9 type received fired its typed event; none fell through to on_unhandled_message.

    Ends the session first: every callback of a session has run once ``disconnect()`` returned.
    """
    await within(session.client.disconnect())
    unhandled = [m.get("type") for m in session.log.of("on_unhandled_message")]
    assert unhandled == [], f"typed RTVI messages reached on_unhandled_message: {unhandled}"
    fired = set(session.log.names())
    by_type = {rtvi_type: event for event, rtvi_type in VOICE_EVENTS.items()}
    received = [t for t in rtvi_types_received(session.client) if t in by_type]
    missing = [t for t in received if by_type[t] not in fired]
    assert missing == [], f"RTVI types received without their typed event: {missing}"
    FIRED[session.kind].update(fired)
    PASSED[session.kind] += 1


def tone(ms: int, sample_rate: int = 16000) -> bytes:
    n = sample_rate * ms // 1000
    return b"".join(
        struct.pack("<h", int(0.3 * 32767 * math.sin(2 * math.pi * 440 * i / sample_rate)))
        for i in range(n)
    )


# ------------------------------------------------------------------------------- text turn


async def test_text_turn_arrives_typed_in_order(session: Session) -> None:
    client, log = session.client, session.log
    start = len(log.events)
    msg_id = await within(client.send_text("hello there"))
    assert isinstance(msg_id, str) and msg_id

    i_input, user_input = await log.wait_for("on_user_input", lambda u: u.msg_id == msg_id)
    assert (user_input.text, user_input.input_type, user_input.final) == (
        "hello there",
        "chat",
        True,
    )
    assert user_input.timestamp and user_input.raw["msg_id"] == msg_id
    i_done, _ = await log.wait_for("on_bot_stopped_speaking", after=i_input)

    # send-text with run_immediately interrupts the bot first.
    assert log.index("on_bot_interrupted") < i_input
    i_user_llm, user_llm = await log.wait_for("on_user_llm_text", after=start)
    assert user_llm.text == "hello there"

    i_llm_start, _ = await log.wait_for("on_bot_llm_started", after=i_input)
    i_llm_stop, _ = await log.wait_for("on_bot_llm_stopped", after=i_llm_start)
    assert joined(log, "on_bot_llm_text", i_llm_start, i_llm_stop) == TEXT_REPLY
    assert joined(log, "on_llm_raw_text", i_llm_start, i_llm_stop) == TEXT_REPLY
    assert joined(log, "on_bot_transcript", i_llm_start, i_llm_stop).strip() == TEXT_REPLY

    i_tts_start, _ = await log.wait_for("on_bot_tts_started", after=i_llm_start)
    i_speak, _ = await log.wait_for("on_bot_started_speaking", after=i_tts_start)
    await log.wait_for("on_bot_tts_stopped", after=i_tts_start)
    assert i_speak < i_done
    sentences = ["You said: hello there.", "How can I help?"]
    assert [t.text for t in log.of("on_bot_tts_text")][-2:] == sentences
    assert [t.text for t in log.of("on_tts_raw_text")][-2:] == sentences

    outputs = [o for n, o in log.events[i_tts_start : i_done + 1] if n == "on_bot_output"]
    completed = [o for o in outputs if o.spoken_status == "completed"]
    assert [o.text for o in completed] == sentences
    for output in outputs:
        assert output.output_type == "sentence" and output.will_be_spoken is True
        assert isinstance(output.segment_id, int) and output.spoken_status in ("new", "completed")
    assert completed[0].spoken_progress == {"accumulated_text": sentences[0], "remaining_text": ""}

    level = log.of("on_bot_audio_level")[-1]
    assert isinstance(level.value, float) and 0.0 <= level.value <= 1.0

    metrics = log.of("on_metrics")
    processors = {item.get("processor", "").split("#")[0] for m in metrics for item in m.ttfb}
    assert {"StandInLLM", "StandInTTS"} <= processors
    assert any(item.get("total_tokens") for m in metrics for item in m.tokens)
    assert any(item.get("value") for m in metrics for item in m.characters)
    assert any(m.processing for m in metrics) and all(isinstance(m.raw, dict) for m in metrics)
    assert i_user_llm < i_llm_start
    await assert_typed(session)


async def test_send_text_id_matches_user_input(session: Session) -> None:
    client, log = session.client, session.log
    first = await within(client.send_text("one", run_immediately=False, audio_response=False))
    second = await within(client.send_text("two", audio_response=False))
    assert first != second
    _, one = await log.wait_for("on_user_input", lambda u: u.text == "one")
    _, two = await log.wait_for("on_user_input", lambda u: u.text == "two")
    assert (one.msg_id, two.msg_id) == (first, second)
    await assert_typed(session)


# ---------------------------------------------------------------------------- function call


async def test_function_call_handler_result_comes_back(
    session: Session,
) -> None:
    client, log = session.client, session.log
    calls: list[FunctionCall] = []

    async def get_weather(call: FunctionCall) -> dict[str, Any]:
        calls.append(call)
        return {"sky": "sunny", "city": call.arguments.get("city")}

    client.register_function_call_handler("get_weather", get_weather)
    start = len(log.events)
    await within(client.send_text("what is the weather in Paris?"))

    i_started, started = await log.wait_for("on_llm_function_call_started", after=start)
    assert started.function_name == "get_weather"
    i_call, call = await log.wait_for("on_llm_function_call_in_progress", after=i_started)
    assert call.function_name == "get_weather" and call.arguments == {"city": "Paris"}
    assert isinstance(call.tool_call_id, str) and call.tool_call_id.startswith("call_")
    i_stop, stopped = await log.wait_for("on_llm_function_call_stopped", after=i_call)
    assert (stopped.tool_call_id, stopped.function_name) == (call.tool_call_id, "get_weather")
    assert stopped.cancelled is False
    assert stopped.result == {"sky": "sunny", "city": "Paris"}
    assert [c.tool_call_id for c in calls] == [call.tool_call_id]

    # Pipecat mutes the user while the call runs, then the LLM answers with the result.
    i_mute, _ = await log.wait_for("on_user_mute_started", after=start)
    i_unmute, _ = await log.wait_for("on_user_mute_stopped", after=i_mute)
    assert i_started < i_mute < i_stop < i_unmute
    i_again, _ = await log.wait_for("on_bot_llm_started", after=i_stop)
    i_end, _ = await log.wait_for("on_bot_llm_stopped", after=i_again)
    assert "sunny" in joined(log, "on_bot_llm_text", i_again, i_end)
    await assert_typed(session)


# ------------------------------------------------------------------------------ audio turn


async def test_audio_turn_transcribed_and_answered(
    session: Session,
) -> None:
    client, log = session.client, session.log
    start = len(log.events)
    # A microphone: 400 ms of speech then 500 ms of silence, in 20 ms frames (16 kHz mono).
    speech = tone(400)
    for offset in range(0, len(speech), 640):
        await within(client.send_audio(AudioFrame(speech[offset : offset + 640], 16000, 1)))
    for _ in range(25):
        await within(client.send_audio(AudioFrame(b"\x00\x00" * 320, 16000, 1)))

    i_vad, _ = await log.wait_for("on_vad_user_started_speaking", after=start)
    i_user, _ = await log.wait_for("on_user_started_speaking", after=i_vad)
    i_final, final = await log.wait_for("on_user_transcript", lambda t: t.final, after=i_user)
    assert final.text == AUDIO_TRANSCRIPT and final.timestamp
    interims = [t for n, t in log.events[i_user:i_final] if n == "on_user_transcript"]
    assert interims and all(t.final is False for t in interims)
    assert all(AUDIO_TRANSCRIPT.startswith(t.text) for t in interims)
    _, heard = await log.wait_for("on_user_input", lambda u: u.final, after=i_user)
    assert (heard.text, heard.input_type, heard.msg_id) == (AUDIO_TRANSCRIPT, "transcription", None)
    _, raw = await log.wait_for("on_stt_raw_text", lambda t: t.raw.get("final"), after=i_user)
    assert raw.text == AUDIO_TRANSCRIPT
    i_vad_stop, _ = await log.wait_for("on_vad_user_stopped_speaking", after=i_vad)
    i_stop, _ = await log.wait_for("on_user_stopped_speaking", after=i_final)
    assert i_vad < i_user < i_vad_stop < i_stop

    levels = log.of("on_user_audio_level")
    assert levels and all(isinstance(lv.value, float) for lv in levels)
    await log.wait_for("on_metrics", lambda m: bool(m.stt_usage), after=start)
    i_answer, _ = await log.wait_for("on_bot_llm_started", after=i_stop)
    i_end, _ = await log.wait_for("on_bot_llm_stopped", after=i_answer)
    assert joined(log, "on_bot_llm_text", i_answer, i_end).startswith(
        f"You said: {AUDIO_TRANSCRIPT}"
    )
    await assert_typed(session)


# ------------------------------------------------------------------------- DTMF and UI


async def test_dtmf_reaches_the_bot_as_input_dtmf_frames(
    session: Session,
) -> None:
    client, log = session.client, session.log
    await within(client.send_dtmf("12#"))
    await within(client.send_dtmf(["*"]))
    await log.wait_for("on_server_message", lambda d: d.get("keys") == "12#*")
    keys = [d["dtmf"] for d in log.of("on_server_message") if "dtmf" in d]
    assert keys == ["1", "2", "#", "*"]
    await assert_typed(session)


async def test_ui_command(session: Session) -> None:
    client, log = session.client, session.log
    await within(client.send_text("show me a toast", audio_response=False))
    _, command = await log.wait_for("on_ui_command")
    assert command == {"command": "toast", "payload": {"text": "show me a toast"}}
    await assert_typed(session)


def test_every_voice_event_is_a_client_event() -> None:
    """The events this file expects are the client's (a typo would wait forever otherwise)."""
    from lifecycle import EVENT_NAMES

    assert set(VOICE_EVENTS) <= set(EVENT_NAMES)


@pytest.mark.parametrize("kind", TRANSPORTS)
def test_the_sessions_fired_every_voice_event(kind: str) -> None:
    """Over the tests above, every §9 type this bot sends fired its typed event."""
    if PASSED[kind] < SESSION_TESTS:
        pytest.skip(f"needs all {SESSION_TESTS} {kind} session tests above to have passed")
    assert sorted(set(VOICE_EVENTS) - FIRED[kind]) == []
