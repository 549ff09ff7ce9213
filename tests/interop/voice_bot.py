"""A real Pipecat (1.14) voice bot with stand-in STT, LLM and TTS services, for interop tests.

Run with the interop venv's python (pipecat-ai is never a dependency of the project itself)::

    .venv-interop/bin/python tests/interop/voice_bot.py --port 0

Once listening it prints exactly one line ``BOT-SERVER-READY http://127.0.0.1:N`` to stdout.

The pipeline is a voice bot's, built from Pipecat's own classes::

    [RTVIProcessor] -> transport.input() -> DTMFReporter -> StandInSTT -> user aggregator
      -> StandInLLM -> StandInTTS -> transport.output() -> assistant aggregator

with Pipecat's ``RTVIObserver`` (added by ``PipelineWorker``) turning the frames into RTVI
messages: ``function_call_report_level`` FULL, metrics and usage metrics on, audio levels on,
raw text (stt/llm/tts-raw-text) and VAD speaking messages on. The stand-ins are subclasses of
Pipecat's ``STTService``, ``LLMService`` and ``TTSService``, so metrics, sentence aggregation,
function calls and TTS contexts run through Pipecat's own code:

* ``StandInSTT`` is its own energy VAD: audio louder than a threshold opens an utterance
  (VAD started, a proposed user turn start, interim transcriptions every 200 ms of speech);
  300 ms of silence after it closes the utterance (VAD stopped, the final
  ``TranscriptionFrame`` "hello from the microphone", STT usage, a proposed turn stop).
  The user aggregator resolves the proposals (``ExternalUserTurnStrategies``).
* ``StandInLLM`` answers the last user message word by word. A message with "weather" in it
  makes it call ``get_weather`` ({"city": "Paris"}) through ``LLMService.run_function_calls``;
  the registered handler leaves the call to the client (the client's
  ``llm-function-call-result`` reaches the assistant aggregator through the RTVIProcessor),
  and the inference that follows answers with the result. A message with "show" in it also
  pushes a UI command (``ui-command`` {command: "toast"}). Users are muted while a function
  call runs (``FunctionCallUserMuteStrategy``: user-mute-started/stopped).
* ``StandInTTS`` speaks each sentence as 120 ms of a 440 Hz tone at 24 kHz.
* ``DTMFReporter`` answers every ``InputDTMFFrame`` with a server-message
  ``{"dtmf": key, "keys": all keys so far}``.

Routes: ``POST /start`` -> ``{"wsUrl", "sessionId"}``; ``WS /ws`` (FastAPIWebsocketTransport +
ProtobufFrameSerializer); ``POST|PATCH /api/offer`` and ``/sessions/{sessionId}/api/offer``
(SmallWebRTC offer/answer, ICE trickle).
"""

from __future__ import annotations

import asyncio
import functools
import uuid
from collections.abc import AsyncGenerator, Callable
from typing import Any

