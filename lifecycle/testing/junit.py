"""JUnit XML for scenario runs (one ``<testcase>`` per scenario), as CI systems read it.

Written with the standard library's ElementTree: a ``<testsuites>`` holding one
``<testsuite name="pipecat-lifecycle test">``; a failed scenario has a ``<failure>`` whose
message is its first failure and whose text lists them all; a scenario that could not run
(the bot could not be started or reached) has an ``<error>``; ``<system-out>`` holds the
scenario's timing rows.
"""

from __future__ import annotations

import xml.etree.ElementTree as ET
from collections.abc import Sequence
from dataclasses import dataclass
from os import PathLike

from lifecycle.printable import printable
from lifecycle.testing.scenario_model import ScriptedScenario
from lifecycle.testing.scripted import ScenarioResult

__all__ = ["Case", "Outcome", "write_junit"]

SUITE_NAME = "pipecat-lifecycle test"


@dataclass(frozen=True)
class Outcome:
    """A scenario and how it went: its ``result``, or the ``error`` that kept it from running."""

    scenario: ScriptedScenario
    result: ScenarioResult | None = None
    error: str | None = None


def _timing(result: ScenarioResult) -> str:
    rows = []
    for r in result.expectations:
        latency = "-" if r.latency_ms is None else f"{r.latency_ms} ms"
        rows.append(f"turn {r.turn + 1} {printable(r.expectation.label)}: {r.status} {latency}")
    return "\n".join(rows)


@dataclass(frozen=True)
class Case:
    """One ``<testcase>`` of any kind (a simulated run is one: ``--repeat`` and ``runs:``)."""

    name: str
    file: str
    line: int
    time_s: float
    failure: str | None = None
    error: str | None = None
    out: str = ""


def _case(outcome: Outcome) -> Case:
    scenario, result = outcome.scenario, outcome.result
    where = (scenario.name, str(scenario.path), scenario.line)
    if result is None:
        return Case(*where, 0.0, error=outcome.error or "not run")
    failure = "\n".join(result.failures) if result.failures else None
    return Case(*where, result.duration_s, failure, result.error, _timing(result))


def write_junit(
    path: str | PathLike[str], outcomes: Sequence[Outcome], extra: Sequence[Case] = ()
) -> None:
    """Write ``outcomes`` (then the ``extra`` cases) as a JUnit XML file at ``path``."""
    cases = [*(_case(o) for o in outcomes), *extra]
    suites = ET.Element("testsuites")
    suite = ET.SubElement(
        suites,
        "testsuite",
        name=SUITE_NAME,
        tests=str(len(cases)),
        failures=str(sum(1 for c in cases if c.failure is not None)),
        errors=str(sum(1 for c in cases if c.error is not None)),
        skipped="0",
        time=f"{sum(c.time_s for c in cases):.3f}",
    )
    for c in cases:
        case = ET.SubElement(
            suite,
            "testcase",
            classname=printable(c.file),
            name=printable(c.name),
            file=printable(c.file),
            line=str(c.line),
            time=f"{c.time_s:.3f}",
        )
        if c.error is not None:
            error = printable(c.error)
            ET.SubElement(case, "error", message=error.split("\n")[0]).text = error
        if c.failure is not None:
            failure = printable(c.failure)
            ET.SubElement(case, "failure", message=failure.split("\n")[0]).text = failure
        if c.out:
            ET.SubElement(case, "system-out").text = printable(c.out)
    ET.indent(suites)
    ET.ElementTree(suites).write(path, encoding="utf-8", xml_declaration=True)
