"""Checking timeouts given by the user: a bad one fails at once, never as an endless wait."""

from __future__ import annotations

import math
from typing import Any

__all__ = ["check_timeout"]


def check_timeout(name: str, value: Any) -> float:
    """``value`` as a float number of seconds, or the error naming ``name``.

    ``TypeError`` for anything that is not an int or float (``None`` and ``bool``
    included); ``ValueError`` for NaN, infinity, zero or a negative number.
    """
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise TypeError(f"{name} must be a number of seconds, not {type(value).__name__}")
    seconds = float(value)
    if math.isnan(seconds) or math.isinf(seconds):
        raise ValueError(f"{name} must be a finite number of seconds, not {seconds}")
    if seconds <= 0:
        raise ValueError(f"{name} must be more than 0 seconds, not {seconds}")
    return seconds