# Loopback-only ICE: importing bot_serving patches aioice and aiortc's default STUN (see there).
import bot_server
import bot_serving
import numpy as np
from bot_serving import HOST, app_with_webrtc, offer_request, patch_request, run_worker
from fastapi import FastAPI, Request, WebSocket
from loguru import logger
from pipecat.adapters.llm.schemas.function_schema import FunctionSchema
from pipecat.adapters.llm.schemas.tools_schema import ToolsSchema
from pipecat.frames.frames import (
    Frame,
    FunctionCallFromLLM,
    InputDTMFFrame,
    InterimTranscriptionFrame,
    LLMContextFrame,
    LLMFullResponseEndFrame,
    LLMFullResponseStartFrame,
    ProposedUserStartedSpeakingFrame,
    ProposedUserStoppedSpeakingFrame,
    TranscriptionFrame,
    TTSAudioRawFrame,
    VADUserStartedSpeakingFrame,
    VADUserStoppedSpeakingFrame,
)
from pipecat.metrics.metrics import LLMTokenUsage
from pipecat.pipeline.pipeline import Pipeline
from pipecat.pipeline.worker import PipelineParams, PipelineWorker
from pipecat.processors.aggregators.llm_context import LLMContext
from pipecat.processors.aggregators.llm_response_universal import (
    LLMContextAggregatorPair,
    LLMUserAggregatorParams,
)
from pipecat.processors.frame_processor import FrameDirection, FrameProcessor
from pipecat.processors.frameworks.rtvi import RTVIObserverParams
from pipecat.processors.frameworks.rtvi.frames import RTVIServerMessageFrame, RTVIUICommandFrame
from pipecat.processors.frameworks.rtvi.observer import RTVIFunctionCallReportLevel
from pipecat.serializers.protobuf import ProtobufFrameSerializer
from pipecat.services.llm_service import FunctionCallParams, LLMService
from pipecat.services.settings import TTSSettings
from pipecat.services.stt_service import STTService
from pipecat.services.tts_service import TTSService
from pipecat.transports.base_transport import BaseTransport, TransportParams
from pipecat.transports.smallwebrtc.connection import SmallWebRTCConnection
from pipecat.transports.smallwebrtc.transport import SmallWebRTCTransport
from pipecat.transports.websocket.fastapi import (
    FastAPIWebsocketParams,
    FastAPIWebsocketTransport,
)
from pipecat.turns.user_mute import FunctionCallUserMuteStrategy
from pipecat.turns.user_turn_strategies import ExternalUserTurnStrategies
from pipecat.utils.time import time_now_iso8601

AUDIO_IN_RATE = 16000
TTS_RATE = 24000
AUDIO_TRANSCRIPT = "hello from the microphone"
WEATHER_FUNCTION = "get_weather"
WEATHER_ARGUMENTS = {"city": "Paris"}
SPEECH_RMS = 500.0  # s16 RMS above this is speech (a 0.3 full-scale tone is ~7000)
END_SILENCE_S = 0.3
INTERIM_EVERY_S = 0.2
SENTENCE_AUDIO_MS = 120  # a multiple of the output transport's 40 ms chunks
_BOT_TASKS: set[asyncio.Task[None]] = set()


class DTMFReporter(FrameProcessor):
    """Tells the client every DTMF key the bot received, as a server-message."""

    def __init__(self) -> None:
        super().__init__()
        self._keys: list[str] = []

    async def process_frame(self, frame: Frame, direction: FrameDirection) -> None:
        await super().process_frame(frame, direction)
        if isinstance(frame, InputDTMFFrame):
            key = str(frame.button.value)
            self._keys.append(key)
            logger.info(f"DTMF received: {key}")
            await self.push_frame(
                RTVIServerMessageFrame(data={"dtmf": key, "keys": "".join(self._keys)})
            )
        await self.push_frame(frame, direction)


