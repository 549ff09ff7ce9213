"""Simulation files on the command line: ``test`` runs them, ``load --scenario`` repeats them.

``pipecat-lifecycle test`` hands every simulation (a scenario with ``persona:``) to
:func:`run_simulation`: each of its ``runs`` (times ``--repeat``) is a session of its own in
which a :class:`~lifecycle.testing.simulation.SimulatedCaller` talks to the bot; the persona
model is the file's ``simulator:`` block unless ``--simulator-url`` / ``--simulator-model``
override it, the judge the file's ``judge.eval:`` block unless ``--judge`` or ``--judge-url``
/ ``--judge-model`` do. ``--max-model-calls`` caps each run's model calls (the file's
``max_model_calls:`` otherwise, default 100). ``--logs-dir DIR`` gets one conversation file
per run (``<file>__<scenario>__<run>.conversation.json``), ``--report DIR`` one HTML timeline.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import re
import sys
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Final, TextIO

from lifecycle.cli.options import positive_int
from lifecycle.cli.output import unreachable
from lifecycle.errors import PipecatClientError
from lifecycle.printable import printable

if TYPE_CHECKING:
    from lifecycle.cli.output import Output
    from lifecycle.client import PipecatClient
    from lifecycle.start import StartSettings
    from lifecycle.testing.junit import Case
    from lifecycle.testing.model import ModelEndpoint
    from lifecycle.testing.simulation import SimulationResult
    from lifecycle.testing.simulation_file import SimulationSpec
    from lifecycle.testing.simulation_judge import JudgeFn
    from lifecycle.testing.simulation_load import SimulationHook
    from lifecycle.testing.voice import Voice

__all__ = [
    "SimulationOutcome",
    "add_simulation_options",
    "exit_code",
    "junit_cases",
    "print_simulation",
    "run_simulation",
    "run_simulations",
    "simulation_hook",
    "write_conversation",
]

_SAFE: Final = re.compile(r"[^\w.-]+", flags=re.ASCII)


def add_simulation_options(parser: argparse.ArgumentParser) -> None:
    """``--simulator-url/-model``, ``--max-model-calls``, ``--repeat``, ``--logs-dir``."""
    add_model_options(parser)
    parser.add_argument(
        "--repeat",
        type=positive_int,
        default=1,
        metavar="N",
        help="run every scenario N times (pass rate per scenario; exit 1 if any run failed)",
    )
    parser.add_argument(
        "--logs-dir",
        metavar="DIR",
        help="write each simulated run's conversation JSON to DIR (made if missing)",
    )


def add_model_options(parser: argparse.ArgumentParser, *, judge: bool = False) -> None:
    """The persona model's options (and, with ``judge``, ``--judge-url/--judge-model``)."""
    group = parser.add_argument_group("simulated callers (files with persona:)")
    group.add_argument(
        "--simulator-url",
        metavar="URL",
        help="OpenAI-compatible base URL of the persona model (overrides simulator:)",
    )
    group.add_argument(
        "--simulator-model", metavar="NAME", help="the persona model (overrides simulator:)"
    )
    group.add_argument(
        "--max-model-calls",
        type=positive_int,
        metavar="N",
        help="cap on model calls per run, persona and judge together (default: the file's "
        "max_model_calls:, else 100)",
    )
    if judge:
        group.add_argument("--judge-url", metavar="URL", help="an OpenAI-compatible judge")
        group.add_argument("--judge-model", metavar="NAME", help="the judge endpoint's model")


def simulation_hook(path: str, args: argparse.Namespace) -> SimulationHook | None:
    """``load --scenario FILE``: the hook of a file of simulations (None: it has none).

    ``ValueError`` for a file that mixes scripted scenarios and simulations, or whose models
    cannot be resolved.
    """
    from lifecycle.testing.scenario import ScriptedScenario, load_scenario_file
    from lifecycle.testing.simulation_load import SimulationHook

    judge_given = getattr(args, "judge_url", None) is not None
    scenarios = load_scenario_file(path, judge_given=judge_given).scenarios
    simulations = [s for s in scenarios if not isinstance(s, ScriptedScenario)]
    if not simulations:
        return None
    if len(simulations) != len(scenarios):
        raise ValueError(f"{path}: holds scripted scenarios and simulations: give one kind")
    return SimulationHook(
        simulations,
        lambda spec: (persona_endpoint(spec, args), *default_judge(spec, args)),
        max_model_calls=args.max_model_calls,
    )


@dataclass
class SimulationOutcome:
    """A simulation's runs; ``error`` when it could not run at all."""

    spec: SimulationSpec
    results: list[SimulationResult] = field(default_factory=list)
    error: str | None = None
    unreachable: bool = False

    @property
    def passed(self) -> bool:
        """Every run passed (and there was one)."""
        return self.error is None and bool(self.results) and all(r.passed for r in self.results)

    @property
    def pass_rate(self) -> float:
        """The share of runs that passed."""
        runs = len(self.results)
        return sum(r.passed for r in self.results) / runs if runs else 0.0

    def to_json(self) -> dict[str, Any]:
        """A JSON-ready summary (``--json``)."""
        return {
            "name": self.spec.name,
            "kind": "simulation",
            "passed": self.passed,
            "pass_rate": round(self.pass_rate, 4),
            "runs": [r.to_json() for r in self.results],
            "error": self.error,
        }


