"""The event bus: callbacks, the bounded callback queue, its dispatcher, and event streams.

The client emits each event here once. Every open :class:`EventStream` (and every
``wait_for``) sees it at once, when it is emitted; if callbacks are registered for it, it
also goes into the callback queue, which one task (the dispatcher) empties, running the
callbacks one at a time, in the order the events happened.

Both queues are bounded, because nothing a bot sends may grow memory without bound. The
callback queue has three tiers (:mod:`lifecycle.tiers`): lifecycle events and fatal errors
are never dropped; high-rate events (audio, tokens, levels, metrics, logs) are dropped
first, oldest first; everything else only when no high-rate event is queued. A stream drops its
oldest non-lifecycle event when it falls ``maxsize`` behind. Both also hold at most
:data:`MAX_PENDING_BYTES` of bot data, since a count alone would allow 10,000 1 MiB messages.

Decisions:

* A drain (``disconnect()``, and a new session's start) waits ``drain_timeout``, discards
  the droppable rest, then gives the never-dropped callbacks :data:`LIFECYCLE_GRACE` more:
  so ``on_disconnected`` still runs, and a hanging user callback cannot hold either call
  for ever: a callback still running then is cancelled and its dispatcher abandoned (a new
  one runs what is queued), so one stuck callback never silences the later sessions. A
  start is bounded too because a session that ended by itself (the bot left mid-flood)
  was never drained by a ``disconnect()``: its queue could hold minutes of
  callbacks. What is still queued for an ended session when the next one starts is skipped
  (counted), never delivered into the new session.
* A callback's ``BaseException`` is logged like an ``Exception`` (``GeneratorExit``, a
  stray ``CancelledError``) and the dispatcher goes on, except ``KeyboardInterrupt`` and
  ``SystemExit`` (the program is stopping) and a ``CancelledError`` while the dispatcher
  task itself is being cancelled (the loop is shutting down).
"""

from __future__ import annotations

import asyncio
import inspect
import time
import weakref
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any, Final, Protocol

from lifecycle import timeouts
from lifecycle.errors import SessionClosedError
from lifecycle.events import HIGH_RATE_EVENTS
from lifecycle.logs import SafeLogger, describe_exception
from lifecycle.media import AudioFrame
from lifecycle.tiers import (
    MAX_PENDING_BYTES,
    MAYBE_KEPT,
    NEVER_DROPPED_EVENTS,
    Tier,
    TieredQueue,
    tier_of,
)

__all__ = [
    "HIGH_RATE_EVENTS",
    "LIFECYCLE_GRACE",
    "MAX_PENDING_BYTES",
    "NEVER_DROPPED_EVENTS",
    "ClientEvent",
    "EventBus",
    "EventStream",
    "Tier",
    "check_seconds",
    "tier_of",
]

EventCallback = Callable[..., Any]

SESSION_END_EVENT: Final = "on_disconnected"
"""Fired once when a session reaches DISCONNECTED: ``wait_for`` gives up on it."""

LIFECYCLE_GRACE: Final = 1.0
"""Seconds a drain still waits for the never-dropped callbacks once it discarded the rest."""


def check_seconds(value: object, what: str) -> float:
    """``value`` as a finite, non-negative number of seconds; TypeError/ValueError if not."""
    return timeouts.check_seconds(value, what, allow_zero=True)


def check_size(value: object, what: str) -> int:
    """``value`` as a positive int; TypeError/ValueError if not."""
    if isinstance(value, bool) or not isinstance(value, int):
        raise TypeError(f"{what} must be an int, not {type(value).__name__}")
    if value < 1:
        raise ValueError(f"{what} must be >= 1, not {value!r}")
    return value


@dataclass(frozen=True, slots=True)
class ClientEvent:
    """One event as a stream yields it."""

    name: str
    """The callback name, e.g. ``"on_bot_ready"``."""
    data: Any
    """The callback's argument; None for events without one."""
    session_id: int
    """The session it belongs to."""
    at: float
    """``time.monotonic()`` seconds when it was emitted."""


