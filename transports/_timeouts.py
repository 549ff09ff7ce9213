"""Checking the transports' timeouts: a bad one fails when the transport is built.

Same rules as the client's timeouts (TypeError for a non-number, ValueError for NaN, an
infinity, zero or less): each would otherwise mean an endless wait or none at all.
"""

from __future__ import annotations

import math

__all__ = ["check_seconds"]


def check_seconds(name: str, value: object, *, optional: bool = False) -> float | None:
    """``value`` as float seconds (None passes if ``optional``), else an error naming ``name``."""
    if value is None and optional:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise TypeError(f"{name} must be a number of seconds, not {type(value).__name__}")
    seconds = float(value)
    if not math.isfinite(seconds) or seconds <= 0:
        raise ValueError(f"{name} must be a finite number of seconds over 0, not {value!r}")
    return seconds
