"""Load runs: many sessions against one deployment, each phase measured (``load`` command).

``stats = await LoadRun(LoadPlan(start=url, sessions=200, concurrency=50), factory).run()``
where ``factory()`` builds one fresh transport per session (the engine never picks a
transport itself, so it stays on the client side of the one-way import rule). A session is
``start`` (``start_bot``), ``connect`` (until bot-ready), the body (``request``,
``first_output``, a hold, or a :data:`SessionHook` with its own ``session.phase(name)``
blocks), then ``disconnect``. Percentiles come from HDR histograms (the ``load`` extra).
"""

from __future__ import annotations

from lifecycle.deprecation import renamed
from lifecycle.load.plan import LoadPlan, Recorder
from lifecycle.load.run import LoadRun
from lifecycle.load.session import (
    PhaseError,
    SessionContext,
    SessionHook,
    SessionLostError,
    run_session,
)
from lifecycle.load.stats import PHASES, LoadStats, PhaseStats

__all__ = [
    "PHASES",
    "LoadPlan",
    "LoadRun",
    "LoadStats",
    "PhaseError",
    "PhaseStats",
    "Recorder",
    "SessionContext",
    "SessionHook",
    "SessionLostError",
    "run_session",
]


__getattr__ = renamed(__name__, {"Scenario": ("SessionHook", SessionHook)})