def _returning(awaitable: Any) -> EventCallback:
    """A callback that returns ``awaitable`` (what an inline callback returned): the
    dispatcher awaits it in its place, with the same error handling."""

    def started(*args: Any) -> Any:
        return awaitable

    return started


class _Subscriber(Protocol):
    def feed(self, event: ClientEvent, tier: Tier, size: int) -> None: ...


class EventStream:
    """The events of a client as an async iterator; see :meth:`PipecatClient.events`.

    It collects from the moment it is made until it is closed (leaving its ``async with``
    block, or :meth:`close`), across sessions. It holds at most ``maxsize`` events that
    were not read yet (and :data:`MAX_PENDING_BYTES` of bot data); past that it drops its
    oldest one (never a lifecycle event). One task reads it.
    """

    def __init__(
        self,
        bus: EventBus,
        names: frozenset[str] | None,
        maxsize: int,
        log: SafeLogger,
        max_bytes: int = MAX_PENDING_BYTES,
    ) -> None:
        self._bus = bus
        self._names = names
        self._log = log
        self._queue: TieredQueue[ClientEvent] = TieredQueue(maxsize, max_bytes)
        self._waiter: asyncio.Future[None] | None = None
        self._closed = False
        self.dropped = 0
        """How many events this stream dropped because it fell behind its bounds."""

    def feed(self, event: ClientEvent, tier: Tier, size: int) -> None:
        """Take one emitted event (the bus calls this)."""
        if self._names is not None and event.name not in self._names:
            return
        # A stream keeps order and drops only oldest-first: one droppable tier.
        dropped = self._queue.push(event, Tier.KEEP if tier is Tier.KEEP else Tier.NORMAL, size)
        if dropped:
            self.dropped += dropped
            if self.dropped == dropped:
                self._log.warning(
                    "event stream fell behind: dropping its oldest events",
                    session_id=event.session_id,
                    maxsize=self._queue.maxsize,
                )
        waiter = self._waiter
        if waiter is not None and not waiter.done():
            waiter.set_result(None)

    def close(self) -> None:
        """Stop collecting; an ``async for`` over the stream ends."""
        self._closed = True
        self._queue.clear()
        self._bus.unsubscribe(self)
        waiter = self._waiter
        if waiter is not None and not waiter.done():
            waiter.set_result(None)

    @property
    def closed(self) -> bool:
        """Whether the stream was closed."""
        return self._closed

    async def __aenter__(self) -> EventStream:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        self.close()

    def __aiter__(self) -> EventStream:
        return self

    async def __anext__(self) -> ClientEvent:
        while not self._closed:
            if self._queue:
                return self._queue.pop()
            self._waiter = asyncio.get_running_loop().create_future()
            try:
                await self._waiter
            finally:
                self._waiter = None
        raise StopAsyncIteration


class _Waiter:
    """One ``wait_for`` call: resolves its future on the first matching event."""

    __slots__ = ("__weakref__", "future", "name", "predicate")

    def __init__(
        self, name: str, predicate: Callable[[Any], object] | None, future: asyncio.Future[Any]
    ) -> None:
        self.name = name
        self.predicate = predicate
        self.future = future

    def feed(self, event: ClientEvent, tier: Tier, size: int) -> None:
        if self.future.done():
            return
        if event.name == self.name:
            try:
                matched = self.predicate is None or self.predicate(event.data)
            except Exception as exc:  # the caller's predicate: its error is theirs to see
                self.future.set_exception(exc)
                return
            except (KeyboardInterrupt, SystemExit):
                raise
            except BaseException as exc:
                # GeneratorExit, a stray CancelledError: raised here it would end the
                # transport's reader and leave the session READY with nobody reading.
                error = RuntimeError(f"the wait_for predicate raised {type(exc).__name__}")
                error.__cause__ = exc
                self.future.set_exception(error)
                return
            if matched:
                self.future.set_result(event.data)
        elif event.name == SESSION_END_EVENT:
            self.future.set_exception(
                SessionClosedError(f"the session ended before {self.name} fired")
            )


