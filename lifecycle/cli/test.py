"""``pipecat-lifecycle test``: run pipecat.evals' scenario files against a bot.

Every file is validated first, all of them, every problem listed (exit 2); ``--validate``
stops there. Then each scenario runs in a session of its own (``--start URL``: a start
endpoint; without it a local testing bot), ``runs:`` times, with its judge (see
:mod:`lifecycle.testing.judge`); a timing table per scenario shows each expectation's
latency from its turn's anchor, then one line per turn (see :mod:`lifecycle.turns`).
``--json`` prints JSON lines instead; ``--report DIR`` writes each run's HTML timeline.
The options come in groups, one function each, so a feature adds its own group.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import importlib
import re
import sys
import time
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Final, TextIO

from lifecycle.cli.arguments import output_path
from lifecycle.cli.exits import EXIT_FAILURE, EXIT_OK, EXIT_STARTUP, EXIT_USAGE
from lifecycle.cli.logging_setup import configure_logging
from lifecycle.cli.options import add_start_options, add_verbose, positive_float, start_settings
from lifecycle.cli.output import Output, unreachable
from lifecycle.cli.report import print_turns, write_report
from lifecycle.cli.simulate import add_simulation_options
from lifecycle.contrib.transport_factory import make_transport, testing_bot
from lifecycle.errors import PipecatClientError
from lifecycle.extras import MissingExtraError
from lifecycle.printable import printable

if TYPE_CHECKING:
    from lifecycle.client import PipecatClient
    from lifecycle.start import APIRequest, StartSettings
    from lifecycle.testing.judge import JudgeFn, JudgeSource
    from lifecycle.testing.junit import Outcome
    from lifecycle.testing.scenario import ScriptedScenario
    from lifecycle.testing.scripted import RunMemory, ScenarioResult
    from lifecycle.testing.speaking import ScenarioRecording

TEST_EPILOG: Final = """\
files: pipecat.evals' scenario format (pipecat-ai 1.14), whole: !include, scenarios:,
turns: / user: / dtmf: / audio: / image: / send_after: / expect:, judge: blocks. A DIR
runs every scenario file under it (fragments and manifests are skipped, one line each).

