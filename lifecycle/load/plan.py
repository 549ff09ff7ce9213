"""What a load run does: the plan, and the hook types a run and its sessions share."""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Literal

from lifecycle.start import APIRequest

__all__ = ["LoadPlan", "Outcome", "Recorder"]

Recorder = Callable[[str, float, "BaseException | None"], None]
"""Gets every phase outcome: ``(phase, milliseconds, error or None)``."""
Outcome = Literal["ok", "failed", "interrupted"]


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
