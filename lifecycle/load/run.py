"""Runs a plan's sessions, at most ``concurrency`` at once and ``rate`` started a second.

Sessions are made lazily: one when a slot is free, one per event-loop turn, so a huge
``concurrency`` never builds every session in one step (Ctrl-C stays prompt, memory grows
only with the sessions actually running).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from typing import TYPE_CHECKING

from lifecycle.load.plan import LoadPlan, Recorder
from lifecycle.load.session import SessionHook, run_session
from lifecycle.load.stats import LoadStats

if TYPE_CHECKING:
    from lifecycle.transport import Transport

__all__ = ["LoadRun"]


class LoadRun:
    """Runs a plan: ``stats = await LoadRun(plan, factory).run()``; ``stop()`` ends it early.

    ``transport_factory`` builds one fresh transport per session; ``on_phase`` (optional)
    sees every phase outcome as it is recorded, e.g. to forward it to another tool. The
    statistics also get each speech frame's pacing lag and this process's CPU seconds.
    """

    def __init__(
        self,
        plan: LoadPlan,
        transport_factory: Callable[[], Transport],
        *,
        scenario: SessionHook | None = None,
        on_phase: Recorder | None = None,
    ) -> None:
        self.plan = plan
        self.stats = LoadStats(requested=plan.sessions)
        self._factory = transport_factory
        self._scenario = scenario
        self._on_phase = on_phase
        self._stopping = asyncio.Event()
        self._starter: asyncio.Future[None] | None = None
        # Only sessions that may speak (their own speech, a scenario's audio turns) measure it.
        speaks = bool(plan.speech) or scenario is not None
        self._lag = self.stats.audio_send_lag.record if speaks else None

    @property
    def stopped(self) -> bool:
        """True once ``stop()`` was called."""
        return self._stopping.is_set()

    def stop(self) -> None:
        """Start no more sessions and end the running ones (they count as interrupted)."""
        self._stopping.set()
        if self._starter is not None:
            self._starter.cancel()

    async def run(self) -> LoadStats:
        """Run every session of the plan (or until ``stop()``); returns the statistics."""
        tasks: set[asyncio.Task[None]] = set()
        cpu = time.process_time()
        try:
            starter = asyncio.ensure_future(self._start_sessions(tasks))
            self._starter = starter
            if self.stopped:
                starter.cancel()
            try:
                await asyncio.wait({starter})  # stop() cancels the starter, not this task
            finally:
                starter.cancel()
            if not starter.cancelled():
                starter.result()  # a bug in the starter surfaces here
            await asyncio.gather(*tasks)
        finally:
            # Every thread of the process (aiortc encodes in one), user + system.
            self.stats.client_cpu_s += time.process_time() - cpu
        return self.stats

    async def _start_sessions(self, tasks: set[asyncio.Task[None]]) -> None:
        plan = self.plan
        slots = asyncio.Semaphore(plan.concurrency)
        began = time.monotonic()
        for index in range(plan.sessions):
            await slots.acquire()
            delay = began + index / plan.rate - time.monotonic() if plan.rate else 0.0
            if delay > 0:
                try:
                    await asyncio.sleep(delay)
                except asyncio.CancelledError:
                    slots.release()
                    raise
            self.stats.started += 1
            task = asyncio.ensure_future(self._session(slots))
            tasks.add(task)
            task.add_done_callback(tasks.discard)
            # One session per loop turn: a free semaphore never suspends, and 200,000
            # sessions made in one step held Ctrl-C off while memory grew past 800 MiB.
            await asyncio.sleep(0)

    async def _session(self, slots: asyncio.Semaphore) -> None:
        try:
            outcome = await run_session(
                self.plan,
                self._factory(),
                self._record,
                stopping=self._stopping,
                scenario=self._scenario,
                on_ready=self._ready,
                lag=self._lag,
            )
        except Exception as exc:  # a transport factory or a client bug: count it, go on
            self._record("session", 0.0, exc)
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
