"""Runs many sessions against one deployment and measures each phase (``load``).

A session is: ``start_bot`` (phase ``start``), ``connect`` until bot-ready (``connect``),
then either a scenario hook or the default body (an optional ``send_client_request``
round trip (``request``), an optional text turn, a hold), and ``disconnect``. The first
bot output after bot-ready (or after the text turn) is measured as ``first_output``.

The engine never builds transports itself: the caller hands it a factory (the CLI and
the Locust user pick the transport), so this module stays on the client side of the
one-way import rule. One ``PipecatClient`` per session: clients are cheap, and a fresh one
keeps sessions independent.
"""

from __future__ import annotations

import asyncio
import contextlib
import math
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Final, Literal

from lifecycle.errors import SessionCancelledError, SessionClosedError
from lifecycle.loadstats import LoadStats
from lifecycle.start import APIRequest

if TYPE_CHECKING:
    from lifecycle.client import PipecatClient
    from lifecycle.transport import Transport

__all__ = [
    "LoadPlan",
    "LoadRun",
    "PhaseError",
    "Recorder",
    "Scenario",
    "SessionContext",
    "SessionLostError",
    "run_session",
]

Recorder = Callable[[str, float, "BaseException | None"], None]
"""Gets every phase outcome: ``(phase, milliseconds, error or None)``."""
Scenario = Callable[["SessionContext"], Awaitable[None]]
"""A per-session hook run once the session is READY, instead of the default body."""
Outcome = Literal["ok", "failed", "interrupted"]

_OUTPUT_EVENTS: Final = (
    "on_bot_output",
    "on_bot_llm_text",
    "on_bot_tts_text",
    "on_bot_started_speaking",
    "on_bot_tts_audio",
    "on_bot_audio",
)


@dataclass(frozen=True, kw_only=True)
class LoadPlan:
    """What to run: ``sessions`` sessions, at most ``concurrency`` at once, ``rate`` starts/s."""

    start: str | APIRequest
    sessions: int = 1
    concurrency: int = 1
    rate: float | None = None
    hold: float = 0.0
    request: str | None = None
    request_data: Any = None
    say: str | None = None
    connect_timeout: float = 30.0
    request_timeout: float = 10.0

    def __post_init__(self) -> None:
        if self.sessions < 1 or self.concurrency < 1:
            raise ValueError("sessions and concurrency must be at least 1")
        if self.rate is not None and not (math.isfinite(self.rate) and self.rate > 0):
            raise ValueError("rate must be a positive number of starts per second")
        if not (math.isfinite(self.hold) and self.hold >= 0):
            raise ValueError("hold must be a finite number of seconds >= 0")


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
    async def phase(self, name: str) -> AsyncIterator[None]:
        """Time the block as phase ``name``; an error is recorded and raised as PhaseError."""
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
        self._record(name, _ms(started), None)


class _FirstOutput:
    """Measures the time from a mark (bot-ready, a text turn) to the first bot output."""

    def __init__(self, client: PipecatClient, record: Recorder) -> None:
        from lifecycle.client import EVENT_NAMES

        self._record = record
        self._since: float | None = None
        self.seen = asyncio.Event()
        for name in _OUTPUT_EVENTS:
            if name in EVENT_NAMES:
                client.add_event_handler(name, self._on_output)

    def mark(self) -> None:
        """Measure from now (a later mark replaces an earlier one until output is seen)."""
        if not self.seen.is_set():
            self._since = time.monotonic()

    def _on_output(self, *_: Any) -> None:
        if self._since is not None and not self.seen.is_set():
            self.seen.set()
            self._record("first_output", _ms(self._since), None)


async def run_session(
    plan: LoadPlan,
    transport: Transport,
    record: Recorder,
    *,
    stopping: asyncio.Event | None = None,
    scenario: Scenario | None = None,
    on_ready: Callable[[], None] | None = None,
) -> Outcome:
    """One measured session; never raises for a session failure (it is recorded instead)."""
    from lifecycle.client import PipecatClient

    stopping = stopping if stopping is not None else asyncio.Event()
    client = PipecatClient(
        transport, connect_timeout=plan.connect_timeout, request_timeout=plan.request_timeout
    )
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
        output.mark()
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
        await client.send_text(plan.say)
        output.mark()
        async with context.phase("first_output"):
            async with asyncio.timeout(plan.request_timeout):
                await output.seen.wait()
    if plan.hold > 0:
        async with context.phase("hold"):
            stopped = await _first_set(plan.hold, context.stopping, ended)
            if stopped is ended and not context.stopping.is_set():
                raise SessionLostError("the session ended while it was held")


