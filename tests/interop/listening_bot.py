"""A real Pipecat (1.14) bot that listens to speech, for the caller-that-talks interop tests.

Run with the interop venv's python (like ``voice_bot.py``, whose routes and server it uses)::

    .venv-interop/bin/python tests/interop/listening_bot.py --port 0

Once listening it prints exactly one line ``BOT-SERVER-READY http://127.0.0.1:N`` to stdout.

The pipeline hears audio the way a production voice bot does, with Pipecat's own classes::

    [RTVIProcessor] -> transport.input() -> PocketsphinxSTT -> user aggregator
      -> ScriptedLLM -> EspeakTTS -> transport.output() -> assistant aggregator

* Pipecat's Silero VAD (``SileroVADAnalyzer``, its ONNX model ships inside pipecat-ai; 0.5 s
  of silence ends speech, so a pause at a comma does not) in the user aggregator; a user
  turn starts at VAD speech start (which interrupts the bot: Pipecat's own interruption
  handling) and stops 0.4 s after the last transcript once the VAD heard silence
  (``SpeechTimeoutUserTurnStopStrategy``).
* ``PocketsphinxSTT``: a ``SegmentedSTTService`` (Pipecat hands it each VAD segment) over
  the ``pocketsphinx`` wheel's bundled en-US model, decoding with a JSGF grammar of
  :data:`PHRASES` (decoding is exact with a grammar, poor without one).
* ``ScriptedLLM`` answers deterministically: a greeting when the client is ready, a long
  story for "story", "The capital of Japan is Tokyo." for the capital of Japan, else
  "You said: <text>.".
* ``EspeakTTS``: a ``TTSService`` over espeak-ng (this project's
  ``lifecycle/testing/espeak.py``, loaded by path: the interop venv has the
  ``espeakng-loader`` wheel but not this project's dependencies).
"""

from __future__ import annotations

import asyncio
import importlib.util
import re
import threading
import time
from collections.abc import AsyncGenerator
from pathlib import Path
from typing import Any

import numpy as np
import soxr
import voice_bot
from loguru import logger
from pipecat.audio.vad.silero import SileroVADAnalyzer
from pipecat.audio.vad.vad_analyzer import VADParams
from pipecat.frames.frames import (
    Frame,
    LLMRunFrame,
    TranscriptionFrame,
    TTSAudioRawFrame,
)
from pipecat.pipeline.pipeline import Pipeline
from pipecat.pipeline.worker import PipelineParams, PipelineWorker
from pipecat.processors.aggregators.llm_context import LLMContext
from pipecat.processors.aggregators.llm_response_universal import (
    LLMContextAggregatorPair,
    LLMUserAggregatorParams,
)
from pipecat.services.settings import TTSSettings
from pipecat.services.stt_service import SegmentedSTTService
from pipecat.services.tts_service import TTSService
from pipecat.transports.base_transport import BaseTransport
from pipecat.turns.user_start import VADUserTurnStartStrategy
from pipecat.turns.user_stop import SpeechTimeoutUserTurnStopStrategy
from pipecat.turns.user_turn_strategies import UserTurnStrategies
from pipecat.utils.time import time_now_iso8601
from pocketsphinx import Decoder

REPO = Path(__file__).resolve().parents[2]
PHRASES = (
    # Pipecat's evals/release/scenarios/scripted/interruption.yaml
    "Tell me a long, detailed story about the history of Paris.",
    "Actually, never mind that — what's the capital of Japan?",
    # tests/interop/test_listening_interop.py
    "Hello, can you hear me?",
    "What is the weather like today?",
    "Please book a table for two at seven.",
    "I would like to cancel my order.",
    "Can you repeat that please?",
    "Thank you, goodbye.",
)
"""What the bot can hear: its grammar."""
GREETING = "Hello! I am the listening bot. How can I help you today?"
STORY = (
    "Paris began as a small fishing village on an island in the river Seine. "
    "The Romans called it Lutetia, and built baths, a forum and an arena there. "
    "In the middle ages it grew into the largest city in Europe. "
    "Its cathedral of Notre Dame took nearly two hundred years to build. "
    "The revolution of seventeen eighty nine began with the fall of the Bastille. "
    "Napoleon crowned himself emperor, and rebuilt the city in stone. "
    "Baron Haussmann later cut the wide boulevards we still walk today. "
    "The Eiffel tower was built for the world fair of eighteen eighty nine. "
    "Artists and writers from every country came to live in its cafes. "
    "And today Paris welcomes millions of visitors every single year."
)
TOKYO = "The capital of Japan is Tokyo."
VOICE = "en-us+f2"
"""The bot's own voice (pocketsphinx hears espeak-ng's female variants best)."""
STT_RATE = 16000
VAD_STOP_S = 0.5
TURN_STOP_S = 0.4


def normalized(text: str) -> str:
    """Lower case words, as the grammar has them: ``what's the capital of japan``."""
    return " ".join(re.sub(r"[^a-z' ]", " ", text.lower()).split())


def _espeak() -> Any:
    spec = importlib.util.spec_from_file_location(
        "lifecycle_espeak", REPO / "lifecycle" / "testing" / "espeak.py"
    )
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.Engine.get()


