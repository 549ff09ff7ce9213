"""What a load run does: the plan, and the hook types a run and its sessions share."""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal

from lifecycle.start import APIRequest

if TYPE_CHECKING:
    from lifecycle.media import AudioFrame

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
    speech: tuple[AudioFrame, ...] = ()
    """Frames every session speaks as its microphone, paced in real time (prepared once for
    the whole run, in the transport's input format); then ``trailing_silence`` seconds of
    silence, and the first bot output is timed from the end of the speech."""
    trailing_silence: float = 1.0
    connect_timeout: float = 30.0
    request_timeout: float = 10.0

    def __post_init__(self) -> None:
        if self.sessions < 1 or self.concurrency < 1:
            raise ValueError("sessions and concurrency must be at least 1")
        if self.rate is not None and not (math.isfinite(self.rate) and self.rate > 0):
            raise ValueError("rate must be a positive number of starts per second")
        if not (math.isfinite(self.hold) and self.hold >= 0):
            raise ValueError("hold must be a finite number of seconds >= 0")
        if not (math.isfinite(self.trailing_silence) and self.trailing_silence >= 0):
            raise ValueError("trailing_silence must be a finite number of seconds >= 0")
        if self.speech and self.say is not None:
            raise ValueError("a session either says a text or speaks audio, not both")
