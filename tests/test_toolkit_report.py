"""``pipecat-lifecycle test``: each scenario's turn lines and its HTML timeline (``--report``).

Against the local testing bot (no ``--start``), through the command's entry point.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from lifecycle.cli import main
from tests.support.toolkit import write_scenario

SCENARIOS = """
    name: greetings
    scenarios:
      - name: "two turns: hi/bye"
        turns:
          - user: "hi"
            expect:
              - event: llm_response
                text_contains: "hi"
          - user: "bye"
            expect:
              - event: llm_response
                text_contains: "bye"
      - name: single
        turns:
          - user: "hello"
            expect:
              - event: llm_response
"""


def test_turn_lines_follow_each_scenarios_table(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = write_scenario(tmp_path, "greetings.yaml", SCENARIOS)
    assert main(["test", str(path)]) == 0
    out = capsys.readouterr().out
    first, second = out.split("greetings/single  PASSED")
    assert "greetings/two turns: hi/bye  PASSED" in first
    table_end = first.index("llm_response ~ 'bye'")
    turns = re.findall(r"turn (\d) \(text\): llm [\d.]+ ms", first[table_end:])
    assert turns == ["1", "2"]  # under the table, one line per turn with its latencies
    assert re.findall(r"turn (\d) \(text\): llm [\d.]+ ms", second) == ["1"]
    assert "report written" not in out  # no --report, no files


def test_report_writes_one_timeline_per_scenario(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = write_scenario(tmp_path, "greetings.yaml", SCENARIOS)
    reports = tmp_path / "reports" / "run"  # made, with its parent
    assert main(["test", str(path), "--report", str(reports)]) == 0
    out = capsys.readouterr().out
    pages = {page.name: page.read_text(encoding="utf-8") for page in reports.iterdir()}
    assert set(pages) == {"greetings-two_turns_hi_bye.html", "greetings-single.html"}
    for name, turns in (("greetings-two_turns_hi_bye.html", 2), ("greetings-single.html", 1)):
        page = pages[name]
        assert page.startswith("<!DOCTYPE html>")
        assert 'class="lane" data-lane="state"' in page and 'data-lane="turns"' in page
        assert page.count('class="turn-row"') == turns
        assert f"report written to {reports / name}" in out


def test_an_unwritable_report_dir_is_said_and_the_run_goes_on(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = write_scenario(tmp_path, "greetings.yaml", SCENARIOS)
    blocker = tmp_path / "taken"
    blocker.write_text("a file, not a directory", encoding="utf-8")
    assert main(["test", str(path), "--report", str(blocker)]) == 0
    out = capsys.readouterr().out
    assert out.count(f"could not write the report {blocker}") == 2
    assert "2 of 2 scenarios passed" in out