class StandInSTT(STTService):
    """An STT service that hears speech by its energy and always transcribes the same text."""

    def __init__(self) -> None:
        super().__init__(audio_passthrough=True)
        self._speaking = False
        self._voiced_s = 0.0
        self._silence_s = 0.0
        self._next_interim_s = INTERIM_EVERY_S

    def can_generate_metrics(self) -> bool:
        return True

    async def run_stt(self, audio: bytes) -> AsyncGenerator[Frame | None, None]:
        samples = np.frombuffer(audio[: len(audio) // 2 * 2], dtype="<i2").astype(np.float64)
        seconds = len(samples) / self.sample_rate
        loud = bool(samples.size) and float(np.sqrt(np.mean(samples**2))) > SPEECH_RMS
        if loud:
            self._silence_s = 0.0
            if not self._speaking:
                self._speaking = True
                self._voiced_s = 0.0
                self._next_interim_s = INTERIM_EVERY_S
                yield VADUserStartedSpeakingFrame()
                yield ProposedUserStartedSpeakingFrame()
            self._voiced_s += seconds
            if self._voiced_s >= self._next_interim_s:
                self._next_interim_s += INTERIM_EVERY_S
                words = AUDIO_TRANSCRIPT.split()
                partial = " ".join(words[: max(1, int(self._voiced_s / INTERIM_EVERY_S))])
                yield InterimTranscriptionFrame(partial, self._user_id, time_now_iso8601())
        elif self._speaking:
            self._silence_s += seconds
            if self._silence_s >= END_SILENCE_S:
                self._speaking = False
                yield VADUserStoppedSpeakingFrame()
                await self.start_ttfb_metrics()
                # finalized: STTService.push_frame reports the TTFB at once.
                yield TranscriptionFrame(
                    AUDIO_TRANSCRIPT, self._user_id, time_now_iso8601(), finalized=True
                )
                await self.emit_stt_usage_metrics()
                yield ProposedUserStoppedSpeakingFrame()


def _message_text(message: Any) -> tuple[str, str]:
    """(role, text) of an OpenAI-format context message."""
    if not isinstance(message, dict):
        return "", ""
    content = message.get("content")
    if isinstance(content, list):
        content = " ".join(str(p.get("text", "")) for p in content if isinstance(p, dict))
    return str(message.get("role", "")), "" if content is None else str(content)


class StandInLLM(LLMService):
    """An LLM that echoes the user, and calls get_weather when asked about the weather."""

    def can_generate_metrics(self) -> bool:
        return True

    async def process_frame(self, frame: Frame, direction: FrameDirection) -> None:
        await super().process_frame(frame, direction)
        if not isinstance(frame, LLMContextFrame):
            await self.push_frame(frame, direction)
            return
        await self.push_frame(LLMFullResponseStartFrame())
        await self.start_processing_metrics()
        try:
            await self._complete(frame.context)
        finally:
            await self.stop_processing_metrics()
            await self.push_frame(LLMFullResponseEndFrame())

    async def _complete(self, context: LLMContext) -> None:
        await self.start_ttfb_metrics()
        messages = context.get_messages()
        role, text = _message_text(messages[-1]) if messages else ("", "")
        if role == "user" and "weather" in text.lower():
            await self.stop_ttfb_metrics()
            call = FunctionCallFromLLM(
                function_name=WEATHER_FUNCTION,
                tool_call_id=f"call_{uuid.uuid4().hex[:12]}",
                arguments=dict(WEATHER_ARGUMENTS),
                context=context,
            )
            await self.start_llm_usage_metrics(
                LLMTokenUsage(
                    prompt_tokens=len(messages), completion_tokens=1, total_tokens=len(messages) + 1
                )
            )
            await self.run_function_calls([call])
            return
        if role == "tool":
            reply = f"The weather in Paris: {text}. Anything else?"
        else:
            reply = f"You said: {text}. How can I help?"
        if role == "user" and "show" in text.lower():
            await self.push_frame(RTVIUICommandFrame(command="toast", payload={"text": text}))
        words = reply.split(" ")
        for i, word in enumerate(words):
            if i == 0:
                await self.stop_ttfb_metrics()
            await self._push_llm_text(word if i == len(words) - 1 else word + " ")
        await self.start_llm_usage_metrics(
            LLMTokenUsage(
                prompt_tokens=len(messages),
                completion_tokens=len(words),
                total_tokens=len(messages) + len(words),
            )
        )


async def client_side_weather(params: FunctionCallParams) -> None:
    """The client answers get_weather (its llm-function-call-result); nothing to do here."""
    logger.info(f"function call {params.function_name} left to the client")


class StandInTTS(TTSService):
    """A TTS that speaks every sentence as a short tone."""

    def __init__(self) -> None:
        super().__init__(
            push_start_frame=True,
            push_stop_frames=True,
            stop_frame_timeout_s=0.5,
            sample_rate=TTS_RATE,
            settings=TTSSettings(model=None, voice=None, language=None),
        )

    def can_generate_metrics(self) -> bool:
        return True

    async def run_tts(self, text: str, context_id: str) -> AsyncGenerator[Frame | None, None]:
        await self.start_tts_usage_metrics(text)
        await self.stop_ttfb_metrics()
        yield TTSAudioRawFrame(
            bot_server.sine_pcm(SENTENCE_AUDIO_MS, self.sample_rate),
            self.sample_rate,
            1,
            context_id=context_id,
        )


def transport_params() -> dict[str, Any]:
    return {
        "audio_in_enabled": True,
        "audio_in_sample_rate": AUDIO_IN_RATE,
        "audio_out_enabled": True,
        "audio_out_sample_rate": TTS_RATE,
        "audio_out_end_silence_secs": 0,
    }


def observer_params() -> RTVIObserverParams:
    return RTVIObserverParams(
        function_call_report_level={"*": RTVIFunctionCallReportLevel.FULL},
        user_audio_level_enabled=True,
        bot_audio_level_enabled=True,
        stt_raw_text_enabled=True,
        llm_raw_text_enabled=True,
        tts_raw_text_enabled=True,
        vad_user_speaking_enabled=True,
    )


def build_worker(transport: BaseTransport) -> PipelineWorker:
    """The voice bot's pipeline, in a worker with RTVI, metrics and the observer's options."""
    weather = FunctionSchema(
        name=WEATHER_FUNCTION,
        description="The weather in a city",
        properties={"city": {"type": "string"}},
        required=["city"],
    )
    context = LLMContext(tools=ToolsSchema(standard_tools=[weather]))
    aggregators = LLMContextAggregatorPair(
        context,
        user_params=LLMUserAggregatorParams(
            user_turn_strategies=ExternalUserTurnStrategies(),
            user_mute_strategies=[FunctionCallUserMuteStrategy()],
        ),
    )
    llm = StandInLLM()
    llm.register_function(WEATHER_FUNCTION, client_side_weather)
    pipeline = Pipeline(
        [
            transport.input(),
            DTMFReporter(),
            StandInSTT(),
            aggregators.user(),
            llm,
            StandInTTS(),
            transport.output(),
            aggregators.assistant(),
        ]
    )
    return PipelineWorker(
        pipeline,
        params=PipelineParams(
            audio_in_sample_rate=AUDIO_IN_RATE,
            audio_out_sample_rate=TTS_RATE,
            enable_metrics=True,
            enable_usage_metrics=True,
        ),
        rtvi_observer_params=observer_params(),
        idle_timeout_secs=None,
    )


Build = Callable[[BaseTransport], PipelineWorker]
"""What makes one session's worker (this bot's :func:`build_worker`, or another bot's)."""


async def run_bot(transport: BaseTransport, label: str, build: Build = build_worker) -> None:
    """Run one session's pipeline until the client leaves."""
    await run_worker(transport, build(transport), label)


def create_app(port_ref: list[int], build: Build = build_worker) -> FastAPI:
    """The voice bot's routes. ``port_ref[0]`` is the listening port (known after bind)."""
    app, webrtc = app_with_webrtc()

    @app.post("/start")
    async def start() -> dict[str, str]:
        return {"wsUrl": f"ws://{HOST}:{port_ref[0]}/ws", "sessionId": uuid.uuid4().hex}

    @app.websocket("/ws")
    async def ws_endpoint(websocket: WebSocket) -> None:
        await websocket.accept()
        params = FastAPIWebsocketParams(serializer=ProtobufFrameSerializer(), **transport_params())
        await run_bot(FastAPIWebsocketTransport(websocket, params), "ws", build)

    # The direct route, and the one a start response's sessionId leads a client to.
    @app.post("/api/offer")
    @app.post("/sessions/{session_id}/api/offer")
    async def offer(request: Request) -> Any:
        req = offer_request(await request.json())

        async def on_connection(connection: SmallWebRTCConnection) -> None:
            transport = SmallWebRTCTransport(connection, TransportParams(**transport_params()))
            task = asyncio.create_task(run_bot(transport, "webrtc", build))
            _BOT_TASKS.add(task)
            task.add_done_callback(_BOT_TASKS.discard)

        return await webrtc.handle_web_request(req, on_connection)

    @app.patch("/api/offer")
    @app.patch("/sessions/{session_id}/api/offer")
    async def patch(request: Request) -> dict[str, str]:
        await webrtc.handle_patch_request(patch_request(await request.json()))
        return {"status": "success"}

    return app


def main(description: str = __doc__.splitlines()[0], build: Build = build_worker) -> None:
    """Parse ``--port`` and ``--log-level``, then serve ``build``'s bot until killed."""
    bot_serving.main(
        functools.partial(create_app, build=build), description, llm_url=False, log_level="DEBUG"
    )


if __name__ == "__main__":
    main()
