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
from lifecycle.testing.scenario import ScriptedScenario
from lifecycle.testing.scripted import ScenarioResult

__all__ = ["Outcome", "write_junit"]

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


def write_junit(path: str | PathLike[str], outcomes: Sequence[Outcome]) -> None:
    """Write ``outcomes`` as a JUnit XML file at ``path``."""
    errors = sum(1 for o in outcomes if o.result is None or o.result.error is not None)
    failures = sum(1 for o in outcomes if o.result is not None and o.result.failures)
    total = sum(o.result.duration_s for o in outcomes if o.result is not None)
    suites = ET.Element("testsuites")
    suite = ET.SubElement(
        suites,
        "testsuite",
        name=SUITE_NAME,
        tests=str(len(outcomes)),
        failures=str(failures),
        errors=str(errors),
        skipped="0",
        time=f"{total:.3f}",
    )
    for outcome in outcomes:
        scenario, result = outcome.scenario, outcome.result
        case = ET.SubElement(
            suite,
            "testcase",
            classname=printable(scenario.path),
            name=printable(scenario.name),
            file=printable(scenario.path),
            line=str(scenario.line),
            time=f"{result.duration_s:.3f}" if result is not None else "0",
        )
        if result is None:
            error = printable(outcome.error) if outcome.error is not None else None
            ET.SubElement(case, "error", message=error or "not run").text = error
            continue
        if result.error is not None:
            error = printable(result.error)
            ET.SubElement(case, "error", message=error).text = error
        if result.failures:
            texts = [printable(f) for f in result.failures]
            failure = ET.SubElement(case, "failure", message=texts[0])
            failure.text = "\n".join(texts)
        ET.SubElement(case, "system-out").text = _timing(result)
    ET.indent(suites)
    ET.ElementTree(suites).write(path, encoding="utf-8", xml_declaration=True)
