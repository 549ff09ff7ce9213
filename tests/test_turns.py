"""Turn latencies: marks on a session's timeline -> typed turns; real sessions with testing bots."""

from __future__ import annotations

import asyncio
import json

import pytest

from lifecycle import BotText, FunctionCall, Metrics, RTVIError, Turn, UserInput
from lifecycle.dispatch import ClientEvent
from lifecycle.media import AudioFrame
from lifecycle.timeline import MARK_TEXT_LIMIT, MARK_VALUES_LIMIT, Timeline
from lifecycle.trace import SessionTrace
from lifecycle.turns import turns_from_events, turns_from_marks
from tests.support.talk import talk
from transports.loopback import LoopbackBot, LoopbackTransport
from transports.testing import Dialogue, TestingBotServer

ORIGIN = 100.0
SOUND = AudioFrame(b"\x10\x27" * 480, 24000, 1)
SILENCE = AudioFrame(b"\x00\x00" * 480, 24000, 1)


def metrics(**figures: float) -> Metrics:
    return Metrics.from_data(
        {"ttfb": [{"processor": name, "value": value} for name, value in figures.items()]}
    )


def text_turn(timeline: Timeline, t: float, reply: str = "Hello") -> None:
    """What a voice bot sends for one typed turn, ``t`` seconds after ORIGIN."""
    at = ORIGIN + t
    for name, data, dt in [
        ("send_text", "hi", 0.0),
        ("on_user_started_speaking", None, 0.001),
        ("on_user_input", UserInput(text="hi", input_type="chat"), 0.002),
        ("on_user_stopped_speaking", None, 0.003),
        ("on_bot_llm_started", None, 0.010),
        ("on_bot_llm_text", BotText(reply[:3]), 0.020),
        ("on_bot_llm_text", BotText(reply[3:]), 0.030),
        ("on_bot_llm_stopped", None, 0.031),
        ("on_bot_tts_text", BotText(reply), 0.050),
        ("on_bot_started_speaking", None, 0.055),
        ("on_bot_audio", SOUND, 0.060),
        ("on_bot_audio", SOUND, 0.080),
        ("on_bot_stopped_speaking", None, 0.500),
        ("on_metrics", metrics(LLM=0.2, TTS=0.1), 0.600),
    ]:
        timeline.record(name, data, at + dt)


def only_turn(timeline: Timeline) -> Turn:
    (turn,) = turns_from_marks(timeline.marks(), 1, ORIGIN)
    return turn


def test_a_typed_turn_is_timed_from_send_text() -> None:
    timeline = Timeline()
    text_turn(timeline, 1.0)
    turn = only_turn(timeline)
    assert (turn.session_id, turn.index, turn.source) == (1, 1, "text")
    assert turn.started_at == pytest.approx(1.0)
    assert turn.input_ended_at == pytest.approx(1.0)
    assert turn.user_stopped_at == pytest.approx(1.003)
    assert turn.llm_first_ms == pytest.approx(20.0)
    assert turn.tts_first_ms == pytest.approx(50.0)
    assert turn.audio_first_ms == pytest.approx(60.0)
    assert turn.bot_speaking_ms == pytest.approx(55.0)
    assert turn.answered_ms == turn.bot_speaking_ms
    assert turn.bot_stopped_at == pytest.approx(1.5)
    assert dict(turn.ttfb) == pytest.approx({"LLM": 200.0, "TTS": 100.0})
    assert (turn.user_text, turn.bot_text, turn.interrupted) == ("hi", "Hello", False)
    assert turn.summary() == (
        "turn 1 (text): llm 20.0 ms · tts 50.0 ms · audio 60.0 ms · speaking 55.0 ms"
        " · bot ttfb LLM 200.0 ms, TTS 100.0 ms"
    )