judges (first match wins): --judge MODULE:CALLABLE; --judge-url URL --judge-model NAME;
the file's judge.eval block (endpoint:, service: openai|ollama, factory:). The key is
$OPENAI_API_KEY (or the block's api_key_env:).

exit codes:
  0  every scenario passed (--validate: every file is valid)
  1  a scenario failed
  2  usage error, a file that is not valid (each problem as file:line: key: problem), or
     a missing extra (the pip install line is shown)
  3  the bot, a judge endpoint or a judge factory could not be reached or run
"""
MAX_TIMEOUT_S: Final = 3600.0
SIM_NO_JUDGE: Final = (
    "a simulation's success: and metric criteria need a judge: a judge: block with eval:, "
    "--judge MODULE:CALLABLE, or --judge-url URL --judge-model NAME"
)


def add_command(commands: Any) -> None:
    """Register ``test`` on the subcommand group."""
    test = commands.add_parser(
        "test",
        help="run pipecat.evals scenario files against a bot",
        description=(
            "Run pipecat.evals scenario files over the bot's production transport: text "
            "turns as send-text, audio: turns played as the microphone, dtmf: turns pressed; "
            "check the expected events, their latency and the judge's verdicts."
        ),
        epilog=TEST_EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    test.add_argument("files", nargs="+", metavar="FILE|DIR", help="scenario files or folders")
    add_start_options(
        test, start_help="the bot's start endpoint (POST); default: a local testing bot"
    )
    add_run_options(test)
    add_judge_options(test)
    add_output_options(test)
    add_simulation_options(test)
    add_verbose(test)
    test.set_defaults(run=run)


def _timeout(text: str) -> float:
    value = positive_float(text)
    if value > MAX_TIMEOUT_S:
        raise argparse.ArgumentTypeError(f"at most {MAX_TIMEOUT_S:g} seconds: {text!r}")
    return value


def add_run_options(test: argparse.ArgumentParser) -> None:
    """How the files run: check only, and the default expectation budget."""
    test.add_argument(
        "--validate", action="store_true", help="check every file and run nothing (exit 0 or 2)"
    )
    test.add_argument(
        "--timeout",
        type=_timeout,
        default=60.0,
        metavar="S",
        help="an expectation's budget when it has no within_ms (pipecat.evals' -t; default: 60)",
    )
    test.add_argument(
        "--modality",
        choices=("text", "audio"),
        help="text turns as send-text or spoken by the local voice, whatever the files say",
    )
    test.add_argument(
        "--transcriber",
        metavar="MODULE:CALLABLE",
        help="transcriber(frames) -> text: in audio modality, the bot's speech it transcribes "
        "is what 'response' matches (instead of the bot's own words)",
    )


def add_judge_options(test: argparse.ArgumentParser) -> None:
    """Where eval: verdicts come from (overriding the files' judge: blocks)."""
    test.add_argument(
        "--judge",
        metavar="MODULE:CALLABLE",
        help="judge(criterion, text) -> bool, a verdict, or (verdict, reason)",
    )
    test.add_argument("--judge-url", metavar="URL", help="an OpenAI-compatible judge endpoint")
    test.add_argument("--judge-model", metavar="NAME", help="the judge endpoint's model")


def add_output_options(test: argparse.ArgumentParser) -> None:
    """What is printed and written."""
    test.add_argument("--json", action="store_true", help="print JSON lines instead of tables")
    test.add_argument(
        "--junit-xml", metavar="PATH", type=output_path, help="write a JUnit XML report"
    )
    test.add_argument(
        "--report",
        metavar="DIR",
        help="write each run's HTML timeline to DIR/<file>-<scenario>.html (DIR is made)",
    )
    test.add_argument(
        "--record-dir",
        metavar="DIR",
        help="write each run's two-sided WAV (caller left, bot right) to DIR/<file>-<scenario>.wav",
    )


@dataclass
class _Plan:
    """What will run: each scenario with its judge, and what to say first."""

    scenarios: list[tuple[ScriptedScenario, JudgeSource | None]] = field(default_factory=list)
    simulations: list[Any] = field(default_factory=list)
    notices: list[str] = field(default_factory=list)


def run(parser: argparse.ArgumentParser, args: argparse.Namespace) -> int:
    """Validate every file, then run the scenarios; returns the exit code."""
    if (args.judge_url is None) != (args.judge_model is None):
        parser.error("--judge-url and --judge-model go together")
    if args.judge and args.judge_url:
        parser.error("--judge and --judge-url are two different judges: give one")
    settings = start_settings(parser, args)
    try:
        plan = _validate(args)
    except ImportError:  # pragma: no cover - the extra is missing
        raise MissingExtraError("test", "testing") from None
    if plan is None:
        return EXIT_USAGE
    for notice in plan.notices:
        print(f"notice: {notice}", file=sys.stderr)
    if args.validate:
        count = len(plan.scenarios) + len(plan.simulations)
        print(f"{count} scenarios in {len(args.files)} path(s): valid")
        return EXIT_OK
    fn = _load_callable(parser, "--judge", args.judge) if args.judge else None
    args.judge_fn = fn  # the simulations' judge too
    if args.transcriber:
        args.transcriber_fn = _load_callable(parser, "--transcriber", args.transcriber)
    configure_logging(args.verbose)
    return asyncio.run(_run_all(args, settings, plan, fn))


def _validate(args: argparse.Namespace) -> _Plan | None:
    """Every file checked, every problem printed; the plan, or None when one is invalid."""
    from lifecycle.testing.judge import judge_source
    from lifecycle.testing.scenario import ScriptedScenario, load_scenario_file
    from lifecycle.testing.scenario_errors import ScenarioFileError, ScenarioFileErrors
    from lifecycle.testing.scenario_files import collect_scenario_files

    files, skipped, problems = collect_scenario_files(args.files)
    for line in skipped:
        print(line, file=sys.stderr)
    plan = _Plan()
    judge_given = bool(args.judge or args.judge_url)
    for path in files:
        try:
            loaded = load_scenario_file(path, judge_given=judge_given, modality=args.modality)
        except ScenarioFileErrors as exc:
            problems.extend(str(e) for e in exc.errors)
            continue
        except ScenarioFileError as exc:
            problems.append(str(exc))
            continue
        plan.notices.extend(loaded.notices)
        for scenario in loaded.scenarios:
            if not isinstance(scenario, ScriptedScenario):
                plan.simulations.append(scenario)  # run by the simulated caller
                judged = scenario.success is not None or any(m.criterion for m in scenario.metrics)
                if judged and not scenario.judge and not judge_given:
                    problems.append(f"{scenario.path}:{scenario.line}: judge: {SIM_NO_JUDGE}")
                continue
            source = None
            if scenario.evals:
                try:
                    source = judge_source(
                        scenario,
                        fn=_judge_placeholder if args.judge else None,
                        fn_name=args.judge or "",
                        url=args.judge_url,
                        model=args.judge_model,
                    )
                except ValueError as exc:
                    where = scenario.judge.line if scenario.judge is not None else scenario.line
                    problems.append(f"{scenario.path}:{where}: judge: {exc}")
                    continue
            if args.modality is not None:
                scenario = _modality(scenario, args.modality, problems)
            plan.scenarios.append((scenario, source))
    if problems:
        for problem in problems:
            print(f"error: {problem}", file=sys.stderr)
        print(f"{len(problems)} problem(s) found", file=sys.stderr)
        return None
    return plan


def _modality(scenario: ScriptedScenario, modality: str, problems: list[str]) -> Any:
    """``scenario`` in ``modality`` (``--modality``); a problem when audio cannot run here."""
    from lifecycle.testing.scenario import audio_support_missing
    from lifecycle.testing.speaking import with_modality

    if modality == "audio" and (missing := audio_support_missing()):
        problems.append(f"--modality audio {missing}")
    return with_modality(scenario, modality)


def _judge_placeholder(criterion: str, text: str) -> Any:  # replaced by --judge at run time
    raise AssertionError("placeholder")  # pragma: no cover


def _load_callable(parser: argparse.ArgumentParser, option: str, spec: str) -> Any:
    """``MODULE:CALLABLE`` imported (``--judge``, ``--transcriber``); a usage error if not."""
    module_name, _, attr = spec.partition(":")
    if not module_name or not attr:
        parser.error(f"{option} wants MODULE:CALLABLE, not {spec!r}")
    try:
        loaded = getattr(importlib.import_module(module_name), attr)
    except (ImportError, AttributeError) as exc:
        parser.error(f"{option} {spec}: {exc}")
    if not callable(loaded):
        parser.error(f"{option} {spec} is not callable")
    return loaded


@contextlib.asynccontextmanager
async def _start_url(settings: StartSettings) -> AsyncIterator[str]:
    """``--start``, or the start URL of a local testing bot running meanwhile."""
    if settings.start_url is not None:
        yield settings.start_url
        return
    async with testing_bot(settings.transport) as server:
        print(f"(no --start: a local testing bot at {server.start_url})", file=sys.stderr)
        yield server.start_url


async def _run_all(
    args: argparse.Namespace, settings: StartSettings, plan: _Plan, fn: JudgeFn | None
) -> int:
    from lifecycle.cli.simulate import exit_code, junit_cases, run_simulations
    from lifecycle.client import PipecatClient
    from lifecycle.testing.judge import JudgeSource
    from lifecycle.testing.junit import Outcome, write_junit
    from lifecycle.testing.scripted import RunMemory

    outcomes: list[Outcome] = []
    unreached = False
    out = Output(json_mode=args.json, t0=time.monotonic())
    memory = RunMemory()
    said: set[str] = set()
    reports: set[Path] = set()
    async with _start_url(settings) as url:
        for scenario, source in plan.scenarios:
            if source is not None and fn is not None:
                source = JudgeSource("callable", source.describe, fn=fn, block=source.block)
            runs = scenario.runs * args.repeat
            for index in range(runs):
                client = PipecatClient(
                    make_transport(settings), connect_timeout=settings.connect_timeout
                )
                try:
                    start = settings.api_request(url)
                    result = await _run_one(args, start, client, scenario, source, memory)
                except PipecatClientError as exc:
                    unreached = True
                    message = unreachable(exc)
                    if out.json_mode:
                        out.emit("error", message, scenario=scenario.name)
                    else:
                        print(
                            f"\n{printable(scenario.name)}: ERROR {printable(message)}",
                            file=sys.stderr,
                        )
                    outcomes.append(Outcome(scenario, error=message))
                    continue
                unreached = unreached or result.error is not None
                outcomes.append(Outcome(scenario, result=result))
                for notice in result.notices:
                    if notice not in said:
                        said.add(notice)
                        print(f"notice: {printable(notice)}", file=sys.stderr)
                _show(out, result, index if runs > 1 else None)
                print_turns(client.trace, out, client.session_id)
                if args.report:
                    path = report_path(args.report, scenario, taken=reports)
                    write_report(client.trace, out, str(path))
        simulated = await run_simulations(plan.simulations, args, settings, url, out)
    if args.repeat > 1:
        _pass_rates(out, outcomes)
    passed = sum(1 for o in outcomes if o.result is not None and o.result.passed)
    total = len(outcomes) + sum(max(1, len(s.results)) for s in simulated)
    passed += sum(r.passed for s in simulated for r in s.results)
    out.emit("summary", f"\n{passed} of {total} scenarios passed", passed=passed, total=total)
    if args.junit_xml:
        write_junit(args.junit_xml, outcomes, junit_cases(simulated))
    sim_code = exit_code(simulated)
    if unreached or sim_code == EXIT_STARTUP:
        return EXIT_STARTUP
    return EXIT_OK if passed == total else EXIT_FAILURE


def _pass_rates(out: Output, outcomes: Sequence[Outcome]) -> None:
    """``--repeat``: each scripted scenario's pass rate."""
    runs: dict[str, list[bool]] = {}
    for o in outcomes:
        runs.setdefault(o.scenario.name, []).append(o.result is not None and o.result.passed)
    for name, passed in runs.items():
        rate = sum(passed) / len(passed)
        out.emit(
            "pass_rate",
            f"{printable(name)}: {sum(passed)} of {len(passed)} run(s) passed "
            f"(pass rate {rate:.0%})",
            scenario=name,
            pass_rate=round(rate, 4),
            runs=len(passed),
        )


async def _run_one(
    args: argparse.Namespace,
    start: APIRequest,
    client: PipecatClient,
    scenario: ScriptedScenario,
    source: JudgeSource | None,
    memory: RunMemory,
) -> ScenarioResult:
    from lifecycle.testing.judge import JudgeUnavailableError
    from lifecycle.testing.scripted import ScenarioResult, run_scenario
    from lifecycle.testing.scripted_events import WATCHED

    judge = None
    if source is not None:
        try:
            judge = await source.open()
        except JudgeUnavailableError as exc:
            return ScenarioResult(scenario, [], error=str(exc))
    recording = None
    try:
        # The stream opens before the connect, so the bot's greeting is not missed.
        transcriber = getattr(args, "transcriber_fn", None)
        names = (*WATCHED, "on_bot_audio") if transcriber is not None else WATCHED
        async with client.events(*names) as stream:
            await client.start_bot_and_connect(start)
            if args.record_dir:
                recording = _recording(client, args.record_dir, scenario, memory)
            return await run_scenario(
                scenario,
                client,
                judge=judge,
                default_timeout_ms=round(args.timeout * 1000),
                stream=stream,
                memory=memory,
                recording=recording,
                transcriber=transcriber,
            )
    finally:
        await client.disconnect()
        if recording is not None:
            await recording.close()
        if judge is not None:
            await judge.aclose()


def _recording(
    client: PipecatClient, directory: str, scenario: ScriptedScenario, memory: RunMemory
) -> ScenarioRecording:
    """The run's two-sided WAV, named as its report (``-2``... for another run)."""
    from lifecycle.testing.speaking import ScenarioRecording

    path = report_path(directory, scenario, taken=memory.recordings).with_suffix(".wav")
    return ScenarioRecording(client, path)


def report_path(
    directory: str, scenario: ScriptedScenario, *, taken: set[Path] | None = None
) -> Path:
    """``directory/<file stem>-<scenario name>.html`` (made if missing), the name made safe.

    Anything but letters, digits, ``.``, ``_`` and ``-`` in the scenario's name becomes
    ``_``; a name already in ``taken`` (another scenario, or another run) gets ``-2``,
    ``-3``... so no report overwrites another. The chosen path is added to ``taken``.
    """
    _, slash, name = scenario.name.partition("/")  # "<file name>/<scenario name>"
    name = name if slash else scenario.name
    safe = re.sub(r"[^\w.-]+", "_", f"{scenario.path.stem}-{name}", flags=re.ASCII)
    safe = safe.lstrip(".")[:150] or "scenario"
    folder = Path(directory)
    with contextlib.suppress(OSError):  # if it cannot be made, writing the file says why
        folder.mkdir(parents=True, exist_ok=True)
    taken = taken if taken is not None else set()
    path, number = folder / f"{safe}.html", 1
    while path in taken:
        number += 1
        path = folder / f"{safe}-{number}.html"
    taken.add(path)
    return path


def _show(out: Output, result: ScenarioResult, run_index: int | None) -> None:
    if out.json_mode:
        scenario = result.scenario
        out.emit(
            "scenario",
            scenario.name,
            scenario=scenario.name,
            file=str(scenario.path),
            run=run_index,
            passed=result.passed,
            duration_s=round(result.duration_s, 3),
            error=result.error,
            failures=result.failures,
            expectations=[
                {
                    "turn": r.turn + 1,
                    "expectation": r.expectation.label,
                    "within_ms": r.budget_ms,
                    "latency_ms": r.latency_ms,
                    "status": r.status,
                    "detail": r.detail,
                }
                for r in result.expectations
            ],
        )
        return
    print_table(result, out.stream, run_index)


def print_table(result: ScenarioResult, out: TextIO, run_index: int | None = None) -> None:
    """The scenario's verdict, then one row per expectation: budget, latency, status."""
    verdict = "PASSED" if result.passed else ("ERROR" if result.error else "FAILED")
    scenario = result.scenario
    run = f" (run {run_index + 1})" if run_index is not None else ""
    print(f"\n{printable(scenario.name)}{run}  {verdict}  ({result.duration_s:.2f} s)", file=out)
    print(f"  {'turn':<5} {'expectation':<44} {'within':>9} {'latency':>9}  result", file=out)
    for row in result.expectations:
        latency = "-" if row.latency_ms is None else f"{row.latency_ms} ms"
        label = printable(row.expectation.label, newlines=False)
        label = label if len(label) <= 44 else label[:41] + "..."
        print(
            f"  {row.turn + 1:<5} {label:<44} {row.budget_ms:>6} ms {latency:>9}  {row.status}",
            file=out,
        )
    for failure in result.failures:
        print(f"  FAIL {printable(failure)}", file=out)
    if result.error:
        print(f"  ERROR {printable(result.error)}", file=out)


__all__: Sequence[str] = ["add_command", "print_table", "report_path", "run"]