async def _first_set(timeout: float, *events: asyncio.Event) -> asyncio.Event | None:
    """Wait until one of ``events`` is set (returned) or ``timeout`` passes (``None``)."""
    waiters = {asyncio.ensure_future(event.wait()): event for event in events}
    try:
        done, _ = await asyncio.wait(waiters, timeout=timeout, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for waiter in waiters:
            waiter.cancel()
        await asyncio.gather(*waiters, return_exceptions=True)
    return next((waiters[w] for w in done), None)


async def _disconnect_when_set(stopping: asyncio.Event, client: PipecatClient) -> None:
    await stopping.wait()
    await client.disconnect()


def _ms(started: float) -> float:
    return (time.monotonic() - started) * 1000.0


class LoadRun:
    """Runs a plan: ``stats = await LoadRun(plan, factory).run()``; ``stop()`` ends it early.

    ``transport_factory`` builds one fresh transport per session; ``on_phase`` (optional)
    sees every phase outcome as it is recorded, e.g. to forward it to another tool.
    """

    def __init__(
        self,
        plan: LoadPlan,
        transport_factory: Callable[[], Transport],
        *,
        scenario: Scenario | None = None,
        on_phase: Recorder | None = None,
    ) -> None:
        self.plan = plan
        self.stats = LoadStats(requested=plan.sessions)
        self._factory = transport_factory
        self._scenario = scenario
        self._on_phase = on_phase
        self._stopping = asyncio.Event()

    @property
    def stopped(self) -> bool:
        """True once ``stop()`` was called."""
        return self._stopping.is_set()

    def stop(self) -> None:
        """Start no more sessions and end the running ones (they count as interrupted)."""
        self._stopping.set()

    async def run(self) -> LoadStats:
        """Run every session of the plan (or until ``stop()``); returns the statistics."""
        plan = self.plan
        slots = asyncio.Semaphore(plan.concurrency)
        tasks: set[asyncio.Task[None]] = set()
        began = time.monotonic()
        for index in range(plan.sessions):
            if not await self._unless_stopped(slots.acquire()):
                break
            delay = began + index / plan.rate - time.monotonic() if plan.rate else 0.0
            if self.stopped or (delay > 0 and not await self._unless_stopped(asyncio.sleep(delay))):
                slots.release()
                break
            self.stats.started += 1
            task = asyncio.ensure_future(self._session(slots))
            tasks.add(task)
            task.add_done_callback(tasks.discard)
        await asyncio.gather(*tasks)
        return self.stats

    async def _session(self, slots: asyncio.Semaphore) -> None:
        try:
            outcome = await run_session(
                self.plan,
                self._factory(),
                self._record,
                stopping=self._stopping,
                scenario=self._scenario,
                on_ready=self._ready,
            )
        except Exception as exc:  # a transport factory or a client bug: count it, go on
            self._record("start", 0.0, exc)
            outcome = "failed"
        finally:
            slots.release()
        if outcome == "ok":
            self.stats.ok += 1
        elif outcome == "failed":
            self.stats.failed += 1
        else:
            self.stats.interrupted += 1

    def _ready(self) -> None:
        self.stats.ready += 1

    def _record(self, phase: str, ms: float, error: BaseException | None) -> None:
        self.stats.record(phase, ms, error)
        if self._on_phase is not None:
            self._on_phase(phase, ms, error)

    async def _unless_stopped(self, awaitable: Awaitable[Any]) -> bool:
        """Await ``awaitable`` unless ``stop()`` comes first (then it is cancelled)."""
        task = asyncio.ensure_future(awaitable)
        stopped = await _first_set_or(task, self._stopping)
        return not stopped


async def _first_set_or(task: asyncio.Future[Any], event: asyncio.Event) -> bool:
    """Wait for ``task`` or ``event``; True when the event won (the task is then cancelled)."""
    waiter = asyncio.ensure_future(event.wait())
    try:
        await asyncio.wait({task, waiter}, return_when=asyncio.FIRST_COMPLETED)
    finally:
        waiter.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await waiter
    if task.done():
        return False
    task.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await task
    return True
