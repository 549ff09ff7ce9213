"""Which events a full queue may drop, and the bounded queue that drops them.

Three tiers: lifecycle events and fatal errors are never dropped; high-rate events (audio,
tokens, levels, metrics, logs) go first, oldest first; everything else only when no
high-rate event is queued. :class:`TieredQueue` holds the event bus's callback queue and
each event stream, bounded by count and by bytes of bot data.
"""

from __future__ import annotations

import enum
from collections import deque
from collections.abc import Callable
from typing import Any, Final, Generic, TypeVar

from lifecycle.events import HIGH_RATE_EVENTS

__all__ = [
    "MAX_PENDING_BYTES",
    "MAYBE_KEPT",
    "NEVER_DROPPED_EVENTS",
    "Tier",
    "TieredQueue",
    "tier_of",
]

_T = TypeVar("_T")

NEVER_DROPPED_EVENTS: Final = frozenset(
    {
        "on_transition",
        "on_transport_state_changed",
        "on_bot_started",
        "on_connected",
        "on_bot_ready",
        "on_bot_disconnected",
        "on_disconnected",
    }
)
"""Events never dropped from the callback queue or a stream (with fatal ``on_error``)."""

MAX_PENDING_BYTES: Final = 32 * 2**20
"""Bytes of bot data (wire size, PCM) the callback queue, and each stream, holds at most:
a bot message may be 1 MiB, so the count bound alone would allow gigabytes."""


class Tier(enum.IntEnum):
    """How readily a queued event is dropped; a higher value goes first."""

    KEEP = 0
    """Lifecycle events and fatal errors: never dropped."""
    NORMAL = 1
    """Dropped only when no high-rate event is queued."""
    HIGH_RATE = 2
    """Dropped first."""


def tier_of(name: str, args: tuple[Any, ...]) -> Tier:
    """The tier of event ``name`` fired with ``args``."""
    if name == "on_error":
        return Tier.KEEP if args and getattr(args[0], "fatal", False) else Tier.HIGH_RATE
    return _TIERS.get(name, Tier.NORMAL)


# Every event's tier but on_error's (it depends on the error): one lookup per event.
_TIERS: Final[dict[str, Tier]] = {
    **dict.fromkeys(HIGH_RATE_EVENTS, Tier.HIGH_RATE),
    **dict.fromkeys(NEVER_DROPPED_EVENTS, Tier.KEEP),
}
MAYBE_KEPT: Final = NEVER_DROPPED_EVENTS | {"on_error"}
"""The events whose tier may be KEEP: every other one may run at once (EventBus.emit)."""


class TieredQueue(Generic[_T]):
    """A FIFO over tiers: pops in push order; past its bounds it drops droppable items.

    Each tier is its own deque of ``(seq, size, item)``; one sequence number across tiers
    keeps the order, so push, pop and drop are all O(1). Two bounds: ``maxsize`` items and
    ``max_bytes`` (the sizes given at push: the wire size of a bot message, the PCM of an
    audio frame), because one bot message may be 1 MiB. Over a bound the oldest item of the
    highest non-empty droppable tier goes; KEEP items are never dropped, so they alone may
    take the queue past a bound (they are few and small: a session's lifecycle events).
    """

    __slots__ = ("_bytes", "_seq", "_tiers", "max_bytes", "maxsize", "size")

    def __init__(self, maxsize: int, max_bytes: int) -> None:
        self.maxsize = maxsize
        self.max_bytes = max_bytes
        self._seq = 0
        self.size = 0
        """How many items are queued (``len()``, as an attribute: read for every event)."""
        self._bytes = 0
        self._tiers: list[deque[tuple[int, int, _T]]] = [deque() for _ in Tier]

    def __len__(self) -> int:
        return self.size

    def push(self, item: _T, tier: Tier, size: int = 0) -> int:
        """Append ``item``; return how many items were dropped to stay within the bounds."""
        self._seq += 1
        self._tiers[tier].append((self._seq, size, item))
        self.size += 1
        self._bytes += size
        dropped = 0
        while self.size > self.maxsize or self._bytes > self.max_bytes:
            high, normal = self._tiers[Tier.HIGH_RATE], self._tiers[Tier.NORMAL]
            victims = high or normal
            if not victims:
                break  # only never-dropped items: they may exceed the bounds
            self._bytes -= victims.popleft()[1]
            self.size -= 1
            dropped += 1
        return dropped

    def pop(self) -> _T:
        """Remove and return the oldest item; IndexError when empty."""
        oldest: deque[tuple[int, int, _T]] | None = None
        for queue in self._tiers:
            if queue and (oldest is None or queue[0][0] < oldest[0][0]):
                oldest = queue
        if oldest is None:
            raise IndexError("pop from an empty queue")
        _, size, item = oldest.popleft()
        self.size -= 1
        self._bytes -= size
        return item

    def discard(self, matches: Callable[[_T], bool]) -> int:
        """Drop every droppable item that ``matches``; return how many."""
        dropped = 0
        for tier in (Tier.NORMAL, Tier.HIGH_RATE):
            queue = self._tiers[tier]
            kept = deque(entry for entry in queue if not matches(entry[2]))
            dropped += len(queue) - len(kept)
            self._bytes -= sum(entry[1] for entry in queue) - sum(entry[1] for entry in kept)
            self._tiers[tier] = kept
        self.size -= dropped
        return dropped

    def clear(self) -> None:
        """Drop everything."""
        for queue in self._tiers:
            queue.clear()
        self.size = self._bytes = 0