def test_a_spoken_turn_is_timed_from_the_bots_user_stopped_speaking() -> None:
    timeline = Timeline()
    for i in range(25):  # half a second of the user's audio, then silence
        timeline.record("user_audio", SOUND, ORIGIN + 2.0 + i * 0.02)
    for i in range(10):
        timeline.record("user_audio", SILENCE, ORIGIN + 2.5 + i * 0.02)
    timeline.record("on_bot_audio", SILENCE, ORIGIN + 2.6)  # WebRTC's silence: no answer
    timeline.record("on_user_stopped_speaking", None, ORIGIN + 2.8)
    timeline.record("on_bot_llm_text", BotText("Yes"), ORIGIN + 3.0)
    timeline.record("on_bot_audio", SOUND, ORIGIN + 3.2)
    turn = only_turn(timeline)
    assert turn.source == "speech"
    assert turn.started_at == pytest.approx(2.8)
    assert turn.input_ended_at == pytest.approx(2.48)
    assert turn.llm_first_ms == pytest.approx(200.0)
    assert turn.audio_first_ms == pytest.approx(400.0)
    assert turn.tts_first_ms is None and turn.bot_speaking_ms is None
    (audio,) = [m for m in timeline.marks() if m.name == "user_audio"]
    assert audio.count == 25  # silence is no mark


def test_played_audio_without_vad_events_is_timed_from_its_end() -> None:
    timeline = Timeline()
    for i in range(5):
        timeline.record("user_audio", SOUND, ORIGIN + 1.0 + i * 0.02)
    timeline.record("on_bot_llm_text", BotText("ok"), ORIGIN + 1.58)
    turn = only_turn(timeline)
    assert (turn.source, turn.started_at, turn.llm_first_ms) == ("audio", 1.08, 500.0)


def test_consecutive_turns_and_an_interruption() -> None:
    timeline = Timeline()
    text_turn(timeline, 1.0, "first reply")
    timeline.record("send_text", "again", ORIGIN + 2.0)
    timeline.record("on_bot_llm_text", BotText("second"), ORIGIN + 2.01)
    timeline.record("on_bot_started_speaking", None, ORIGIN + 2.02)
    timeline.record("send_text", "stop", ORIGIN + 2.1)  # over the second reply
    timeline.record("on_bot_interrupted", None, ORIGIN + 2.101)
    timeline.record("on_llm_function_call_in_progress", FunctionCall("c1", "lookup"), 2.2 + ORIGIN)
    timeline.record("on_bot_llm_text", BotText("third"), ORIGIN + 2.3)
    first, second, third = turns_from_marks(timeline.marks(), 7, ORIGIN)
    assert [t.index for t in (first, second, third)] == [1, 2, 3]
    assert first.bot_text == "first reply" and not first.interrupted
    assert second.interrupted and second.bot_text == "second"
    assert second.llm_first_ms == pytest.approx(10.0)
    assert third.function_calls == ("lookup",)
    assert third.llm_first_ms == pytest.approx(200.0)
    assert third.session_id == 7 and not third.interrupted


def test_a_turn_the_bot_never_answered_has_no_figures() -> None:
    timeline = Timeline()
    timeline.record("send_text", "anyone?", ORIGIN + 1.0)
    turn = only_turn(timeline)
    assert turn.answered_ms is None and turn.llm_first_ms is None and not turn.ttfb
    assert "llm - · tts -" in turn.summary()


def test_bot_output_before_any_input_is_no_turn() -> None:
    timeline = Timeline()
    timeline.record("on_bot_llm_text", BotText("Welcome!"), ORIGIN + 0.5)  # a greeting
    timeline.record("on_bot_started_speaking", None, ORIGIN + 0.6)
    assert turns_from_marks(timeline.marks(), 1, ORIGIN) == ()


def test_the_timeline_is_bounded_whatever_the_bot_sends() -> None:
    timeline = Timeline(max_marks=50)
    for i in range(10_000):  # one endless reply: one mark, bounded text
        timeline.record("on_bot_llm_text", BotText("token "), ORIGIN + i * 0.001)
    (reply,) = timeline.marks()
    assert reply.count == 10_000 and len(reply.text or "") <= MARK_TEXT_LIMIT + 20
    for i in range(5_000):  # a flood of distinct events: the oldest marks fall off
        timeline.record("on_error", RTVIError("x" * 100_000), ORIGIN + 20 + i * 0.001)
    assert len(timeline) == 50 and timeline.dropped == 4_951
    assert all(len(m.text or "") <= MARK_TEXT_LIMIT + 20 for m in timeline.marks())
    many = {f"Processor{i}#0": 0.1 for i in range(200)}
    timeline.record("on_metrics", metrics(**many), ORIGIN + 30)
    assert len(timeline.marks()[-1].values) == MARK_VALUES_LIMIT
    name = "f" * 10_000
    timeline.record("on_llm_function_call_in_progress", FunctionCall("c", name), ORIGIN + 31)
    assert len(timeline.marks()[-1].text or "") <= MARK_TEXT_LIMIT + 20


