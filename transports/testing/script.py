"""The testing bots' RTVI script, sans I/O: messages in, actions out.

One :class:`BotScript` per session plays what a Pipecat 1.14 voice bot does, with no network
and no clock of its own: :meth:`BotScript.receive` takes an RTVI message the client sent
(:meth:`~BotScript.receive_audio` a microphone frame) and returns the actions
(:mod:`transports.testing.actions`) to
take, in order. A wire adapter (:mod:`transports.testing.script_runner`, used by the WebSocket and
WebRTC testing servers and by ``LoopbackBot``) carries them out and reports back timers that
fired, handler results, and speech that finished. Only the wire differs between the bots.

The script answers ``client-ready`` with ``bot-ready`` (protocol 2.2.0; a version of another
major gets an ``error-response`` first, as Pipecat does), ``disconnect-bot`` by leaving,
``client-message`` through ``handlers`` (and, with ``builtins=True``, the testing messages
listed in :mod:`transports.testing.client_messages`), and, when it has a
:class:`~transports.testing.dialogue.Dialogue`, it talks:

* ``send-text`` (and a user turn heard on the microphone: ``Dialogue.min_voice_ms`` of sound
  then ``Dialogue.end_of_speech_ms`` without) -> user-started-speaking, user-input,
  user-transcription, user-stopped-speaking, then the bot's reply: bot-llm-started,
  bot-llm-text per token, bot-transcription, bot-llm-stopped, bot-tts-started, bot-tts-text,
  bot-tts-stopped, bot-started-speaking, bot-output (``new``), the reply's audio,
  bot-output (``completed``), bot-stopped-speaking, metrics. ``audio_response: false``
  replies with LLM text and a not-to-be-spoken bot-output only.
* A user text containing a ``FunctionTrigger`` word -> llm-function-call-started and
  -in-progress; the reply waits for the client's ``llm-function-call-result`` (then
  llm-function-call-stopped with that result and a reply that quotes it) for at most
  ``Dialogue.function_timeout`` seconds (then a ``system-log`` saying so, a cancelled
  llm-function-call-stopped and a reply saying no result came).
* ``send-text`` with ``run_immediately`` while a reply plays or waits -> the reply stops,
  ``bot-interrupted``, then the new turn.
"""

from __future__ import annotations

import sys
from array import array
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, Final

from lifecycle.media import AudioFrame
from lifecycle.rtvi import PROTOCOL_VERSION, protocol_major
from transports.testing import messages as m
from transports.testing.actions import (
    MAX_DELAY,
    Action,
    CallHandler,
    CancelTimer,
    Handler,
    Leave,
    Send,
    SendAudio,
    Sleep,
    Speak,
    StartTimer,
    StopSpeaking,
    error_response,
    server_response,
)
from transports.testing.client_messages import BUILTIN_MESSAGES
from transports.testing.dialogue import Dialogue, FunctionTrigger

__all__ = ["MAX_PENDING_CALLS", "USER_TURN_TIMER", "BotScript"]

MAX_PENDING_CALLS: Final = 16
"""Function calls waiting for a result beyond this are not made: the bot just replies."""
USER_TURN_TIMER: Final = "user-speech"
_CALL_TIMER: Final = "call:"
_SHOWN: Final = 120  # the most of a client-chosen name an error text repeats
_QUIET_TYPES: Final = frozenset(
    {"dtmf", "ui-event", "ui-snapshot", "ui-cancel-job-group", "send-file", "raw-audio"}
    | {"raw-audio-batch"}
)  # accepted by Pipecat 1.14 without an answer


@dataclass
class _PendingCall:
    name: str
    audio: bool


# --- the script --------------------------------------------------------------------------