JudgeChoice = tuple["ModelEndpoint | None", "JudgeFn | None"]


def persona_endpoint(spec: SimulationSpec, args: argparse.Namespace) -> ModelEndpoint:
    """The persona model: the ``simulator:`` block, overridden by the command line."""
    from lifecycle.testing.model import endpoint_from_block

    return endpoint_from_block(spec.simulator, url=args.simulator_url, model=args.simulator_model)


def default_judge(spec: SimulationSpec, args: argparse.Namespace) -> JudgeChoice:
    """``--judge``, ``--judge-url``/``--judge-model``, or the file's ``judge.eval:`` block.

    A ``factory:`` block is imported and called as pipecat.evals does; it must return a
    ``judge(criterion, text)`` callable (one returning a Pipecat service needs pipecat.evals:
    ``--judge-url`` is the way out). Raises ``ValueError`` when no judge can be had.
    """
    from lifecycle.testing.model import endpoint_from_block

    judge_fn = getattr(args, "judge_fn", None)
    if judge_fn is not None:
        return None, judge_fn
    url, model = getattr(args, "judge_url", None), getattr(args, "judge_model", None)
    block = dict(spec.judge)
    if url is not None:
        return endpoint_from_block({**block, "factory": None}, url=url, model=model), None
    if not block:
        return None, None
    factory = block.get("factory")
    if isinstance(factory, str) and factory.strip():
        return None, _factory_judge(factory.strip(), block)
    return endpoint_from_block(block, model=model), None


def _factory_judge(path: str, block: Mapping[str, Any]) -> JudgeFn:
    from lifecycle.testing.judge import CallableJudge, JudgeUnavailableError, judge_from_factory

    try:
        built = judge_from_factory(path, block)
    except JudgeUnavailableError as exc:
        raise ValueError(str(exc)) from None
    if isinstance(built, CallableJudge):
        return built.fn
    raise ValueError(
        f"judge factory {path!r} returned a scenario judge; a simulation needs a "
        "judge(criterion, text) callable, or --judge-url URL --judge-model NAME"
    )


async def run_simulations(
    specs: Sequence[SimulationSpec],
    args: argparse.Namespace,
    settings: StartSettings,
    url: str,
    out: Output,
) -> list[SimulationOutcome]:
    """Every simulation of the command, each printed (or emitted as JSON) as it ends."""
    from lifecycle.cli.report import write_report
    from lifecycle.client import PipecatClient
    from lifecycle.contrib.transport_factory import make_transport

    def new_client() -> PipecatClient:
        return PipecatClient(make_transport(settings), connect_timeout=settings.connect_timeout)

    async def connect(client: PipecatClient) -> None:
        await client.start_bot_and_connect(settings.api_request(url))

    def report(client: PipecatClient, spec: SimulationSpec, run: int) -> None:
        path = Path(args.report) / f"{run_stem(spec, run)}.html"
        with contextlib.suppress(OSError):  # if it cannot be made, writing the file says why
            path.parent.mkdir(parents=True, exist_ok=True)
        write_report(client.trace, out, str(path))

    outcomes = []
    for spec in specs:
        outcome = await run_simulation(
            spec,
            args,
            new_client=new_client,
            connect=connect,
            out=None if out.json_mode else out.stream,
            report=report if args.report else None,
        )
        outcomes.append(outcome)
        name, runs = printable(spec.name), len(outcome.results)
        passed = sum(r.passed for r in outcome.results)
        text = (
            f"{name}: {printable(outcome.error)}"
            if outcome.error
            else f"{name}: {passed} of {runs} run(s) passed (pass rate {outcome.pass_rate:.0%})"
        )
        if out.json_mode:
            out.emit("simulation", text, **outcome.to_json())
        else:
            out.say(text)
    return outcomes


def junit_cases(outcomes: Sequence[SimulationOutcome]) -> list[Case]:
    """One JUnit case per run (and one for a simulation that could not run)."""
    from lifecycle.testing.junit import Case

    cases = []
    for outcome in outcomes:
        spec = outcome.spec
        if outcome.error is not None:
            cases.append(Case(spec.name, spec.path, spec.line, 0.0, error=outcome.error))
        for r in outcome.results:
            name = f"{spec.name} [run {r.run}]" if len(outcome.results) > 1 else spec.name
            failure = None if r.passed or r.error is not None else r.reason
            turns = "\n".join(
                f"turn {t.index}: {t.first_token_ms} ms: {t.caller} -> {t.bot}" for t in r.turns
            )
            cases.append(Case(name, spec.path, spec.line, r.duration_s, failure, r.error, turns))
    return cases


