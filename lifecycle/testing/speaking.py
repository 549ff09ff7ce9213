"""The speaking caller in scenario files: audio-modality ``user:`` blocks, recordings.

A scenario whose ``user:`` block says ``modality: audio`` speaks every text turn:
:func:`speak_turn` synthesizes it with the block's ``speech:`` voice and sends it as
the microphone, paced in real time, then a second of silence. A ``service`` this project
runs (``espeak``, ``local``) is used as given; any other (``kokoro``, ``cartesia``...) is
replaced by the local voice, with one notice line: a Kokoro voice name keeps its accent and
gender (``af_heart`` -> ``en-us+f2``, ``bm_george`` -> ``en+m3``). ``noise:`` in the block, or
in a turn for that turn (:mod:`lifecycle.testing.noise`), is mixed into the speech.

:func:`with_modality` is ``test --modality``; :class:`ScenarioRecording` is one
``--record-dir`` file (caller left, bot right).
"""

from __future__ import annotations

import dataclasses
import re
import time
from collections.abc import Awaitable, Callable, Mapping, Sequence
from os import PathLike
from typing import TYPE_CHECKING, Any, Final

from lifecycle.media import AudioFrame
from lifecycle.testing import audio
from lifecycle.testing.recording import Recording, TwoSidedWav

if TYPE_CHECKING:
    from lifecycle.client import PipecatClient
    from lifecycle.testing.scenario_model import ScriptedScenario, ScriptedTurn, UserBlock
    from lifecycle.testing.voice import Voice

__all__ = [
    "LOCAL_SERVICES",
    "ScenarioRecording",
    "local_voice_for",
    "speak_turn",
    "voice_for",
    "with_modality",
]

LOCAL_SERVICES: Final = frozenset({"espeak", "espeak-ng", "local"})
"""``speech: service`` values this project runs itself."""
TRAILING_SILENCE: Final = 1.0
DEFAULT_WPM: Final = 175
_KOKORO: Final = re.compile(r"^([ab])([fm])_")
_VOICES: dict[tuple[str, int | None], Voice] = {}  # one per voice and rate, for the process

Send = Callable[[AudioFrame], Awaitable[None]]


def local_voice_for(speech: Mapping[str, Any] | None) -> tuple[str, int | None, str | None]:
    """``(espeak voice name, words per minute, notice)`` for a ``speech:`` block.

    The notice is None when the block's own service runs here (or there is no block).
    """
    speech = speech or {}
    service = str(speech.get("service") or "local").lower()
    voice = str(speech.get("voice") or "")
    speed = speech.get("speed")
    rate = None
    if isinstance(speed, int | float) and not isinstance(speed, bool) and speed > 0:
        rate = max(80, min(450, round(DEFAULT_WPM * float(speed))))
    if service in LOCAL_SERVICES:
        return voice or "en-us", rate, None
    match = _KOKORO.match(voice.lower())
    if match:
        accent, gender = match.groups()
        name = ("en-us" if accent == "a" else "en") + ("+f2" if gender == "f" else "+m3")
    else:
        name = "en-us+f2"
    shown = f"{service} ({voice})" if voice else service
    notice = (
        f"user.speech: {shown} cannot run here; the local voice (espeak-ng {name}) speaks instead"
    )
    return name, rate, notice


def voice_for(user: UserBlock, noise: Any = None) -> tuple[Voice, str | None]:
    """The voice of a ``user:`` block (made once per name and rate) and its notice; with
    ``noise`` (a turn's), else the block's own ``noise``, mixed in."""
    from lifecycle.testing.voice import local_voice

    name, rate, notice = local_voice_for(user.speech)
    voice = _VOICES.get((name, rate))
    if voice is None:
        voice = _VOICES[(name, rate)] = local_voice(name, rate=rate)
    noise = noise if noise is not None else user.noise
    if noise is not None:
        from lifecycle.testing.noise import with_noise

        voice = with_noise(voice, noise)
    return voice, notice


async def speak_turn(
    client: PipecatClient,
    turn: ScriptedTurn,
    user: UserBlock,
    *,
    send: Send | None = None,
    notices: list[str] | None = None,
) -> None:
    """Say ``turn.user`` (with ``turn.parts``' pauses) as audio to the bot, paced in real
    time, then a second of silence; return once it is sent. ``send`` replaces
    ``client.send_audio`` (a recording's tee); the voice's notice goes to ``notices``."""
    import asyncio

    from lifecycle.testing.conversation import speech_frames

    voice, notice = await asyncio.to_thread(voice_for, user, turn.noise)
    if notice is not None and notices is not None and notice not in notices:
        notices.append(notice)
    parts: Sequence[str | int] = turn.parts or [turn.user or ""]
    rate, channels = audio.input_format(client.transport)
    frames = await asyncio.to_thread(speech_frames, voice, parts, rate, channels)
    frames += audio.silence(TRAILING_SILENCE, rate, channels)  # the microphone stays open
    await audio.stream_to(send or client.send_audio, frames)


def with_modality(scenario: ScriptedScenario, modality: str) -> ScriptedScenario:
    """``scenario`` with its ``user:`` block's modality set (``test --modality``)."""
    user = dataclasses.replace(scenario.user, modality=modality)
    return dataclasses.replace(scenario, user=user)


class ScenarioRecording:
    """One two-sided WAV of a scenario run: open it after the connect, close it at the end.

    :meth:`send` is the client's ``send_audio`` that also records the caller's side.
    """

    def __init__(self, client: PipecatClient, path: str | PathLike[str]) -> None:
        """Start recording ``client``'s session (call from a running loop, once READY)."""
        origin = time.monotonic()
        for record in client.trace.sessions():
            if record.session_id == client.session_id:
                origin = record.started_at
        self.path = path
        self._client = client
        self._wav = TwoSidedWav(path, origin)
        stream = client.events("on_bot_audio", "on_disconnected")
        self._recording = Recording(self._wav, stream, "on_disconnected")

    async def send(self, frame: AudioFrame) -> None:
        """Send one frame as the microphone and record it on the left channel."""
        at = time.monotonic()
        await self._client.send_audio(frame)
        self._wav.caller(frame, at)

    async def close(self) -> None:
        """Finish the file (with the bot audio already received)."""
        await self._recording.finish()