class BotScript:
    """One session of a testing bot (see the module docstring).

    ``library``/``library_version``: the bot-ready ``about``. ``send_bot_ready=False``: a
    bot that never becomes ready; ``ready_delay``: seconds before bot-ready (at most 30).
    ``handlers``: client-message type -> :data:`Handler`. ``builtins``: also answer the
    testing messages of :data:`BUILTIN_MESSAGES`. ``dialogue``: how it talks; ``None``: it
    never talks. Read and set ``send_bot_ready``/``ready_delay`` until client-ready comes.
    """

    def __init__(
        self,
        *,
        library: str,
        library_version: str = "0",
        send_bot_ready: bool = True,
        ready_delay: float = 0.0,
        handlers: Mapping[str, Handler] | None = None,
        builtins: bool = False,
        dialogue: Dialogue | None = None,
        clock: Callable[[], str] = m.timestamp,
    ) -> None:
        """A fresh session; see the class docstring."""
        self.library = library
        self.library_version = library_version
        self.send_bot_ready = send_bot_ready
        self.ready_delay = ready_delay
        self.handlers: Mapping[str, Handler] = handlers if handlers is not None else {}
        self.builtins = builtins
        self.dialogue = dialogue
        self._clock = clock
        self._pending: dict[str, _PendingCall] = {}
        self._speeches = 0  # Speak actions handed out and not finished
        self._segments = 0
        self._calls = 0
        self._voiced_ms = 0.0
        self._user_speaking = False

    @property
    def replying(self) -> bool:
        """Whether a reply is playing, queued, or waiting for a function result."""
        return self._speeches > 0 or bool(self._pending)

    # --- inputs ----------------------------------------------------------------------

    def receive(self, message: Mapping[str, Any]) -> list[Action]:
        """The actions that answer one RTVI message from the client."""
        msg_type, msg_id = message.get("type"), message.get("id")
        data = message.get("data")
        if msg_type == "client-ready":
            return self._ready(data, msg_id)
        if msg_type == "client-message":
            return self._client_message(data, msg_id)
        if msg_type == "disconnect-bot":
            return [Leave()]
        if msg_type == "send-text":
            return self._send_text(data, msg_id)
        if msg_type == "llm-function-call-result":
            return self._function_result(data)
        if msg_type in _QUIET_TYPES:
            return []
        return [error_response(f"Unsupported type {str(msg_type)[:_SHOWN]}", msg_id)]

    def receive_audio(self, frame: AudioFrame) -> list[Action]:
        """The actions for one frame of the user's microphone (a user turn, eventually)."""
        dialogue = self.dialogue
        if dialogue is None or frame.sample_rate <= 0 or frame.num_channels <= 0:
            return []
        samples = array("h", frame.pcm[: len(frame.pcm) // 2 * 2])
        if sys.byteorder == "big":  # the wire's PCM is little-endian
            samples.byteswap()
        if not samples or max(max(samples), -min(samples)) < dialogue.voice_threshold:
            return []
        self._voiced_ms += 1000 * len(samples) / frame.num_channels / frame.sample_rate
        actions: list[Action] = []
        if not self._user_speaking and self._voiced_ms >= dialogue.min_voice_ms:
            self._user_speaking = True
            if self.replying:
                actions += self._interrupt()
            actions.append(Send(m.envelope("user-started-speaking")))
        actions.append(StartTimer(USER_TURN_TIMER, dialogue.end_of_speech_ms / 1000))
        return actions

    def timer_expired(self, key: str) -> list[Action]:
        """The actions when the timer ``key`` of a :class:`StartTimer` fires."""
        if key == USER_TURN_TIMER:
            return self._end_of_user_speech()
        if key.startswith(_CALL_TIMER):
            return self._function_timed_out(key[len(_CALL_TIMER) :])
        return []

    def handler_returned(self, call: CallHandler, value: Any) -> list[Action]:
        """The actions after a :class:`CallHandler`'s handler returned ``value``."""
        return [server_response(call.msg_type, value, call.msg_id)]

    def handler_raised(self, call: CallHandler, exc: Exception) -> list[Action]:
        """The actions after a :class:`CallHandler`'s handler raised ``exc``."""
        return [error_response(str(exc), call.msg_id)]

    def speech_finished(self) -> list[Action]:
        """The actions after a :class:`Speak` ran to its end (none today)."""
        self._speeches = max(0, self._speeches - 1)
        return []

    # --- session -----------------------------------------------------------------------

    def _ready(self, data: Any, msg_id: Any) -> list[Action]:
        actions: list[Action] = []
        version = data.get("version") if isinstance(data, Mapping) else None
        if not isinstance(version, str) or protocol_major(version) != 2:
            actions.append(error_response(f"unsupported RTVI protocol version {version!r}", msg_id))
        if not self.send_bot_ready:
            return actions
        if self.ready_delay > 0:
            actions.append(Sleep(min(self.ready_delay, MAX_DELAY)))
        ready = {
            "version": PROTOCOL_VERSION,
            "about": {"library": self.library, "library_version": self.library_version},
            "capabilities": {"audio_in": True, "audio_out": True},
        }
        actions.append(Send(m.envelope("bot-ready", ready, msg_id)))
        if self.dialogue is not None and self.dialogue.greeting:
            actions.append(self._speak(self._reply_actions(self.dialogue.greeting, audio=True)))
        return actions

    def _client_message(self, data: Any, msg_id: Any) -> list[Action]:
        payload = data if isinstance(data, Mapping) else {}
        t, d = payload.get("t"), payload.get("d")
        handler = self.handlers.get(t) if isinstance(t, str) else None
        if handler is not None:
            return [CallHandler(handler, d, t, msg_id)]
        if self.builtins and isinstance(t, str) and t in BUILTIN_MESSAGES:
            try:
                return BUILTIN_MESSAGES[t](t, d, msg_id)
            except (ValueError, TypeError) as exc:
                return [error_response(str(exc), msg_id)]
        return [error_response(f"no handler for {t!r}"[:_SHOWN], msg_id)]

    # --- the conversation --------------------------------------------------------------

    def _send_text(self, data: Any, msg_id: Any) -> list[Action]:
        if self.dialogue is None:
            return []
        payload = data if isinstance(data, Mapping) else {}
        options = payload.get("options")
        options = options if isinstance(options, Mapping) else {}
        text = str(payload.get("content", ""))
        actions: list[Action] = []
        if options.get("run_immediately", True) is not False and self.replying:
            actions += self._interrupt()
        when = self._clock()
        actions += [
            Send(m.envelope("user-started-speaking")),
            Send(m.user_input(text, "chat", msg_id, when)),
            Send(m.user_transcription(text, when)),
            Send(m.envelope("user-stopped-speaking")),
        ]
        return actions + self._respond(text, audio=options.get("audio_response", True) is not False)

    def _end_of_user_speech(self) -> list[Action]:
        heard, self._user_speaking, self._voiced_ms = self._user_speaking, False, 0.0
        if not heard or self.dialogue is None:
            return []
        text, when = self.dialogue.audio_transcript, self._clock()
        actions: list[Action] = [
            Send(m.user_transcription(text, when)),
            Send(m.user_input(text, "transcription", None, when)),
            Send(m.envelope("user-stopped-speaking")),
        ]
        return actions + self._respond(text, audio=True)

    def _respond(self, text: str, *, audio: bool) -> list[Action]:
        assert self.dialogue is not None  # only a talking script gets here
        lowered = text.lower()
        for trigger in self.dialogue.functions:
            if trigger.word.lower() in lowered and len(self._pending) < MAX_PENDING_CALLS:
                return self._call_function(trigger, audio=audio)
        return [self._speak(self._reply_actions(self.dialogue.reply(text), audio=audio))]

    def _call_function(self, trigger: FunctionTrigger, *, audio: bool) -> list[Action]:
        assert self.dialogue is not None
        self._calls += 1
        call_id = f"call_testing_{self._calls}"
        self._pending[call_id] = _PendingCall(trigger.name, audio)
        speech = (
            Send(m.envelope("bot-llm-started")),
            Send(m.function_call_started(trigger.name)),
            Send(m.function_call_in_progress(call_id, trigger.name, trigger.arguments)),
            Send(m.envelope("bot-llm-stopped")),
        )
        return [
            self._speak(speech),
            StartTimer(_CALL_TIMER + call_id, self.dialogue.function_timeout),
        ]

    def _function_result(self, data: Any) -> list[Action]:
        payload = data if isinstance(data, Mapping) else {}
        call_id = payload.get("tool_call_id")
        if not isinstance(call_id, str):
            return []
        pending = self._pending.pop(call_id, None)
        if pending is None or self.dialogue is None:
            return []  # not a call of this script's (e.g. LoopbackBot.call_function's)
        result = payload.get("result")
        stopped = Send(
            m.function_call_stopped(call_id, pending.name, cancelled=False, result=result)
        )
        reply = self._reply_actions(
            self.dialogue.function_reply(pending.name, result), audio=pending.audio
        )
        return [CancelTimer(_CALL_TIMER + call_id), self._speak((stopped, *reply))]

    def _function_timed_out(self, call_id: str) -> list[Action]:
        pending = self._pending.pop(call_id, None)
        if pending is None or self.dialogue is None:
            return []
        seconds = self.dialogue.function_timeout
        log = f"function call {pending.name} ({call_id}) got no result within {seconds:g} s"
        stopped = Send(m.function_call_stopped(call_id, pending.name, cancelled=True))
        reply = self._reply_actions(
            self.dialogue.function_reply(pending.name, None), audio=pending.audio
        )
        return [Send(m.envelope("system-log", {"text": log})), self._speak((stopped, *reply))]

    def _interrupt(self) -> list[Action]:
        actions: list[Action] = [StopSpeaking(), Send(m.envelope("bot-interrupted"))]
        for call_id, pending in self._pending.items():
            actions.append(CancelTimer(_CALL_TIMER + call_id))
            actions.append(Send(m.function_call_stopped(call_id, pending.name, cancelled=True)))
        self._pending.clear()
        self._speeches = 0
        return actions

    def _speak(self, actions: tuple[Action, ...]) -> Speak:
        self._speeches += 1
        return Speak(actions)

    def _reply_actions(self, reply: str, *, audio: bool) -> tuple[Action, ...]:
        assert self.dialogue is not None
        dialogue = self.dialogue
        actions: list[Action] = [Send(m.envelope("bot-llm-started"))]
        for token in m.tokens(reply):
            if dialogue.token_delay > 0:
                actions.append(Sleep(min(dialogue.token_delay, MAX_DELAY)))
            actions.append(Send(m.envelope("bot-llm-text", {"text": token})))
        actions += [
            Send(m.envelope("bot-transcription", {"text": reply})),
            Send(m.envelope("bot-llm-stopped")),
        ]
        self._segments += 1
        output = {
            "text": reply,
            "output_type": "sentence",
            "text_type": "sentence",
            "aggregated_by": "sentence",
            "segment_id": self._segments,
            "will_be_spoken": audio,
            "spoken_status": "new",
        }
        if not audio:
            actions.append(Send(m.envelope("bot-output", output)))
        else:
            progress = {"accumulated_text": "", "remaining_text": reply}
            done = {"accumulated_text": reply, "remaining_text": ""}
            actions += [
                Send(m.envelope("bot-tts-started")),
                Send(m.envelope("bot-tts-text", {"text": reply})),
                Send(m.envelope("bot-tts-stopped")),
                Send(m.envelope("bot-started-speaking")),
                Send(m.envelope("bot-output", {**output, "spoken_progress": progress})),
                *(SendAudio(f) for f in m.sine_frames(dialogue.speech_ms, dialogue.speech_rate)),
                Send(
                    m.envelope(
                        "bot-output",
                        {**output, "spoken_status": "completed", "spoken_progress": done},
                    )
                ),
                Send(m.envelope("bot-stopped-speaking")),
            ]
        actions.append(Send(m.metrics(reply, ttfb=0.001, processing=0.002)))
        return tuple(actions)