class EventBus:
    """Callback registry, bounded callback queue, serial dispatcher and streams of one client.

    ``event_names``: every event name that may be registered or emitted.
    ``session_id``: returns the current session's id; events are stamped with it, and a
    queued event whose session is no longer current is discarded, never delivered.
    """

    def __init__(
        self,
        event_names: Iterable[str],
        *,
        session_id: Callable[[], int],
        log: SafeLogger,
        max_pending: int = 10_000,
        max_pending_bytes: int = MAX_PENDING_BYTES,
        drain_timeout: float = 5.0,
    ) -> None:
        self.names: frozenset[str] = frozenset(event_names)
        self.drain_timeout = check_seconds(drain_timeout, "drain_timeout")
        self._max_bytes = check_size(max_pending_bytes, "max_pending_bytes")
        self._queue: TieredQueue[tuple[int, str, tuple[Any, ...]]] = TieredQueue(
            check_size(max_pending, "max_pending_events"), self._max_bytes
        )
        self._session_id = session_id
        self._log = log
        self._handlers: dict[str, list[EventCallback]] = {name: [] for name in self.names}
        # Weak: a stream its owner dropped without closing is collected, not fed forever.
        # Keyed by id() so subscribing and unsubscribing are O(1) (thousands of wait_for
        # calls at once); the tuple emit walks is rebuilt once after changes, when needed.
        self._subscribers: dict[int, weakref.ref[_Subscriber]] = {}
        self._feeders: tuple[weakref.ref[_Subscriber], ...] | None = ()
        self._dispatcher: asyncio.Task[None] | None = None
        self._running_now = False
        # An event whose callbacks began inline until one returned an awaitable: the
        # dispatcher goes on with it (the awaitable first) before anything queued.
        self._resume: tuple[int, str, tuple[Any, ...], tuple[EventCallback, ...]] | None = None
        self._warned_session = -1
        self._warned_stale = -1
        self.dropped = 0
        """Events dropped by the queue's bound or a drain's time limit, over all sessions."""
        self.inbound_size = 0
        """Bytes of the bot message being handled now (set around it by the client): the
        events it fires count them against the byte bound."""

    # ------------------------------------------------------------- callbacks

    def handlers_for(self, name: str) -> list[EventCallback]:
        """The (mutable) callback list of ``name``; unknown names raise ValueError."""
        try:
            return self._handlers[name]
        except KeyError:
            raise self._unknown(name) from None

    def _unknown(self, name: str) -> ValueError:
        known = ", ".join(sorted(self.names))
        return ValueError(f"unknown event {name!r}; known events: {known}")

    def emit(self, name: str, args: tuple[Any, ...] = (), now: bool = False) -> None:
        """Fire ``name`` with ``args`` (the callbacks' arguments, as a tuple: a star-args
        call costs as much again per event): feed every stream now, queue the callbacks if
        any are registered.

        Against the byte bound it counts :attr:`inbound_size`, or an
        :class:`AudioFrame` argument's PCM. ``now``: the caller has finished handling what
        fired it, so when nothing is queued or running, the callbacks of a droppable event
        run here at once (the order is the same; a task and two queue steps are saved). An
        awaitable a callback returns, and the callbacks after it, go to the dispatcher.
        """
        feeders = self._feeders
        if feeders is None:
            feeders = self._feeders = tuple(self._subscribers.values())
        if feeders:
            self._feed(feeders, name, args)
        handled = self._handlers[name]
        if not handled:
            return  # nobody listens: nothing to size or queue
        if now and not (self._running_now or self._queue.size):  # none running, none queued
            dispatcher = self._dispatcher
            if (dispatcher is None or dispatcher.done()) and (
                name not in MAYBE_KEPT or tier_of(name, args) is not Tier.KEEP
            ):
                self._run_now(name, args, tuple(handled))
                return
        session_id = self._session_id()
        tier = tier_of(name, args)
        dropped = self._queue.push((session_id, name, args), tier, self._size_of(args))
        if dropped:
            self._count_dropped(session_id, dropped)
        self._ensure_dispatcher()

    def _feed(
        self, feeders: tuple[weakref.ref[_Subscriber], ...], name: str, args: tuple[Any, ...]
    ) -> None:
        event = ClientEvent(name, args[0] if args else None, self._session_id(), time.monotonic())
        tier, size = tier_of(name, args), self._size_of(args)
        for ref in feeders:
            subscriber = ref()
            if subscriber is not None:
                subscriber.feed(event, tier, size)

    def _size_of(self, args: tuple[Any, ...]) -> int:
        # The bytes an event holds: its message's wire size, or an audio frame's PCM.
        if args and isinstance(args[0], AudioFrame):
            return max(self.inbound_size, len(args[0].pcm))
        return self.inbound_size

    def _run_now(
        self, name: str, args: tuple[Any, ...], callbacks: tuple[EventCallback, ...]
    ) -> None:
        self._running_now = True  # an event a callback fires queues behind this one
        try:
            for index, callback in enumerate(callbacks):
                try:
                    result = callback(*args)
                except (KeyboardInterrupt, SystemExit):
                    raise
                except BaseException as exc:  # a sync callback cannot be cancelled: its bug
                    self._callback_failed(self._session_id(), name, exc)
                    continue
                if result is not None and inspect.isawaitable(result):
                    # The dispatcher awaits it, then runs the callbacks after it.
                    rest = (_returning(result), *callbacks[index + 1 :])
                    self._resume = (self._session_id(), name, args, rest)
                    self._ensure_dispatcher()
                    return
        finally:
            self._running_now = False

    def _ensure_dispatcher(self) -> None:
        if self._dispatcher is None or self._dispatcher.done():
            self._dispatcher = asyncio.get_running_loop().create_task(self._dispatch())

    def _count_dropped(self, session_id: int, count: int) -> None:
        self.dropped += count
        if self._warned_session != session_id:
            self._warned_session = session_id
            self._log.warning(
                "callback queue full: dropping events (callbacks too slow for the bot's rate)",
                session_id=session_id,
                max_pending_events=self._queue.maxsize,
                max_pending_bytes=self._max_bytes,
            )

    def _skip_stale(self, session_id: int) -> None:
        self.dropped += 1
        if self._warned_stale != session_id:
            self._warned_stale = session_id
            self._log.warning(
                "callbacks of an ended session skipped: the next session has started",
                session_id=session_id,
            )

    async def _dispatch(self) -> None:
        # One task runs every callback, serially and in event order.
        queue = self._queue
        me = asyncio.current_task()
        while self._dispatcher is me:  # an abandoned dispatcher stops here
            if self._resume is not None:  # an event whose callbacks began inline
                (session_id, name, args, callbacks), self._resume = self._resume, None
            elif queue:
                session_id, name, args = queue.pop()
                if session_id != self._session_id():
                    # A newer session started: an ended session's events never reach it.
                    self._skip_stale(session_id)
                    continue
                callbacks = tuple(self._handlers[name])
            else:
                return
            for callback in callbacks:
                try:
                    result = callback(*args)
                    if result is not None and inspect.isawaitable(result):
                        await result
                except (KeyboardInterrupt, SystemExit):
                    raise
                except BaseException as exc:
                    # A CancelledError is the dispatcher's own only if someone cancelled it
                    # (loop shutdown); any other BaseException (GeneratorExit, a callback's
                    # stray CancelledError) is a callback bug, logged like an Exception.
                    task = asyncio.current_task()
                    if isinstance(exc, asyncio.CancelledError) and task and task.cancelling():
                        raise
                    self._callback_failed(session_id, name, exc)

    def _callback_failed(self, session_id: int, name: str, exc: BaseException) -> None:
        self._log.error(
            "event callback failed",
            session_id=session_id,
            event_name=name,
            error=describe_exception(exc, with_traceback=True),
        )

    # ----------------------------------------------------------------- drain

    async def drain(self, session_id: int, *, since: float | None = None) -> None:
        """Wait for the queued callbacks, at most ``drain_timeout`` seconds from ``since``.

        ``since`` (loop time; default now) is when the wait began: disconnect() passes its
        own start, since callbacks run while the session ends. Then the droppable events of
        sessions up to ``session_id`` still queued are discarded (counted, logged) and the
        never-dropped ones (``on_disconnected``...) get :data:`LIFECYCLE_GRACE` seconds
        more. From inside a callback, returns at once (a callback cannot wait for the
        callbacks queued behind itself).
        """
        if self._dispatcher is not None and asyncio.current_task() is self._dispatcher:
            return
        loop = asyncio.get_running_loop()
        budget = self.drain_timeout - (0.0 if since is None else loop.time() - since)
        if await self._wait_idle(max(budget, 0.0)):
            return
        discarded = self._queue.discard(lambda item: item[0] <= session_id)
        if discarded:
            self.dropped += discarded
            self._log.warning(
                "callbacks discarded: drain_timeout passed with events still queued",
                session_id=session_id,
                discarded=discarded,
                drain_timeout=self.drain_timeout,
            )
        if not await self._wait_idle(LIFECYCLE_GRACE):
            # A callback that never returns must not silence every later session: its
            # dispatcher is cancelled and abandoned; a new one runs what is queued.
            self._log.warning(
                "a callback is still running after drain_timeout; abandoned (cancelled)",
                session_id=session_id,
                drain_timeout=self.drain_timeout,
            )
            stuck, self._dispatcher = self._dispatcher, None
            if stuck is not None:
                stuck.cancel()
            if self._queue or self._resume is not None:
                self._ensure_dispatcher()

    async def _wait_idle(self, timeout: float) -> bool:
        """Wait until nothing is queued or running; False if ``timeout`` passed first."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while True:
            if self._queue or self._resume is not None:
                self._ensure_dispatcher()  # restarts a dispatcher that was cancelled
            task = self._dispatcher
            if task is None or task.done():
                return True
            remaining = deadline - loop.time()
            if remaining <= 0:
                return False
            # asyncio.wait never raises the task's outcome into this caller.
            await asyncio.wait((task,), timeout=remaining)

    # --------------------------------------------------------------- streams

    def stream(self, names: Iterable[str], maxsize: int) -> EventStream:
        """A new :class:`EventStream` of ``names`` (all events if empty), collecting now."""
        wanted = frozenset(names)
        for name in wanted:
            if name not in self.names:
                raise self._unknown(name)
        stream = EventStream(
            self, wanted or None, check_size(maxsize, "maxsize"), self._log, self._max_bytes
        )
        self._subscribe(stream)
        return stream

    def _subscribe(self, subscriber: _Subscriber) -> None:
        key = id(subscriber)
        self._subscribers[key] = weakref.ref(subscriber, lambda _: self._forget(key))
        self._feeders = None

    def unsubscribe(self, subscriber: _Subscriber) -> None:
        """Stop feeding ``subscriber``."""
        ref = self._subscribers.get(id(subscriber))
        if ref is not None and ref() is subscriber:
            self._forget(id(subscriber))

    def _forget(self, key: int) -> None:
        if self._subscribers.pop(key, None) is not None:
            self._feeders = None

    async def wait_for(
        self, name: str, predicate: Callable[[Any], object] | None, timeout: object
    ) -> Any:
        """The data of the first ``name`` event from now on with ``predicate(data)`` true."""
        self.handlers_for(name)
        seconds = timeouts.check_seconds(timeout, "timeout")  # a wait: over 0 (timeouts.py)
        future: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        waiter = _Waiter(name, predicate, future)
        self._subscribe(waiter)
        try:
            async with asyncio.timeout(seconds):
                return await future
        except TimeoutError:
            if not future.cancelled():
                raise  # the predicate's own TimeoutError
            raise TimeoutError(f"{name} did not fire within {seconds} s") from None
        finally:
            self.unsubscribe(waiter)
