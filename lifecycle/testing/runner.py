"""Deprecated: the scripted runner moved to :mod:`lifecycle.testing.scripted` (one release).

Importing this module warns; every name it had is still here.
"""

from __future__ import annotations

import warnings

from lifecycle.testing.scripted import (
    DEFAULT_TIMEOUT_MS,
    ExpectationResult,
    Judge,
    ScenarioResult,
    run_scenario,
)

__all__ = ["DEFAULT_TIMEOUT_MS", "ExpectationResult", "Judge", "ScenarioResult", "run_scenario"]

warnings.warn(
    "lifecycle.testing.runner is deprecated; use lifecycle.testing.scripted",
    DeprecationWarning,
    stacklevel=2,
)