async def run_simulation(
    spec: SimulationSpec,
    args: argparse.Namespace,
    *,
    new_client: Callable[[], PipecatClient],
    connect: Callable[[PipecatClient], Awaitable[None]],
    judge_for: Callable[[SimulationSpec, argparse.Namespace], JudgeChoice] = default_judge,
    out: TextIO | None = sys.stdout,
    report: Callable[[PipecatClient, SimulationSpec, int], None] | None = None,
) -> SimulationOutcome:
    """Every run of ``spec`` (``runs`` x ``--repeat``), each in a session of its own."""
    from lifecycle.testing.simulation import SimulatedCaller

    outcome = SimulationOutcome(spec)
    try:
        model = persona_endpoint(spec, args)
        judge, judge_fn = judge_for(spec, args)
    except ValueError as exc:
        outcome.error, outcome.unreachable = f"{spec.name}: {exc}", True
        return outcome
    voice = await _voice(spec, args)
    total = spec.runs * args.repeat
    for run in range(1, total + 1):
        client = new_client()
        caller = SimulatedCaller.from_spec(
            client,
            spec,
            model=model,
            judge=judge,
            judge_fn=judge_fn,
            max_model_calls=args.max_model_calls,
            voice=voice,
        )
        try:
            await connect(client)
            result = await caller.run()
        except PipecatClientError as exc:
            caller.close()
            outcome.error = unreachable(exc)
            outcome.unreachable = True
            return outcome
        finally:
            await client.disconnect()
        result.run = run
        outcome.results.append(result)
        if out is not None:
            print_simulation(result, total, out)
        if args.logs_dir:
            write_conversation(args.logs_dir, spec, result, out or sys.stderr)
        if report is not None:
            report(client, spec, run)
        if result.unreachable:
            break  # the model endpoint is down: the next run would fail alike
    return outcome


async def _voice(spec: SimulationSpec, args: argparse.Namespace) -> Voice | None:
    """The local voice when the persona speaks (``user: {modality: audio}`` or ``--modality
    audio``; ``--modality text`` types); its ``speech:`` service is replaced by it."""
    modality = getattr(args, "modality", None) or ("audio" if spec.user_audio else "text")
    if modality != "audio":
        return None
    from lifecycle.testing.voice import local_voice

    return await asyncio.to_thread(local_voice)  # loading espeak-ng's data takes a moment


def print_simulation(result: SimulationResult, runs: int, out: TextIO) -> None:
    """The run's verdict line, then one line per turn, then each verdict."""
    verdict = "PASSED" if result.passed else "FAILED"
    which = f" run {result.run}/{runs}" if runs > 1 else ""
    print(
        f"\n{printable(result.name)}{which}  {verdict}  (ended by {result.end_reason}, "
        f"{len(result.turns)} turn(s), {result.duration_s:.2f} s, "
        f"{result.model_calls} model call(s))",
        file=out,
    )
    for turn in result.turns:
        latency = "-" if turn.first_token_ms is None else f"{turn.first_token_ms:.0f} ms"
        calls = f"  calls: {', '.join(turn.function_calls)}" if turn.function_calls else ""
        print(f"  {turn.index:>3}  {latency:>8}  caller: {_short(turn.caller)}{calls}", file=out)
        if turn.bot:
            print(f"  {'':>3}  {'':>8}  bot:    {_short(turn.bot)}", file=out)
    for v in result.verdicts:
        score = "" if v.score is None else f" {v.score:.2f}"
        print(f"  {'ok  ' if v.passed else 'FAIL'} {v.name}{score}: {_short(v.reason)}", file=out)
    if not result.passed:
        print(f"  FAIL {result.reason}", file=out)


def _short(text: str, most: int = 100) -> str:
    # Bot and model text is hostile input: control characters are shown, never sent.
    text = printable(" ".join(text.split()), newlines=False)
    return text if len(text) <= most else text[: most - 3] + "..."


def run_stem(spec: SimulationSpec, run: int) -> str:
    """``<file stem>__<scenario>__<run, 3 digits>``, safe as a file name."""
    _, slash, scenario = spec.name.partition("/")
    scenario = scenario if slash else spec.name
    stem = f"{Path(spec.path).stem}__{scenario}__{run:03d}"
    return _SAFE.sub("_", stem).lstrip(".") or "simulation"


def write_conversation(
    directory: str, spec: SimulationSpec, result: SimulationResult, out: TextIO
) -> Path | None:
    """``DIR/<stem>.conversation.json``: the run's conversation, turns and verdicts."""
    path = Path(directory) / f"{run_stem(spec, result.run)}.conversation.json"
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(result.to_json(), indent=2) + "\n", encoding="utf-8")
    except OSError as exc:
        print(f"  could not write {path}: {exc}", file=out)
        return None
    return path


def exit_code(outcomes: Sequence[SimulationOutcome]) -> int:
    """3 when a bot or model endpoint could not be reached, 1 when a run failed, else 0."""
    if any(o.unreachable or any(r.unreachable for r in o.results) for o in outcomes):
        return 3
    return 0 if all(o.passed for o in outcomes) else 1
