"""``PipecatUser``: load sessions as a Locust user (``pip install "pipecat-lifecycle[locust]"``).

Each task iteration of a user is one session of :func:`lifecycle.load.run_session`:
start, connect until bot-ready, the optional request/text turn/hold or your scenario,
disconnect. Every phase is reported to Locust's statistics as a request whose
``request_type`` is the phase (``start``, ``connect``, ``request``, ``first_output``,
``disconnect``, ...) and whose ``name`` is the user class's ``name`` (default: the start
endpoint, query values redacted), so ``locust --master`` / ``--worker`` spreads sessions
over machines and the web UI and ``--csv`` show them per phase.

The sessions run on one asyncio loop per Locust process, in a native thread
(:mod:`lifecycle.contrib.asyncio_thread`); the user's greenlet waits cooperatively and
fires each phase's event as soon as it is recorded. The library's log lines from the loop
thread are handed to the gevent side through a lock-free queue and written there
(:mod:`lifecycle.contrib.log_relay`): no lock is shared between the threads. Statistics
name the start endpoint with its query values redacted (a ``?token=`` never reaches the
statistics, the CSV files or the web UI). Importing this module imports Locust (which
gevent-patches the process): import it only in a locustfile.

Example (``examples/locustfile.py``)::

    from lifecycle.contrib.locust import PipecatUser

    class BotUser(PipecatUser):
        host = "http://localhost:7860/start"   # or: locust --host URL
        hold = 5.0
"""

from __future__ import annotations

import asyncio
import time
from typing import Any, ClassVar

import gevent.lock
from locust import User, task

from lifecycle.contrib.asyncio_thread import AsyncioThread, Handle
from lifecycle.contrib.log_relay import LogRelay
from lifecycle.contrib.transport_factory import make_transport
from lifecycle.load import LoadPlan, SessionHook, run_session
from lifecycle.redact import redact_url
from lifecycle.start import StartSettings

__all__ = ["PipecatUser"]

_thread: AsyncioThread | None = None
_relay: LogRelay | None = None
_thread_lock = gevent.lock.Semaphore()


def _asyncio_thread() -> AsyncioThread:
    """The process's asyncio loop thread, started by the first user that needs it."""
    global _thread
    with _thread_lock:  # users start concurrently: only one of them makes the thread
        if _thread is None:
            _thread = AsyncioThread()
    return _thread


def _log_relay() -> LogRelay:
    """The process's log relay (made in the greenlet thread, used by the loop thread)."""
    global _relay
    with _thread_lock:
        if _relay is None:
            _relay = LogRelay()
    return _relay


class PipecatUser(User):
    """A Locust user whose every task iteration is one measured Pipecat session.

    Configure it with class attributes: ``host`` (the start endpoint, or ``--host``),
    ``transport`` (``"ws"`` or ``"webrtc"``), ``hold`` (seconds READY), ``request`` and
    ``request_data`` (one ``send_client_request`` round trip), ``say`` (a text turn whose
    first bot output is timed), ``start_data`` and ``headers`` (the start request),
    ``connect_timeout``, ``request_timeout``, and ``scenario`` (a per-session hook
    ``async def scenario(session: SessionContext)`` replacing the default body).
    """

    abstract = True
    transport: ClassVar[str] = "ws"
    hold: ClassVar[float] = 0.0
    request: ClassVar[str | None] = None
    request_data: ClassVar[Any] = None
    say: ClassVar[str | None] = None
    start_data: ClassVar[Any] = None
    headers: ClassVar[dict[str, str]] = {}
    connect_timeout: ClassVar[float] = 30.0
    request_timeout: ClassVar[float] = 10.0
    scenario: ClassVar[SessionHook | None] = None
    name: ClassVar[str | None] = None

    def __init__(self, environment: Any) -> None:
        super().__init__(environment)
        self._stopping: asyncio.Event | None = None

    def settings(self) -> StartSettings:
        """How sessions reach the bot: ``host``, ``start_data``, ``headers``, ``transport``,
        ``connect_timeout`` (with ``transport = "ws"`` and no ``start_data`` the start body
        is ``{"transport": "websocket"}``, as on the command line)."""
        if not self.host:
            raise ValueError("PipecatUser needs the start endpoint: set host or pass --host")
        return StartSettings(
            start_url=self.host,
            start_data=self.start_data,
            headers=dict(self.headers),
            transport=self.transport,
            connect_timeout=self.connect_timeout,
        )

    def plan(self) -> LoadPlan:
        """The session each task iteration runs (override to vary it per user)."""
        return LoadPlan(
            start=self.settings().api_request(),
            hold=self.hold,
            request=self.request,
            request_data=self.request_data,
            say=self.say,
            connect_timeout=self.connect_timeout,
            request_timeout=self.request_timeout,
        )

    @task
    def session(self) -> None:
        """One session; each phase becomes a Locust request event as it is recorded."""
        loop_thread = _asyncio_thread()
        logger = _log_relay().logger()
        plan = self.plan()
        settings = self.settings()
        pending: list[tuple[str, float, BaseException | None, float]] = []
        stopping = asyncio.Event()
        self._stopping = stopping
        handle: Handle[str] = Handle()

        def record(phase: str, ms: float, error: BaseException | None) -> None:
            # In the loop thread: queue the outcome, wake the greenlet.
            pending.append((phase, ms, error, time.time() - ms / 1000.0))
            handle.wake()

        async def one_session() -> str:
            transport = make_transport(settings, logger=logger)
            scenario = type(self).scenario
            return await run_session(
                plan, transport, record, stopping=stopping, scenario=scenario, logger=logger
            )

        loop_thread.start(one_session(), handle)
        try:
            while True:
                handle.wait()
                self._fire(pending)
                if handle.done():
                    break
        finally:
            self._stopping = None
            if handle.done():
                handle.close()
            else:
                # Locust is stopping this user: end the session on the loop, don't wait.
                loop_thread.call_soon(stopping.set)
        handle.result()

    def on_stop(self) -> None:
        """End a session still running when Locust stops the user."""
        if self._stopping is not None:
            _asyncio_thread().call_soon(self._stopping.set)

    def _fire(self, pending: list[tuple[str, float, BaseException | None, float]]) -> None:
        url = redact_url(self.host) if self.host else self.host
        while pending:
            phase, ms, error, started = pending.pop(0)
            self.environment.events.request.fire(
                request_type=phase,
                name=self.name or url,
                response_time=ms,
                response_length=0,
                exception=error,
                context={},
                start_time=started,
                url=url,
            )
