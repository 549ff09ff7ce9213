"""Bounded waits and a recorder of every client event, for tests."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

from lifecycle import EVENT_NAMES, PipecatClient

T = TypeVar("T")

WAIT = 15.0
"""Upper bound of any single await in a test: a bug fails instead of hanging. Generous:
on a busy machine (``make test-loaded``) a 2 MiB start body took over 5 s to refuse."""


async def within(awaitable: Awaitable[T], timeout: float = WAIT) -> T:
    """Await with a bound."""
    return await asyncio.wait_for(awaitable, timeout)


class Recorder:
    """Records every client event, in order, and lets a test wait for one."""

    def __init__(self, client: PipecatClient) -> None:
        self.events: list[tuple[str, tuple[Any, ...]]] = []
        self._changed = asyncio.Event()

        for name in sorted(EVENT_NAMES):
            client.add_event_handler(name, self._make(name))

    def _make(self, name: str) -> Callable[..., None]:
        def record(*args: Any) -> None:
            self.events.append((name, args))
            self._changed.set()

        return record

    def names(self, *, transitions: bool = False) -> list[str]:
        skip = set() if transitions else {"on_transition", "on_transport_state_changed"}
        return [n for n, _ in self.events if n not in skip]

    def count(self, name: str) -> int:
        return sum(1 for n, _ in self.events if n == name)

    def args(self, name: str) -> list[tuple[Any, ...]]:
        return [a for n, a in self.events if n == name]

    def states(self) -> list[str]:
        return [str(a[0].value) for n, a in self.events if n == "on_transport_state_changed"]

    async def wait_for(self, name: str, count: int = 1) -> tuple[Any, ...]:
        async def waiter() -> tuple[Any, ...]:
            while self.count(name) < count:
                self._changed.clear()
                await self._changed.wait()
            return self.args(name)[count - 1]

        return await within(waiter())