def test_events_outside_the_timeline_and_interim_transcripts_are_ignored() -> None:
    from lifecycle import UserTranscript

    timeline = Timeline()
    timeline.record("on_bot_ready", object(), ORIGIN)
    timeline.record("on_user_audio_level", object(), ORIGIN)
    timeline.record("on_user_transcript", UserTranscript("hel", final=False), ORIGIN)
    assert len(timeline) == 0
    timeline.record("on_user_transcript", UserTranscript("hello", final=True), ORIGIN)
    assert [m.text for m in timeline.marks()] == ["hello"]


def test_turns_from_a_recorded_event_stream() -> None:
    events = [
        ClientEvent("on_user_input", UserInput(text="hi", input_type="chat"), 3, ORIGIN),
        ClientEvent("on_bot_llm_text", BotText("hey"), 3, ORIGIN + 0.01),
        ClientEvent("on_user_stopped_speaking", None, 4, ORIGIN + 5),
        ClientEvent("on_bot_started_speaking", None, 4, ORIGIN + 5.3),
    ]
    first, second = turns_from_events(events)
    assert (first.session_id, first.source, first.llm_first_ms) == (3, "input", 10.0)
    assert (second.session_id, second.source, second.started_at) == (4, "speech", 0.0)
    assert second.bot_speaking_ms == pytest.approx(300.0)


def test_a_trace_records_only_sessions_it_traces() -> None:
    trace = SessionTrace()
    trace.record_event(1, "on_bot_llm_text", BotText("lost"))  # no session 1 yet
    assert trace.sessions() == [] and trace.turns() == ()


# ----------------------------------------------------------------- real sessions


def check_scripted_turn(turn: Turn) -> None:
    """What one typed turn against a testing bot gives: every figure, in order."""
    assert turn.source == "text"
    assert turn.llm_first_ms is not None and turn.tts_first_ms is not None
    assert turn.audio_first_ms is not None and turn.bot_speaking_ms is not None
    assert 0 <= turn.llm_first_ms <= turn.tts_first_ms <= turn.audio_first_ms
    assert dict(turn.ttfb) == {"TestingLLMService#0": 1.0}  # the bot's own metrics
    assert turn.user_text == "hello bot" and turn.bot_text == "You said: hello bot"


async def test_turns_of_a_loopback_session() -> None:
    client = await talk(
        LoopbackTransport(LoopbackBot()),
        ["hello bot", "what is the weather"],
        functions={"get_weather": {"temp": 21}},
    )
    first, second = client.trace.turns()
    check_scripted_turn(first)
    assert second.function_calls == ("get_weather",) and second.index == 2
    assert client.trace.turns(session_id=client.session_id) == (first, second)
    assert client.trace.turns(session_id=99) == ()


async def test_turns_of_a_websocket_session() -> None:
    from transports.websocket import WebSocketTransport

    async with TestingBotServer(dialogue=Dialogue(token_delay=0.002)) as server:
        client = await talk(WebSocketTransport(), ["hello bot"], start_url=server.start_url)
    (turn,) = client.trace.turns()
    check_scripted_turn(turn)
    print("websocket testing bot:", turn.summary())
    assert json.loads(json.dumps(turn.to_dict()))["ttfb"] == {"TestingLLMService#0": 1.0}


async def test_turns_survive_a_slow_callback() -> None:
    # The trace is fed at emit time: a callback that blocks the queue changes nothing.
    transport = LoopbackTransport(LoopbackBot())
    from lifecycle import PipecatClient

    client = PipecatClient(transport, max_pending_events=2, drain_timeout=0.1)
    release = asyncio.Event()

    async def stuck(_data: object) -> None:
        await release.wait()

    client.add_event_handler("on_bot_llm_text", stuck)
    async with asyncio.timeout(10):
        await client.connect()
        async with client.events("on_metrics") as stream:
            await client.send_text("hello bot")
            await anext(stream)
        release.set()
        await client.disconnect()
    (turn,) = client.trace.turns()
    check_scripted_turn(turn)
