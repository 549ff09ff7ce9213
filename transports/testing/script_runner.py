"""Carries out a :class:`~transports.testing.script.BotScript`'s actions over one wire.

The script decides what to say; a :class:`Wire` says how it travels (protobuf frames, a
WebRTC data channel and audio track, or the loopback's in-process calls). The
:class:`ScriptRunner` between them runs each answer's actions in order in a task of its own
(so a slow answer never holds up the next message), plays ``Speak`` actions one after the
other in the speech lane, keeps the timers, and awaits the handlers.
"""

from __future__ import annotations

import asyncio
import inspect
from collections.abc import Iterable, Mapping
from typing import Any, Final, Protocol

from lifecycle.media import AudioFrame
from transports._tasks import TaskSet
from transports.testing import actions as a
from transports.testing.script import BotScript

__all__ = ["ScriptRunner", "Wire"]

MAX_QUEUED_SPEECH: Final = 64
"""Replies waiting in the speech lane beyond this are dropped (a flood of send-text)."""


class Wire(Protocol):
    """How one session's bot reaches its client."""

    async def send(self, message: Mapping[str, Any]) -> None:
        """Send one RTVI message."""

    async def send_audio(self, frame: AudioFrame) -> None:
        """Play bot audio (a wire without audio ignores it)."""

    async def interrupt(self) -> None:
        """Drop the bot audio not yet played (the WebSocket wire also sends its frame)."""

    async def leave(self) -> None:
        """End the session cleanly from the bot's side."""


class ScriptRunner:
    """Feeds one session's script and runs what it answers over ``wire``."""

    def __init__(self, script: BotScript, wire: Wire) -> None:
        """Nothing runs until the first message."""
        self.script = script
        self.wire = wire
        self._tasks = TaskSet()
        self._speech: list[asyncio.Task[Any]] = []
        self._timers: dict[str, asyncio.Task[Any]] = {}

    def receive(self, message: Mapping[str, Any]) -> None:
        """A message from the client."""
        self._start(self.script.receive(message))

    def receive_audio(self, frame: AudioFrame) -> None:
        """A microphone frame from the client."""
        self._start(self.script.receive_audio(frame))

    async def close(self) -> None:
        """Cancel everything still running (except the caller's own task)."""
        self._speech.clear()
        self._timers.clear()
        await self._tasks.cancel_all()

    def _start(self, actions: list[a.Action]) -> None:
        if actions:
            self._tasks.spawn(self._play(actions))

    async def _play(self, actions: Iterable[a.Action]) -> None:
        for action in actions:
            await self._do(action)

    async def _do(self, action: a.Action) -> None:
        match action:
            case a.Send(message=message):
                await self.wire.send(message)
            case a.SendAudio(frame=frame):
                await self.wire.send_audio(frame)
            case a.Sleep(seconds=seconds):
                await asyncio.sleep(seconds)
            case a.Leave():
                await self.wire.leave()
            case a.Speak():
                self._queue_speech(action)
            case a.StopSpeaking():
                speech, self._speech = self._speech, []
                for task in speech:
                    task.cancel()
                await self.wire.interrupt()
            case a.StartTimer(key=key, seconds=seconds):
                self._cancel_timer(key)
                self._timers[key] = self._tasks.spawn(self._timer(key, seconds))
            case a.CancelTimer(key=key):
                self._cancel_timer(key)
            case a.CallHandler():
                await self._play(await self._call(action))

    def _queue_speech(self, speak: a.Speak) -> None:
        self._speech = [t for t in self._speech if not t.done()]
        if len(self._speech) >= MAX_QUEUED_SPEECH:
            self.script.speech_finished()  # dropped: never played
            return
        after = self._speech[-1] if self._speech else None
        self._speech.append(self._tasks.spawn(self._speak(speak, after)))

    async def _speak(self, speak: a.Speak, after: asyncio.Task[Any] | None) -> None:
        if after is not None:
            await asyncio.wait([after])  # never raises, also when ``after`` was cancelled
        await self._play(speak.actions)
        await self._play(self.script.speech_finished())

    async def _timer(self, key: str, seconds: float) -> None:
        await asyncio.sleep(seconds)
        if self._timers.get(key) is asyncio.current_task():
            del self._timers[key]
        await self._play(self.script.timer_expired(key))

    def _cancel_timer(self, key: str) -> None:
        timer = self._timers.pop(key, None)
        if timer is not None and timer is not asyncio.current_task():
            timer.cancel()

    async def _call(self, call: a.CallHandler) -> list[a.Action]:
        try:
            result = call.handler(call.data)
            if inspect.isawaitable(result):
                result = await result
        except Exception as exc:
            return self.script.handler_raised(call, exc)
        return self.script.handler_returned(call, result)
