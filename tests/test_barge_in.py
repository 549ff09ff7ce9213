"""Barge-in figures (API.md §16): a pure function of a session's marks, exact, no clock.

Each test records a session with known timestamps into a ``Timeline`` (as the client does
at emit time) and checks the figures on the interrupting turn, in text and in speech.
"""

from __future__ import annotations

import json

from lifecycle import AudioFrame, Turn, UserInput
from lifecycle.timeline import Timeline
from lifecycle.turns import turns_from_marks

ORIGIN = 100.0
BOT = AudioFrame(b"\x10\x27" * 960, 24000, 1)  # 40 ms of sound, as Pipecat's WS frames
BOT_SILENCE = AudioFrame(b"\x00\x00" * 960, 24000, 1)
MIC = AudioFrame(b"\x10\x27" * 320, 16000, 1)  # 20 ms
MIC_SILENCE = AudioFrame(b"\x00\x00" * 320, 16000, 1)
# 20 ms whose first 5 ms are silence: the sound starts 5 ms into the frame.
MIC_LATE_START = AudioFrame(b"\x00\x00" * 80 + b"\x10\x27" * 240, 16000, 1)


Events = list[tuple[float, str, object]]


def record(timeline: Events, events: Events) -> None:
    timeline += events


def long_answer(timeline: Events, start: float, frames: int) -> None:
    """The bot starts speaking at ``start`` and sends ``frames`` 40 ms frames, in real time."""
    record(timeline, [(start, "on_bot_started_speaking", None)])
    record(timeline, [(start + 0.04 * i, "on_bot_audio", BOT) for i in range(frames)])


def recorded(events: Events) -> Timeline:
    """The events recorded as the client does: in the order they happened."""
    timeline = Timeline()
    for t, name, data in sorted(events, key=lambda e: e[0]):
        timeline.record(name, data, ORIGIN + t)
    return timeline


def turns(events: Events) -> tuple[Turn, ...]:
    return turns_from_marks(recorded(events).marks(), 1, ORIGIN)


def test_a_typed_barge_in() -> None:
    timeline: Events = []
    record(
        timeline,
        [
            (1.0, "send_text", "Tell me a long story"),
            (1.1, "on_bot_llm_started", None),
            (1.2, "on_bot_llm_text", "Once"),
        ],
    )
    long_answer(timeline, 1.5, 32)  # from 1.5 s until it is cut off
    record(
        timeline,
        [
            (2.49, "send_text", "Actually, stop"),  # 1 s in: 25 frames before, 7 after
            (2.62, "on_bot_interrupted", None),
            (2.75, "on_bot_stopped_speaking", None),
            (2.8, "on_bot_llm_started", None),
            (2.9, "on_bot_llm_text", "OK"),
        ],
    )
    first, second = turns(timeline)
    assert first.barge_in_at is None and first.interrupted
    assert second.barge_in_at == 2.49
    assert second.barge_in_to_interrupted_ms == 130.0
    assert second.barge_in_to_bot_stopped_ms == 260.0
    # The frames sent at 2.5 .. 2.74 s (7 of them) arrived before the bot stopped speaking.
    assert second.bot_audio_after_barge_in_s == 0.28
    # ... and they are not the answer of the turn that barged in.
    assert second.audio_first_ms is None
    assert "barge-in: interrupted 130.0 ms, stopped 260.0 ms, 0.28 s of bot audio after" in (
        second.summary()
    )
    assert json.loads(json.dumps(second.to_dict()))["barge_in_to_interrupted_ms"] == 130.0


