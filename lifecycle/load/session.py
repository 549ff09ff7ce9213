"""One measured session: start, connect until bot-ready, a body, disconnect.

The body is a scenario hook, or the default: an optional ``send_client_request`` round
trip (phase ``request``), an optional text turn or spoken turn (phase ``speak``: the plan's
frames paced in real time, then trailing silence), a hold. The first bot output after
bot-ready (or after the turn) is timed as ``first_output``. A turn then waits (within
``request_timeout``) for the bot's reply to end, so its later figures (first TTS text,
speaking) are in the turn before the session disconnects: ``bot-stopped-speaking``, or
``bot-llm-stopped`` with no speech following within :data:`TEXT_ONLY_GRACE`. One
``PipecatClient`` per session: clients are cheap, and a fresh one keeps sessions
independent. When the session
is over, each of its turns (``client.trace.turns()``) adds its figures to the ``turn_*``
phases (see :data:`~lifecycle.load.stats.TURN_PHASES`). Speech sent by any layer of the
session (the default body, a scenario's audio turns) reports each frame's pacing lag to
``lag`` when one is given.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import TYPE_CHECKING, Any, Final

from lifecycle.errors import SessionCancelledError, SessionClosedError
from lifecycle.load.plan import LoadPlan, Outcome, Recorder
from lifecycle.load.stats import TURN_PHASES
from lifecycle.media import AudioFrame

if TYPE_CHECKING:
    from lifecycle.client import PipecatClient
    from lifecycle.transport import Transport

__all__ = [
    "TEXT_ONLY_GRACE",
    "PhaseError",
    "SessionContext",
    "SessionHook",
    "SessionLostError",
    "run_session",
]

TEXT_ONLY_GRACE: Final = 1.0
"""Seconds after ``bot-llm-stopped`` within which speech (``bot-tts-started``,
``bot-started-speaking``) must begin, else the reply was text only and is over."""
_REPLY_EVENTS: Final = (
    "on_bot_llm_stopped",
    "on_bot_tts_started",
    "on_bot_started_speaking",
    "on_bot_stopped_speaking",
)

_OUTPUT_EVENTS: Final = (
    "on_bot_output",
    "on_bot_llm_text",
    "on_bot_tts_text",
    "on_bot_started_speaking",
    "on_bot_tts_audio",
    "on_bot_audio",
)


class PhaseError(Exception):
    """A phase failed; the error was recorded under ``phase`` (the cause is chained)."""

    def __init__(self, phase: str, error: BaseException) -> None:
        super().__init__(f"{phase}: {type(error).__name__}")
        self.phase = phase
        self.error = error


class SessionLostError(Exception):
    """The session ended by itself (bot left, fatal error) while it was being held."""


class _Interrupted(Exception):
    """The run was stopped while this session was in a phase."""


class SessionContext:
    """What a scenario hook gets: the READY client, the plan, and a phase timer."""

    def __init__(
        self, client: PipecatClient, plan: LoadPlan, stopping: asyncio.Event, record: Recorder
    ) -> None:
        self.client = client
        self.plan = plan
        self.stopping = stopping
        self._record = record

    def record(self, phase: str, ms: float, error: BaseException | None = None) -> None:
        """Record one outcome of ``phase`` directly."""
        self._record(phase, ms, error)

    @contextlib.asynccontextmanager
    async def phase(self, name: str, *, timed: bool = True) -> AsyncIterator[None]:
        """Time the block as phase ``name``; an error is recorded and raised as PhaseError.

        ``timed=False`` records only an error (the block's duration means nothing itself).
        """
        started = time.monotonic()
        try:
            yield
        except (PhaseError, _Interrupted):
            raise
        except Exception as exc:
            if self.stopping.is_set():
                raise _Interrupted from exc
            self._record(name, _ms(started), exc)
            raise PhaseError(name, exc) from exc
        if timed:
            self._record(name, _ms(started), None)


SessionHook = Callable[[SessionContext], Awaitable[None]]
"""A per-session hook run once the session is READY, instead of the default body (was
``Scenario``: that word now means a scenario file only)."""


class _FirstOutput:
    """Measures the time from a mark (bot-ready, a text turn) to the first bot output."""

    def __init__(self, client: PipecatClient, record: Recorder) -> None:
        from lifecycle.client import EVENT_NAMES

        self._client = client
        self._record = record
        self._since: float | None = None
        self.seen = asyncio.Event()
        self._names = [name for name in _OUTPUT_EVENTS if name in EVENT_NAMES]
        for name in self._names:
            client.add_event_handler(name, self._on_output)

    def mark(self) -> None:
        """Measure from now (a later mark replaces an earlier one until output is seen)."""
        if not self.seen.is_set():
            self._since = time.monotonic()

    def _on_output(self, data: Any = None, *_: Any) -> None:
        if isinstance(data, AudioFrame) and data.pcm.count(0) == len(data.pcm):
            return  # silence: a WebRTC bot sends it between replies
        if self._since is not None and not self.seen.is_set():
            self.seen.set()
            self._record("first_output", _ms(self._since), None)
            # Seen: stop the callbacks (a WebRTC bot's audio alone is 50 a second).
            asyncio.get_running_loop().call_soon(self._unsubscribe)

    def _unsubscribe(self) -> None:
        for name in self._names:
            self._client.remove_event_handler(name, self._on_output)


async def run_session(
    plan: LoadPlan,
    transport: Transport,
    record: Recorder,
    *,
    stopping: asyncio.Event | None = None,
    scenario: SessionHook | None = None,
    on_ready: Callable[[], None] | None = None,
    lag: Callable[[float], None] | None = None,
    logger: Any = None,
) -> Outcome:
    """One measured session; never raises for a session failure (it is recorded instead).

    ``lag`` gets every speech frame's pacing lag (ms) while the session runs; ``logger`` is
    the client's (``PipecatClient(logger=...)``; default: the library's).
    """
    if lag is None:
        return await _run_session(plan, transport, record, stopping, scenario, on_ready, logger)
    from lifecycle.testing.audio import SEND_LAG

    token = SEND_LAG.set(lag)
    try:
        return await _run_session(plan, transport, record, stopping, scenario, on_ready, logger)
    finally:
        SEND_LAG.reset(token)


async def _run_session(
    plan: LoadPlan,
    transport: Transport,
    record: Recorder,
    stopping: asyncio.Event | None,
    scenario: SessionHook | None,
    on_ready: Callable[[], None] | None,
    logger: Any,
) -> Outcome:
    from lifecycle.client import PipecatClient

    stopping = stopping if stopping is not None else asyncio.Event()
    client = PipecatClient(
        transport,
        connect_timeout=plan.connect_timeout,
        request_timeout=plan.request_timeout,
        logger=logger,
    )
    prepare = getattr(scenario, "prepare", None)
    if prepare is not None:
        prepare(client)  # a hook that must listen before bot-ready (a simulated caller)
    ended = asyncio.Event()
    client.add_event_handler("on_disconnected", ended.set)
    output = _FirstOutput(client, record)
    context = SessionContext(client, plan, stopping, record)
    watcher = asyncio.ensure_future(_disconnect_when_set(stopping, client))
    outcome: Outcome = "ok"
    try:
        async with context.phase("start"):
            response = await client.start_bot(plan.start)
        async with context.phase("connect"):
            await client.connect(response)
        if on_ready is not None:
            on_ready()
        if scenario is not None or (plan.say is None and not plan.speech):
            output.mark()  # with a turn, the first output is timed from the turn's end
        if scenario is not None:
            async with context.phase("scenario"):
                await scenario(context)
        else:
            await _default_body(context, output, ended)
    except PhaseError:
        outcome = "failed"
    except (_Interrupted, SessionCancelledError, SessionClosedError):
        outcome = "interrupted"
    finally:
        watcher.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await watcher
        started = time.monotonic()
        await client.disconnect()
        if outcome == "ok":
            record("disconnect", _ms(started), None)
        _record_turns(client, record)
    if outcome == "ok" and stopping.is_set():
        outcome = "interrupted"
    return outcome


async def _default_body(
    context: SessionContext, output: _FirstOutput, ended: asyncio.Event
) -> None:
    plan, client = context.plan, context.client
    if plan.request is not None:
        async with context.phase("request"):
            await client.send_client_request(plan.request, plan.request_data)
    if plan.say is not None:
        # The callback records the latency; the phase block records only a failure.
        async with client.events(*_REPLY_EVENTS) as reply:
            async with context.phase("first_output", timed=False):
                await client.send_text(plan.say)
                output.mark()
                async with asyncio.timeout(plan.request_timeout):
                    await output.seen.wait()
            await _reply_ended(reply, plan.request_timeout)
    if plan.speech:
        async with client.events(*_REPLY_EVENTS) as reply:
            await _speak(context, output)
            await _reply_ended(reply, plan.request_timeout)
    if plan.hold > 0:
        # Stopping the run disconnects the session, which ends the hold early too.
        started = time.monotonic()
        try:
            await asyncio.wait_for(ended.wait(), plan.hold)
        except TimeoutError:
            return
        if not context.stopping.is_set():
            error = SessionLostError("the session ended while it was held")
            context.record("hold", _ms(started), error)
            raise PhaseError("hold", error)


async def _reply_ended(reply: AsyncIterator[Any], timeout: float) -> None:
    """Until the bot's reply is over (see the module docstring), at most ``timeout`` s."""
    speaking = llm_done = False
    with contextlib.suppress(TimeoutError):
        async with asyncio.timeout(timeout):
            while True:
                grace = TEXT_ONLY_GRACE if llm_done and not speaking else None
                try:
                    async with asyncio.timeout(grace):
                        event = await anext(reply)
                except TimeoutError:
                    return  # no speech followed the LLM's text: a text-only reply
                except StopAsyncIteration:
                    return
                if event.name == "on_bot_stopped_speaking" and speaking:
                    return
                speaking = speaking or event.name in (
                    "on_bot_tts_started",
                    "on_bot_started_speaking",
                )
                llm_done = llm_done or event.name == "on_bot_llm_stopped"