class _Recognizer:
    """One pocketsphinx decoder with the grammar of PHRASES, shared by the sessions."""

    _instance: _Recognizer | None = None

    def __init__(self) -> None:
        alternatives = " | ".join(f"( {normalized(p)} )" for p in PHRASES)
        grammar = f"#JSGF V1.0;\ngrammar phrases;\npublic <phrase> = {alternatives};\n"
        self._decoder = Decoder(jsgf=None, lm=None, loglevel="FATAL")
        self._decoder.add_jsgf_string("phrases", grammar)
        self._decoder.activate_search("phrases")
        self._lock = threading.Lock()

    @classmethod
    def get(cls) -> _Recognizer:
        if cls._instance is None:
            cls._instance = cls()
        return cls._instance

    def decode(self, pcm: bytes) -> str:
        """16 kHz mono s16le speech -> the words heard ("" for none)."""
        with self._lock:
            self._decoder.start_utt()
            self._decoder.process_raw(pcm, full_utt=True)
            self._decoder.end_utt()
            hyp = self._decoder.hyp()
            return hyp.hypstr if hyp is not None else ""


class PocketsphinxSTT(SegmentedSTTService):
    """Each VAD segment decoded by pocketsphinx with the grammar of PHRASES."""

    @property
    def wants_wav_segments(self) -> bool:
        return False

    def can_generate_metrics(self) -> bool:
        return True

    async def run_stt(self, audio: bytes) -> AsyncGenerator[Frame | None, None]:
        await self.start_processing_metrics()
        started = time.perf_counter()
        text = await asyncio.to_thread(_Recognizer.get().decode, audio)
        logger.info(
            f"STT heard {text!r} in {len(audio) / 2 / STT_RATE:.2f} s of audio "
            f"({time.perf_counter() - started:.3f} s to decode)"
        )
        await self.stop_processing_metrics()
        if text:
            yield TranscriptionFrame(text, self._user_id, time_now_iso8601())


class ScriptedLLM(voice_bot.StandInLLM):
    """Deterministic answers: a greeting, a long story, Tokyo, or an echo."""

    async def _complete(self, context: LLMContext) -> None:
        await self.start_ttfb_metrics()
        messages = context.get_messages()
        role, text = voice_bot._message_text(messages[-1]) if messages else ("", "")
        words = self.answer(role, text).split(" ")
        for i, word in enumerate(words):
            if i == 0:
                await self.stop_ttfb_metrics()
            await self._push_llm_text(word if i == len(words) - 1 else word + " ")

    @staticmethod
    def answer(role: str, text: str) -> str:
        heard = normalized(text)
        if role != "user":
            return GREETING
        if "story" in heard:
            return STORY
        if "capital" in heard and "japan" in heard:
            return TOKYO
        return f"You said: {text.strip()}."


class EspeakTTS(TTSService):
    """espeak-ng speaking each sentence, resampled to the output rate."""

    def __init__(self) -> None:
        super().__init__(
            push_start_frame=True,
            push_stop_frames=True,
            stop_frame_timeout_s=0.5,
            sample_rate=voice_bot.TTS_RATE,
            settings=TTSSettings(model=None, voice=VOICE, language=None),
        )
        self._engine = _espeak()

    def can_generate_metrics(self) -> bool:
        return True

    async def run_tts(self, text: str, context_id: str) -> AsyncGenerator[Frame | None, None]:
        await self.start_tts_usage_metrics(text)
        pcm = await asyncio.to_thread(self._engine.synthesize, text, VOICE, None, None)
        await self.stop_ttfb_metrics()
        samples = np.frombuffer(pcm, dtype="<i2").astype(np.float32) / 32768
        resampled = soxr.resample(samples, self._engine.sample_rate, self.sample_rate)
        out = (np.clip(resampled, -1, 32767 / 32768) * 32768).astype("<i2").tobytes()
        yield TTSAudioRawFrame(out, self.sample_rate, 1, context_id=context_id)


def build_worker(transport: BaseTransport) -> PipelineWorker:
    """The listening bot's pipeline, in a worker with RTVI, metrics and the observer's options."""
    context = LLMContext(messages=[{"role": "system", "content": "You are the listening bot."}])
    aggregators = LLMContextAggregatorPair(
        context,
        user_params=LLMUserAggregatorParams(
            # A pause at a comma is not the end of speech (Pipecat's default stop is 0.2 s).
            vad_analyzer=SileroVADAnalyzer(params=VADParams(stop_secs=VAD_STOP_S)),
            user_turn_strategies=UserTurnStrategies(
                start=[VADUserTurnStartStrategy()],
                stop=[SpeechTimeoutUserTurnStopStrategy(user_speech_timeout=TURN_STOP_S)],
            ),
        ),
    )
    pipeline = Pipeline(
        [
            transport.input(),
            PocketsphinxSTT(sample_rate=STT_RATE),
            aggregators.user(),
            ScriptedLLM(),
            EspeakTTS(),
            transport.output(),
            aggregators.assistant(),
        ]
    )
    worker = PipelineWorker(
        pipeline,
        params=PipelineParams(
            audio_in_sample_rate=STT_RATE,
            audio_out_sample_rate=voice_bot.TTS_RATE,
            enable_metrics=True,
            enable_usage_metrics=True,
        ),
        rtvi_observer_params=voice_bot.observer_params(),
        idle_timeout_secs=None,
    )

    @worker.rtvi.event_handler("on_client_ready")  # type: ignore[untyped-decorator]
    async def greet(_rtvi: Any) -> None:
        await worker.queue_frames([LLMRunFrame()])

    return worker


if __name__ == "__main__":
    # Load the models before the first session, not on its event loop during the handshake.
    _Recognizer.get()
    _espeak().synthesize("ready", VOICE, None, None)
    voice_bot.main(__doc__.splitlines()[0], build_worker)