def test_a_spoken_barge_in_counts_from_the_first_sound() -> None:
    timeline: Events = []
    record(
        timeline,
        [(0.5 + 0.02 * i, "user_audio", MIC) for i in range(25)]
        + [(1.0 + 0.02 * i, "user_audio", MIC_SILENCE) for i in range(25)]
        + [
            (1.3, "on_user_stopped_speaking", None),
            (1.4, "on_bot_llm_started", None),
            (1.45, "on_bot_llm_text", "Paris was"),
        ],
    )
    long_answer(timeline, 1.6, 100)  # 4 s of speech
    # The user talks over it from 3.0 s (first sound 5 ms into the first frame).
    record(
        timeline,
        [(3.0, "user_audio", MIC_LATE_START)]
        + [(3.02 + 0.02 * i, "user_audio", MIC) for i in range(49)]
        + [
            (3.2, "on_user_started_speaking", None),
            (3.205, "on_bot_interrupted", None),
            (3.305, "on_bot_stopped_speaking", None),
            (4.3, "on_user_stopped_speaking", None),
            (4.4, "on_bot_llm_started", None),
            (4.5, "on_bot_llm_text", "Tokyo"),
        ],
    )
    first, second = turns(timeline)
    assert first.barge_in_at is None
    assert second.barge_in_at == 3.005
    assert second.barge_in_to_interrupted_ms == 200.0
    assert second.barge_in_to_bot_stopped_ms == 300.0
    # Bot frames at 3.04 .. 3.28 s: 7 frames of 40 ms.
    assert second.bot_audio_after_barge_in_s == 0.28
    assert second.source == "speech"


def test_input_while_the_bot_is_quiet_is_no_barge_in() -> None:
    timeline: Events = []
    record(timeline, [(1.0, "send_text", "hi"), (1.1, "on_bot_llm_text", "Hello")])
    long_answer(timeline, 1.2, 10)
    record(
        timeline,
        [
            (1.7, "on_bot_stopped_speaking", None),
            (2.0, "send_text", "again"),
            (2.1, "on_bot_llm_text", "Hello"),
        ],
    )
    for turn in turns(timeline):
        assert turn.barge_in_at is None
        assert turn.barge_in_to_interrupted_ms is None
        assert turn.bot_audio_after_barge_in_s is None
        assert "barge-in" not in turn.summary()


def test_a_bot_that_never_reacts_has_only_the_moment_and_its_audio() -> None:
    timeline: Events = []
    record(timeline, [(1.0, "send_text", "hi"), (1.1, "on_bot_llm_text", "Hello")])
    long_answer(timeline, 1.2, 25)  # until 2.16 s, never a stop
    record(
        timeline,
        [(1.99, "send_text", "stop"), (2.05, "on_user_input", UserInput(text="stop"))],
    )
    record(timeline, [(2.2, "on_bot_audio", BOT_SILENCE)])  # silence is no audio
    second = turns(timeline)[1]
    assert second.barge_in_at == 1.99
    assert second.barge_in_to_interrupted_ms is None
    assert second.barge_in_to_bot_stopped_ms is None
    assert second.bot_audio_after_barge_in_s == 0.2  # frames at 2.0 .. 2.16 s
    assert "interrupted - , stopped -" not in second.summary()
    assert "barge-in: interrupted -, stopped -, 0.20 s of bot audio after" in second.summary()


def test_audio_runs_hold_their_seconds() -> None:
    timeline: Events = []
    record(timeline, [(0.0 + 0.04 * i, "on_bot_audio", BOT) for i in range(5)])
    record(timeline, [(0.5, "on_bot_audio", BOT)])  # after a gap: a run anew
    marks = recorded(timeline).marks()
    runs = [m for m in marks if m.name == "on_bot_audio"]
    assert [m.seconds for m in runs] == [0.2, 0.04]
    text = [m for m in marks if m.name != "on_bot_audio"]
    assert all(m.seconds is None for m in text)


def test_the_html_timeline_shows_the_barge_in() -> None:
    from lifecycle.report import render_html
    from lifecycle.trace import SessionRecord

    events: Events = [(1.0, "send_text", "hi"), (1.1, "on_bot_llm_text", "Hello")]
    long_answer(events, 1.2, 10)
    events += [(1.3, "send_text", "stop"), (1.4, "on_bot_interrupted", None)]
    events += [(1.45, "on_bot_stopped_speaking", None)]
    marks = recorded(events).marks()
    record = SessionRecord(1, ORIGIN, 0.0, (), marks=marks)
    page = render_html([record], turns_from_marks(marks, 1, ORIGIN))
    assert page.count('class="barge-in"') == 3  # the bracket, and a cell per turn
    assert "interrupted 100.0 · stopped 150.0 · audio after 0.16 s" in page