async def _speak(context: SessionContext, output: _FirstOutput) -> None:
    """The plan's speech in real time, its trailing silence, then the first bot output."""
    from lifecycle.testing.audio import stream_to

    plan, client = context.plan, context.client
    first = plan.speech[0]
    async with context.phase("first_output", timed=False):
        async with context.phase("speak"):
            await stream_to(client.send_audio, plan.speech)
        output.mark()
        trailing = _silence(plan.trailing_silence, first.sample_rate, first.num_channels)
        await stream_to(client.send_audio, trailing)
        async with asyncio.timeout(plan.request_timeout):
            await output.seen.wait()


@functools.lru_cache(maxsize=8)
def _silence(seconds: float, rate: int, channels: int) -> tuple[AudioFrame, ...]:
    """Trailing silence, made once per format for every session of a run."""
    from lifecycle.testing.audio import silence

    return tuple(silence(seconds, rate, channels))


def _record_turns(client: PipecatClient, record: Recorder) -> None:
    """Each turn's figures that it has, one value per turn under its ``turn_*`` phase."""
    for turn in client.trace.turns(client.session_id):
        for phase, figure in TURN_PHASES.items():
            value = getattr(turn, figure)
            if value is not None:
                record(phase, value, None)


async def _disconnect_when_set(stopping: asyncio.Event, client: PipecatClient) -> None:
    await stopping.wait()
    await client.disconnect()


def _ms(started: float) -> float:
    return (time.monotonic() - started) * 1000.0
