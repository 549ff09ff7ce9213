"""pipecat.evals' scenario files (pipecat-ai 1.14), read whole and validated.

The format is ``pipecat.evals.scenario``'s: a file has a ``name:`` and a ``scenarios:``
list (or, the older shape, one scenario's keys at its top); every scenario key may also
sit at the top of the file as the default of every scenario in it, and ``!include``
splices in another file (see :mod:`lifecycle.testing.yaml_source`). A scripted scenario
has ``turns:``; each turn sends ``user:`` text (RTVI ``send-text``), plays an ``audio:``
WAV file, presses ``dtmf:`` keys or sends an ``image:`` with its text, optionally
``send_after:`` an event, then expects events in order::

    name: greeting
    judge: !include judge_text.yaml
    scenarios:
      - name: says_hello
        turns:
          - user: "hello"
            expect:
              - event: llm_response
                text_contains: "hello"
                within_ms: 5000

:func:`load_scenario_file` checks the whole file and reports every problem in one
:class:`ScenarioFileErrors`, each ``FILE:LINE: KEY: problem``; nothing contacts an
endpoint or imports a factory. docs/evals.md maps every key to what the runner does.

Hooks for the work of other modules: a ``user:`` block with ``modality: audio`` becomes a
:class:`UserBlock` the scripted runner hands to the speaking caller
(:func:`audio_support_missing` says whether this build has it), and a scenario with
``persona:`` goes to ``lifecycle.testing.simulation_file.parse_simulation`` when that
module exists.
"""

from __future__ import annotations

import warnings
from collections.abc import Awaitable, Callable
from os import PathLike
from pathlib import Path
from typing import Any, Final

from lifecycle.testing.scenario_model import (
    EVENTS,
    FUNCTION_CALL_EVENTS,
    MAX_WITHIN_MS,
    Call,
    Expectation,
    JudgeBlock,
    ScenarioFile,
    ScenarioFileError,
    ScenarioFileErrors,
    ScriptedScenario,
    ScriptedTurn,
    SendAfter,
    UserBlock,
    audio_support_missing,
)

__all__ = [
    "EVENTS",
    "FUNCTION_CALL_EVENTS",
    "MAX_WITHIN_MS",
    "Call",
    "Expectation",
    "JudgeBlock",
    "ScenarioFailedError",
    "ScenarioFile",
    "ScenarioFileError",
    "ScenarioFileErrors",
    "ScriptedScenario",
    "ScriptedTurn",
    "SendAfter",
    "UserBlock",
    "audio_support_missing",
    "load_scenario_file",
    "load_scenarios",
    "load_session_hook",
]


def load_scenario_file(
    path: str | PathLike[str], *, judge_given: bool = False, modality: str | None = None
) -> ScenarioFile:
    """The scenarios of one file, validated whole; :class:`ScenarioFileErrors` lists problems.

    ``judge_given``: a judge comes from the command line, so ``eval:`` without a
    ``judge:`` block is fine. ``modality`` (``text``/``audio``, ``test --modality``)
    replaces every ``user:`` block's modality before the file is checked.
    """
    from lifecycle.testing.scenario_check import check_file

    return check_file(Path(path), judge_given=judge_given, modality=modality)


def load_scenarios(path: str | PathLike[str]) -> list[ScriptedScenario]:
    """The scripted scenarios of one file (:func:`load_scenario_file` without the file)."""
    scenarios = load_scenario_file(path, judge_given=True).scenarios
    return [s for s in scenarios if isinstance(s, ScriptedScenario)]


class ScenarioFailedError(AssertionError):
    """A scenario run as a load session's hook failed (the message is its first failure)."""


def load_session_hook(path: str | PathLike[str]) -> Callable[[Any], Awaitable[None]]:
    """A ``pipecat-lifecycle load --scenario FILE`` hook: every scenario of the file, in turn.

    The hook takes the load run's session context (its ``client`` is READY) and raises
    :class:`ScenarioFailedError` when a scenario fails; the file is validated here, once.
    """
    scenarios = load_scenarios(path)

    async def run_file(context: Any) -> None:
        from lifecycle.testing.scripted import run_scenario

        for scenario in scenarios:
            result = await run_scenario(scenario, context.client)
            if not result.passed:
                raise ScenarioFailedError(result.failures[0])

    return run_file


_DEPRECATED: Final = {"Turn": "ScriptedTurn", "Scenario": "ScriptedScenario"}


def __getattr__(name: str) -> Any:
    """The old names (``Turn``, ``Scenario``), with a DeprecationWarning (one release)."""
    new = _DEPRECATED.get(name)
    if new is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    warnings.warn(
        f"lifecycle.testing.scenario.{name} is deprecated; use {new}",
        DeprecationWarning,
        stacklevel=2,
    )
    return globals()[new]
