"""``pipecat-lifecycle load --scenario sim.yaml``: one simulated call per load session.

:class:`SimulationHook` is a load-run scenario hook (:data:`lifecycle.load.Scenario`) with a
``prepare(client)`` step the load session calls right after it makes the client, so the
simulated caller listens before bot-ready and hears the bot's greeting. Session ``i`` plays
the file's simulations in turn (``i mod n``); a run that does not pass fails its session
(phase ``scenario``), so the load summary's ``ok`` / ``sessions`` is the pass rate, and each
turn's figures go to the ``turn_*`` phases as for any session.
"""

from __future__ import annotations

import itertools
import weakref
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

from lifecycle.testing.simulation import SimulatedCaller, SimulationResult

if TYPE_CHECKING:
    from lifecycle.client import PipecatClient
    from lifecycle.testing.model import ModelEndpoint
    from lifecycle.testing.simulation_file import SimulationSpec
    from lifecycle.testing.simulation_judge import JudgeFn

__all__ = ["SimulationFailedError", "SimulationHook"]

Models = tuple["ModelEndpoint", "ModelEndpoint | None", "JudgeFn | None"]
"""The persona endpoint, and the judge's endpoint or callable."""


class SimulationFailedError(AssertionError):
    """A simulated call did not pass; the message says how it ended and why."""


class SimulationHook:
    """Runs one simulated call per READY load session (see the module docstring)."""

    def __init__(
        self,
        specs: Sequence[SimulationSpec],
        models: Callable[[SimulationSpec], Models],
        *,
        max_model_calls: int | None = None,
    ) -> None:
        """``models(spec)`` resolves each simulation's endpoints once, here (bad: ValueError)."""
        if not specs:
            raise ValueError("the file has no simulation")
        self._plans = [(spec, models(spec)) for spec in specs]
        for spec, (_, judge, judge_fn) in self._plans:
            judged = spec.success is not None or any(m.criterion for m in spec.metrics)
            if judged and judge is None and judge_fn is None:
                raise ValueError(f"{spec.name}: success: and metric criteria need a judge")
        self._max_model_calls = max_model_calls
        self._order = itertools.count()
        self._callers: weakref.WeakKeyDictionary[PipecatClient, SimulatedCaller] = (
            weakref.WeakKeyDictionary()
        )
        self.results: list[SimulationResult] = []
        """Every finished call's result, in the order they ended."""

    def prepare(self, client: PipecatClient) -> None:
        """Build the session's caller before it connects (it listens from now on)."""
        spec, (model, judge, judge_fn) = self._plans[next(self._order) % len(self._plans)]
        self._callers[client] = SimulatedCaller.from_spec(
            client,
            spec,
            model=model,
            judge=judge,
            judge_fn=judge_fn,
            max_model_calls=self._max_model_calls,
        )

    async def __call__(self, context: Any) -> None:
        """Hold the session's simulated call; raise when it did not pass."""
        caller = self._callers.pop(context.client, None)
        if caller is None:  # a load run that does not call prepare: listen from now
            self.prepare(context.client)
            caller = self._callers.pop(context.client)
        result = await caller.run()
        self.results.append(result)
        if not result.passed:
            raise SimulationFailedError(f"{result.name}: {result.reason}")

    @property
    def pass_rate(self) -> float | None:
        """The share of finished calls that passed (None before any ended)."""
        if not self.results:
            return None
        return sum(r.passed for r in self.results) / len(self.results)
