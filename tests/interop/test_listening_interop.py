"""A caller that talks, against a real Pipecat 1.14 bot that listens (listening_bot.py).

The bot hears through Pipecat's Silero VAD and a real offline STT (pocketsphinx with a
grammar), answers, speaks through espeak-ng, and is interrupted by Pipecat's own handling.
Over WebSocket and SmallWebRTC: a spoken turn must be heard (VAD once), transcribed into the
expected words and answered, with no send-text; a spoken barge-in must interrupt the bot.
Pipecat's own barge-in file, ``evals/release/scenarios/scripted/interruption.yaml``, runs as
published (its text and audio scenarios) with ``pipecat-lifecycle test``, the judge a local
stand-in (tests/support/openai_stub.py) given with ``--judge-url``. The barge-in figures are
reported (run with ``-s``), not asserted.
"""

from __future__ import annotations

import asyncio
import json
import re
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from lifecycle import PipecatClient
from lifecycle.cli import main
from lifecycle.testing import Conversation, Voice, local_voice
from lifecycle.timeline import SEND_TEXT, USER_AUDIO
from tests.support.interop_bots import BotProcess, running_voice_bot
from tests.support.openai_stub import OpenAIStub
from tests.support.processes import pipecat_evals_dir
from transports.websocket import WebSocketTransport

pytest.importorskip("espeakng_loader")

T = 30.0
TRANSPORTS = ["ws", "webrtc"]
VOICE = "en-us+f2"  # pocketsphinx hears espeak-ng's female variants best
FIGURES: dict[str, list[str]] = {t: [] for t in TRANSPORTS}
INTERRUPTION = "release/scenarios/scripted/interruption.yaml"


@dataclass
class Session:
    """A READY client of the listening bot, a conversation on it, its transport's name."""

    client: PipecatClient
    conv: Conversation
    kind: str


@pytest.fixture(autouse=True)
def _loopback_ice(loopback_ice: None) -> None:
    """Every test here may open a WebRTC peer on this loopback-only host."""


@pytest.fixture(scope="module")
def listening_bot(interop_python_path: Path) -> Iterator[BotProcess]:
    with running_voice_bot(interop_python_path, "pipecat-listening-", "listening_bot.py") as bot:
        yield bot
    print(f"\nlistening bot: log {bot.log_path}")
    for kind, lines in FIGURES.items():
        for line in lines:
            print(f"{kind}: {line}")


@pytest.fixture(scope="module")
def voice(tmp_path_factory: pytest.TempPathFactory) -> Voice:
    return local_voice(VOICE, cache_dir=tmp_path_factory.mktemp("voice"))


@pytest.fixture(params=TRANSPORTS)
async def session(
    request: pytest.FixtureRequest, listening_bot: BotProcess, voice: Voice
) -> AsyncIterator[Session]:
    kind: str = request.param
    if kind == "ws":
        client = PipecatClient(WebSocketTransport(), connect_timeout=T)
        connecting = client.start_bot_and_connect(f"{listening_bot.base_url}/start")
    else:
        pytest.importorskip("aiortc")
        from transports.small_webrtc import SmallWebRTCTransport

        transport = SmallWebRTCTransport(f"{listening_bot.base_url}/api/offer", ice_servers=[])
        client = PipecatClient(transport, connect_timeout=T)
        connecting = client.connect()
    conv = Conversation(client, voice=voice)
    await within(connecting)
    try:
        # The bot greets once the client is ready; a caller waits for it to finish.
        await conv.expect("on_bot_output", text_contains="listening bot", within=T)
        await conv.expect("on_bot_stopped_speaking", within=T)
        yield Session(client, conv, kind)
    finally:
        await within(conv.close())
        await within(client.disconnect())


async def within(awaitable: Any, timeout: float = T) -> Any:
    return await asyncio.wait_for(awaitable, timeout)


def heard_seconds(bot: BotProcess) -> list[float]:
    """The seconds of audio in each segment the bot's STT decoded, from its log."""
    text = bot.log_path.read_text(encoding="utf-8", errors="replace")
    return [float(s) for s in re.findall(r"STT heard .* in ([0-9.]+) s of audio", text)]


