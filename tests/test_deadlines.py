"""The request timeouts' one loop timer (lifecycle/session_io.py ``RequestDeadlines``)."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from lifecycle.errors import RequestTimeoutError
from lifecycle.session_io import RequestDeadlines


def future() -> asyncio.Future[Any]:
    return asyncio.get_running_loop().create_future()


async def test_each_request_fails_at_its_own_deadline_whatever_the_order_sent() -> None:
    deadlines = RequestDeadlines(asyncio.get_running_loop())
    slow, fast, answered = future(), future(), future()
    deadlines.add(slow, "slow", 30.0)
    deadlines.add(answered, "answered", 0.01)
    deadlines.add(fast, "fast", 0.02)  # a shorter timeout than the first, sent after it
    answered.set_result("ok")
    with pytest.raises(RequestTimeoutError, match=r"no response to 'fast' within 0.02 s"):
        await asyncio.wait_for(fast, 10)
    assert answered.result() == "ok" and not slow.done()
    deadlines.close()
    assert len(deadlines) == 0


async def test_answered_entries_behind_a_slow_request_stay_bounded() -> None:
    deadlines = RequestDeadlines(asyncio.get_running_loop())
    slow = future()
    deadlines.add(slow, "slow", 30.0)
    for _ in range(10_000):  # answered at once, all behind the slow one
        done = future()
        deadlines.add(done, "echo", 30.0)
        done.set_result(None)
    assert len(deadlines) <= 1100  # the in-flight one plus what a compaction leaves to come
    deadlines.close()


async def test_a_timeout_no_request_uses_any_more_leaves_nothing_behind() -> None:
    deadlines = RequestDeadlines(asyncio.get_running_loop())
    waiting = [future() for _ in range(50)]
    for index, each in enumerate(waiting):
        deadlines.add(each, "hang", 0.001 * (1 + index % 7))  # seven different timeouts
    for each in waiting:
        with pytest.raises(RequestTimeoutError):
            await asyncio.wait_for(each, 10)
    assert len(deadlines) == 0
