"""``pipecat-lifecycle test``: run pipecat.evals-format scenario files against a bot.

Every file is validated first (a bad one: exit 2, naming file, line and key); then each
scenario runs in a session of its own (``--start URL``: a start endpoint; without it a local
testing bot), and a timing table per scenario shows each expectation's latency from its
turn's anchor, then one line per turn (its latencies, see :mod:`lifecycle.turns`).
``--report DIR`` writes each scenario's HTML timeline to ``DIR/<file>-<scenario>.html``.
See :mod:`lifecycle.testing.scenario` and :mod:`lifecycle.testing.runner`.
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
from pathlib import Path
from typing import TYPE_CHECKING, Any, Final, TextIO

from lifecycle.cli.exits import EXIT_FAILURE, EXIT_OK, EXIT_STARTUP, EXIT_USAGE
from lifecycle.cli.logging_setup import configure_logging
from lifecycle.cli.options import add_start_options, add_verbose, start_settings
from lifecycle.cli.output import Output
from lifecycle.cli.report import print_turns, write_report
from lifecycle.contrib.transport_factory import make_transport, testing_bot
from lifecycle.errors import PipecatClientError
from lifecycle.extras import MissingExtraError

if TYPE_CHECKING:
    from lifecycle.client import PipecatClient
    from lifecycle.start import APIRequest, StartSettings
    from lifecycle.testing.junit import Outcome
    from lifecycle.testing.runner import Judge, ScenarioResult
    from lifecycle.testing.scenario import Scenario

TEST_EPILOG: Final = """\
scenario files: pipecat.evals' scripted format (turns: / user: / audio: / dtmf: / expect:);
keys outside the supported subset (judge:, persona:, send_after: ...) are errors.

exit codes:
  0  every scenario passed
  1  a scenario failed
  2  usage error, a scenario file that is not valid (file:line: key: problem), or a missing
     extra (the pip install line is shown)
  3  the bot could not be started or reached (start endpoint, transport, bot-ready)