async def test_a_spoken_turn_is_heard_transcribed_and_answered(
    session: Session, listening_bot: BotProcess
) -> None:
    conv, client = session.conv, session.client
    before = len(heard_seconds(listening_bot))
    started_at = len(conv.events)
    await within(conv.say("Hello, can you hear me?", speak=True))
    heard = await conv.expect("on_user_transcript", predicate=lambda t: t.final, within=T)
    assert heard.text == "hello can you hear me"
    await conv.expect("on_user_stopped_speaking", within=T)  # the turn ends after the words
    await conv.expect("on_bot_output", text_contains="You said: hello can you hear me", within=T)
    await conv.expect("on_bot_stopped_speaking", within=T)
    names = [e.name for e in conv.events[started_at:]]
    assert names.count("on_user_started_speaking") == 1  # the bot's VAD: once for the turn
    marks = client.trace.sessions()[-1].marks
    assert not [m for m in marks if m.name == SEND_TEXT]
    spoken = sum(m.seconds or 0.0 for m in marks if m.name == USER_AUDIO)
    assert spoken > 1.0
    segments = heard_seconds(listening_bot)[before:]
    assert len(segments) == 1
    assert segments[0] >= spoken  # the bot got all of the speech (VAD pre-roll and padding)


async def test_a_spoken_barge_in_interrupts_the_bot(session: Session) -> None:
    conv, client = session.conv, session.client
    await within(conv.say("Tell me a long, detailed story about the history of Paris.", speak=True))
    await conv.expect("on_bot_llm_started", within=T)
    await conv.expect("on_bot_started_speaking", within=T)
    await within(
        conv.say_after(
            "on_bot_llm_started",
            2000,
            "Actually, never mind that — what's the capital of Japan?",
            speak=True,
        )
    )
    await conv.expect("on_bot_interrupted", within=T)
    await conv.expect("on_bot_output", text_contains="Tokyo", within=T)
    await conv.expect("on_bot_stopped_speaking", within=T)
    barge_ins = [t for t in client.trace.turns() if t.barge_in_at is not None]
    assert len(barge_ins) == 1
    turn = barge_ins[0]
    assert turn.barge_in_to_interrupted_ms is not None
    assert turn.barge_in_to_bot_stopped_ms is not None
    FIGURES[session.kind].append(turn.summary())


def stand_in_judge(request: dict[str, Any]) -> str:
    """The judge: yes when the latest reply shows what the criterion asks for."""
    state = json.loads(request["messages"][-1]["content"])
    criterion = request["messages"][0]["content"]
    reply = state.get("latest_bot_reply") or ""
    if "capital of Japan is Tokyo" in criterion:
        ok = "Tokyo" in reply and "Paris began" not in reply
    else:
        ok = "Hello" in reply
    verdict = "yes" if ok else "no"
    return json.dumps({"verdict": verdict, "reason": f"the bot said: {reply[:80]}"})


@pytest.mark.parametrize("transport", TRANSPORTS)
def test_pipecats_interruption_file_runs_as_published(
    transport: str,
    listening_bot: BotProcess,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    evals = pipecat_evals_dir()
    monkeypatch.setenv("PIPECAT_LIFECYCLE_CACHE_DIR", str(tmp_path / "cache"))
    with OpenAIStub(stand_in_judge) as stub:
        code = main(
            [
                "test",
                str(evals / INTERRUPTION),
                "--start",
                f"{listening_bot.base_url}/start",
                "--transport",
                transport,
                "--judge-url",
                stub.base_url,
                "--judge-model",
                "stand-in-judge",
                "--record-dir",
                str(tmp_path / "calls"),
                "--json",
            ]
        )
    captured = capsys.readouterr()
    lines = [json.loads(line) for line in captured.out.splitlines() if line.startswith("{")]
    results = {r["scenario"]: r for r in lines if r.get("event") == "scenario"}
    with capsys.disabled():
        for line in lines:
            if line.get("event") == "turn" and "barge" in json.dumps(line):
                print(f"\n{transport} file: {line}")
    assert code == 0, captured.out[-3000:] + captured.err[-3000:]
    assert len(results) == 2 and all(r["passed"] for r in results.values())
    assert "kokoro" in captured.err  # the voice it cannot run, replaced with a notice
    calls = sorted((tmp_path / "calls").glob("*.wav"))
    assert len(calls) == 2
