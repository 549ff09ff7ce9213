"""One job: a set of background tasks that can be cancelled together.

The transports and the testing bots start short-lived tasks (readers, handlers, timers) that
must not outlive their connection; a :class:`TaskSet` keeps a strong reference to each until
it is done and cancels them all, bounded, when the connection ends.
"""

from __future__ import annotations

import asyncio
from collections.abc import Coroutine, Iterator
from typing import Any

__all__ = ["TaskSet"]


class TaskSet:
    """Strong references to running tasks, dropped as they finish."""

    def __init__(self) -> None:
        """An empty set."""
        self._tasks: set[asyncio.Task[Any]] = set()

    def spawn(self, coro: Coroutine[Any, Any, Any], name: str | None = None) -> asyncio.Task[Any]:
        """Run ``coro`` in a task of this set; returns the task."""
        task = asyncio.get_running_loop().create_task(coro, name=name)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        return task

    def __iter__(self) -> Iterator[asyncio.Task[Any]]:
        """The tasks still running (a snapshot)."""
        return iter(list(self._tasks))

    def __len__(self) -> int:
        """How many tasks are still running."""
        return len(self._tasks)

    async def cancel_all(self, timeout: float | None = None) -> None:
        """Cancel every task but the calling one and wait for them (at most ``timeout`` s)."""
        current = asyncio.current_task()
        tasks = [task for task in self._tasks if task is not current]
        for task in tasks:
            task.cancel()
        if tasks:
            await asyncio.wait(tasks, timeout=timeout)