"""


def add_command(commands: Any) -> None:
    """Register ``test`` on the subcommand group."""
    test = commands.add_parser(
        "test",
        help="run scripted scenario files (pipecat.evals format) against a bot",
        description=(
            "Run pipecat.evals-format scripted scenarios over the bot's production transport: "
            "text turns as send-text, audio: turns played as the microphone, dtmf: turns "
            "pressed; check the expected events and their latency."
        ),
        epilog=TEST_EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    test.add_argument("files", nargs="+", metavar="FILE", help="scenario YAML files")
    add_start_options(
        test, start_help="the bot's start endpoint (POST); default: a local testing bot"
    )
    test.add_argument("--junit-xml", metavar="PATH", help="write a JUnit XML report")
    test.add_argument(
        "--report",
        metavar="DIR",
        help="write each scenario's HTML timeline to DIR/<file>-<scenario>.html (DIR is made)",
    )
    test.add_argument(
        "--judge",
        metavar="MODULE:CALLABLE",
        help="judge(criterion, text) -> bool or (bool, reason), for eval: criteria",
    )
    add_verbose(test)
    test.set_defaults(run=run)


def run(parser: argparse.ArgumentParser, args: argparse.Namespace) -> int:
    """Validate every file, then run the scenarios; returns the exit code."""
    try:
        from lifecycle.testing.scenario import ScenarioFileError, load_scenarios
    except ImportError:  # pragma: no cover - the extra is missing
        raise MissingExtraError("test", "testing") from None
    settings = start_settings(parser, args)
    judge = _load_judge(parser, args.judge) if args.judge else None
    scenarios: list[Scenario] = []
    try:
        for path in args.files:
            scenarios.extend(load_scenarios(path))
    except ScenarioFileError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except ImportError:
        raise MissingExtraError("test", "testing") from None
    configure_logging(args.verbose)
    return asyncio.run(_run_all(args, settings, scenarios, judge))


def _load_judge(parser: argparse.ArgumentParser, spec: str) -> Judge:
    module_name, _, attr = spec.partition(":")
    if not module_name or not attr:
        parser.error(f"--judge wants MODULE:CALLABLE, not {spec!r}")
    try:
        judge = getattr(importlib.import_module(module_name), attr)
    except (ImportError, AttributeError) as exc:
        parser.error(f"--judge {spec}: {exc}")
    if not callable(judge):
        parser.error(f"--judge {spec} is not callable")
    return judge  # type: ignore[no-any-return]


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
    args: argparse.Namespace,
    settings: StartSettings,
    scenarios: Sequence[Scenario],
    judge: Judge | None,
) -> int:
    from lifecycle.client import PipecatClient
    from lifecycle.testing.junit import Outcome, write_junit

    outcomes: list[Outcome] = []
    unreached = False
    out = Output(json_mode=False, t0=time.monotonic())
    async with _start_url(settings) as url:
        for scenario in scenarios:
            client = PipecatClient(
                make_transport(settings), connect_timeout=settings.connect_timeout
            )
            try:
                result = await _run_one(settings.api_request(url), client, scenario, judge)
            except PipecatClientError as exc:
                unreached = True
                message = f"could not start or reach the bot: {type(exc).__name__}: {exc}"
                print(f"\n{scenario.name}: ERROR {message}", file=sys.stderr)
                outcomes.append(Outcome(scenario, error=message))
                continue
            outcomes.append(Outcome(scenario, result=result))
            print_table(result, sys.stdout)
            print_turns(client.trace, out, client.session_id)
            if args.report:
                write_report(client.trace, out, str(report_path(args.report, scenario)))
    passed = sum(1 for o in outcomes if o.result is not None and o.result.passed)
    print(f"\n{passed} of {len(outcomes)} scenarios passed")
    if args.junit_xml:
        write_junit(args.junit_xml, outcomes)
    if unreached:
        return EXIT_STARTUP
    return EXIT_OK if passed == len(outcomes) else EXIT_FAILURE


async def _run_one(
    start: APIRequest, client: PipecatClient, scenario: Scenario, judge: Judge | None
) -> ScenarioResult:
    from lifecycle.testing.runner import run_scenario

    try:
        await client.start_bot_and_connect(start)
        return await run_scenario(scenario, client, judge=judge)
    finally:
        await client.disconnect()


def report_path(directory: str, scenario: Scenario) -> Path:
    """``directory/<file stem>-<scenario name>.html`` (made if missing), the name made safe.

    Anything but letters, digits, ``.``, ``_`` and ``-`` in the scenario's name becomes ``_``.
    """
    _, slash, name = scenario.name.partition("/")  # "<file name>/<scenario name>"
    name = name if slash else scenario.name
    safe = re.sub(r"[^\w.-]+", "_", f"{scenario.path.stem}-{name}", flags=re.ASCII)
    folder = Path(directory)
    with contextlib.suppress(OSError):  # if it cannot be made, writing the file says why
        folder.mkdir(parents=True, exist_ok=True)
    return folder / f"{safe.lstrip('.') or 'scenario'}.html"


def print_table(result: ScenarioResult, out: TextIO) -> None:
    """The scenario's verdict, then one row per expectation: budget, latency, status."""
    verdict = "PASSED" if result.passed else "FAILED"
    scenario = result.scenario
    print(f"\n{scenario.name}  {verdict}  ({result.duration_s:.2f} s)", file=out)
    print(f"  {'turn':<5} {'expectation':<44} {'within':>9} {'latency':>9}  result", file=out)
    for row in result.expectations:
        latency = "-" if row.latency_ms is None else f"{row.latency_ms} ms"
        label = row.expectation.label
        label = label if len(label) <= 44 else label[:41] + "..."
        print(
            f"  {row.turn + 1:<5} {label:<44} {row.budget_ms:>6} ms {latency:>9}  {row.status}",
            file=out,
        )
    for failure in result.failures:
        print(f"  FAIL {failure}", file=out)
