"""Scenario files (pipecat.evals 1.14's format, whole): reading, includes, validation.

Every problem names the file, the line and the key, all problems of a file come in one
error, near-miss keys and events get a "did you mean", and hostile YAML (aliases that
expand without end, recursion, deep nesting, huge files) is a clear error.
"""

from __future__ import annotations

import importlib.util
import warnings
from pathlib import Path

import pytest

from lifecycle.testing.scenario import (
    ScenarioFileError,
    ScenarioFileErrors,
    ScriptedScenario,
    ScriptedTurn,
    load_scenario_file,
    load_scenarios,
)
from lifecycle.testing.yaml_source import MAX_FILE_BYTES, read_yaml
from tests.support.toolkit import REPO, write_scenario, write_tone

GOOD = """
    name: demo
    stop_on_failure: false
    scenarios:
      - name: one
        turns:
          - user: "hello"
            expect:
              - event: llm_response
                text_contains: "hello"
                within_ms: 5000
              - event: function_call
                calls:
                  - name: get_weather
                    args: {location: Lisbon}
                  - lookup
                check_from: turn_start
          - dtmf: "012#"
          - dtmf: 123
            send_after: {delay_ms: 500}
          - user: "again"
            send_after: {event: llm_started, delay_ms: 20}
            expect:
              - event: function_call
                name: book
                args: {time: 6pm}
              - event: llm_marker
                marker: complete
                markers: 1
          - expect:
              - event: response
                absent: true
                within_ms: 100
      - name: two
        stop_on_failure: true
        context:
          - {role: system, content: "Be brief."}
        turns:
          - user: "hi"
"""


def test_a_valid_file_becomes_scenarios(tmp_path: Path) -> None:
    one, two = load_scenarios(write_scenario(tmp_path, "demo.yaml", GOOD))
    assert (one.name, two.name) == ("demo/one", "demo/two")
    assert (one.stop_on_failure, two.stop_on_failure) == (False, True)
    first, keys, digits, again, observe = one.turns
    assert first.user == "hello" and keys.dtmf == "012#" and observe.user is None
    assert digits.dtmf == "123" and digits.send_after is not None
    assert (digits.send_after.event, digits.send_after.delay_ms) == (None, 500)
    reply, call = first.expect
    assert (reply.event, reply.text_contains, reply.within_ms, reply.line) == (
        "llm_response",
        "hello",
        5000,
        8,
    )
    assert [(c.name, c.args) for c in call.calls] == [
        ("get_weather", {"location": "Lisbon"}),
        ("lookup", None),
    ]
    assert call.check_from == "turn_start"
    shorthand, marker = again.expect
    assert [(c.name, c.args) for c in shorthand.calls] == [("book", {"time": "6pm"})]
    assert (marker.marker, marker.markers) == ("complete", 1)
    assert again.send_after is not None and again.send_after.event == "llm_started"
    assert observe.expect[0].absent is True
    assert two.context == ({"role": "system", "content": "Be brief."},)


def test_the_examples_are_valid() -> None:
    files = sorted((REPO / "examples" / "scenarios").glob("*.yaml"))
    assert len(files) >= 2
    for path in files:
        assert load_scenarios(path)


def test_includes_nested_relative_and_shared(tmp_path: Path) -> None:
    (tmp_path / "shared").mkdir()
    (tmp_path / "shared" / "judge.yaml").write_text("eval: !include model.yaml\n")
    (tmp_path / "shared" / "model.yaml").write_text("service: openai\nmodel: gpt-x\n")
    (tmp_path / "turns.yaml").write_text(
        "- user: hi\n  expect:\n    - event: response\n      eval: greets\n"
    )
    path = write_scenario(
        tmp_path,
        "inc.yaml",
        """
        name: inc
        judge: !include shared/judge.yaml
        scenarios:
          - name: a
            turns: !include turns.yaml
          - name: b
            turns: !include turns.yaml
        """,
    )
    loaded = load_scenario_file(path)
    a, b = loaded.scenarios
    assert a.judge is not None and a.judge.eval == {"service": "openai", "model": "gpt-x"}
    assert a.turns[0].user == "hi" and b.turns == a.turns
    # An expectation in an included fragment is located there.
    assert a.evals[0].path == str(tmp_path / "turns.yaml") and a.evals[0].line == 3


def test_merge_keys_and_unquoted_numbers(tmp_path: Path) -> None:
    path = write_scenario(
        tmp_path,
        "merge.yaml",
        """
        name: merge
        x-defaults: &base {within_ms: 100, event: llm_started}
        turns:
          - dtmf: 0123
            expect:
              - <<: *base
                within_ms: 200
        """,
    )
    with pytest.raises(ScenarioFileError) as error:
        load_scenario_file(path)  # x-defaults is not a key of the file
    assert error.value.key == "x-defaults" and "unknown key in the file" in error.value.problem
    path.write_text(path.read_text().replace("x-defaults", "scenarios: [{name: s}]\nxx"))
    path = write_scenario(
        tmp_path,
        "merge2.yaml",
        """
        name: merge
        turns:
          - dtmf: 0123
            expect:
              - &base {within_ms: 100, event: llm_started}
              - <<: *base
                within_ms: 200
        """,
    )
    (scenario,) = load_scenarios(path)
    first, second = scenario.turns[0].expect
    assert scenario.turns[0].dtmf == "0123"  # a leading zero keeps its digits
    assert (first.event, first.within_ms, second.event, second.within_ms) == (
        "llm_started",
        100,
        "llm_started",
        200,
    )


def _problems(path: Path, **kwargs: bool) -> list[ScenarioFileError]:
    with pytest.raises(ScenarioFileError) as error:
        load_scenario_file(path, **kwargs)
    if isinstance(error.value, ScenarioFileErrors):
        return list(error.value.errors)
    return [error.value]


def test_every_problem_of_a_file_in_one_error(tmp_path: Path) -> None:
    path = write_scenario(
        tmp_path,
        "many.yaml",
        """
        name: many
        scenarios:
          - name: s
            turns:
              - user: hi
                expct: []
                expect:
                  - event: llm_respons
                  - event: llm_response
                    within_ms: 99999999
              - dtmf: "12a"
        """,
    )
    problems = _problems(path)
    assert [(p.line, p.key) for p in problems] == [
        (6, "expct"),
        (8, "event"),
        (10, "within_ms"),
        (11, "dtmf"),
    ]
    assert "did you mean 'expect'" in problems[0].problem
    assert "unknown event 'llm_respons' (did you mean 'llm_response'?)" in problems[1].problem
    assert "must be 1 to 3600000" in problems[2].problem
    with pytest.raises(ScenarioFileErrors) as error:
        load_scenario_file(path)
    assert str(error.value).count(f"{path}:") == 4


@pytest.mark.parametrize(
    ("text", "line", "key", "problem"),
    [
        # Keys in the wrong place, or nobody's.
        (
            "name: x\nscenarios:\n  - name: s\n    turns:\n      - user: hi\n        eval: x\n",
            6,
            "eval",
            "not a key of a turn (pipecat.evals has it elsewhere)",
        ),
        (
            "name: x\nscenarios:\n  - name: s\n    turns:\n      - user: hi\n"
            "        expect:\n          - event: llm_response\n            marker: complete\n",
            8,
            "marker",
            "only applies to llm_marker",
        ),
        (
            "name: x\nscenarios:\n  - name: s\n    turns:\n      - user: hi\n"
            "        expect:\n          - event: llm_marker\n            marker: done\n",
            8,
            "marker",
            "must be one of complete, short, long, incomplete",
        ),
        # Wrong types and values.
        (
            "name: x\nscenarios:\n  - name: s\n    turns:\n      - user: hi\n        expect:\n"
            "          - event: llm_response\n            within_ms: 5s\n",
            8,
            "within_ms",
            "must be a whole number",
        ),
        (
            "name: x\nscenarios:\n  - name: s\n    turns:\n      - user: hi\n        expect:\n"
            "          - event: llm_response\n            within_ms: true\n",
            8,
            "within_ms",
            "must be a whole number",
        ),
        (
            "name: x\nscenarios:\n  - name: s\n    turns:\n      - user: hi\n        dtmf: '1'\n",
            6,
            "dtmf",
            "presses keys or talks",
        ),
        (
            "name: x\nscenarios:\n  - name: s\n    turns:\n      - user: hi\n        expect:\n"
            "          - event: response\n            absent: true\n"
            "            text_contains: x\n",
            9,
            "text_contains",
            "cannot go with absent",
        ),
        (
            "name: x\nscenarios:\n  - name: s\n    turns:\n      - user: hi\n        expect:\n"
            "          - event: llm_response\n            calls: [{name: f}]\n",
            8,
            "calls",
            "only function_call",
        ),
        (
            "name: x\nscenarios:\n  - name: s\n    turns:\n      - send_after: {delay_ms: 5}\n",
            5,
            "send_after",
            "the turn sends nothing",
        ),
        (
            "name: x\nscenarios:\n  - name: s\n    turns:\n      - user: hi\n"
            "        send_after: {delay_ms: 0}\n",
            6,
            "send_after",
            "needs an event: or a positive delay_ms:",
        ),
        (
            "name: x\nscenarios:\n  - name: s\n    turns:\n      - audio: missing.wav\n",
            5,
            "audio",
            "no such file",
        ),
        (
            "name: x\nscenarios:\n  - name: s\n    turns:\n      - user: hi\n"
            "        image: missing.jpg\n",
            6,
            "image",
            "no such file",
        ),
        ("name: x\nscenarios:\n  - turns: [{user: hi}]\n", 3, "name", "missing"),
        ("name: x\nscenarios:\n  - name: s\n    turns: {user: hi}\n", 4, "turns", "non-empty"),
        (
            "name: x\nscenarios:\n  - name: s\n    turns:\n      - user: [a, {pause_ms: 5}]\n",
            5,
            "user",
            "pauses need user.modality: audio",
        ),
        (
            "name: x\njudge: {eval: {service: gemini}}\nturns: [{user: hi}]\n",
            2,
            "service",
            "unknown service 'gemini'",
        ),
        (
            "name: x\nscenarios:\n  - name: s\n    turns:\n      - user: hi\n        expect:\n"
            "          - event: response\n            eval: polite\n",
            7,
            "eval",
            "'eval:' needs a judge: give the file a 'judge:' block",
        ),
        # Not scenario files.
        ("- user: hi\n", 1, "", "a fragment"),
        ("eval: {service: ollama}\n", 1, "", "a fragment"),
        ("suite: []\nbots_dir: x\n", 1, "", "a manifest (a suite of bots) is not supported"),
        # YAML a user may write.
        ("name: [unclosed\n", 2, "", "not valid YAML"),
        ("name: x\nturns:\n\t- user: hi\n", 3, "", "not valid YAML"),
        ("name: x\nname: y\nturns: []\n", 2, "name", "given twice"),
        ("name: x\nturns: [{user: hi}]\nwhen: 2020-13-45\n", 3, "", "not a valid value"),
        (
            "name: x\nturns: !!python/object:os.system [ls]\n",
            2,
            "tag:yaml.org,2002:python/object:os.system",
            "unknown YAML tag",
        ),
        ("name: x\nturns: !custom [1]\n", 2, "!custom", "unknown YAML tag"),
        ("", 1, "", "empty"),
        ("name: x\nturns: [{user: \udcff}]\n", 2, "", "not UTF-8 text"),
        ("name: x\nuser: !include missing.yaml\n", 2, "!include", "no such file"),
    ],
)
def test_invalid_files_name_file_line_and_key(
    tmp_path: Path, text: str, line: int, key: str, problem: str
) -> None:
    path = tmp_path / "bad.yaml"
    path.write_text(text, encoding="utf-8", errors="surrogateescape")
    first = _problems(path)[0]
    assert (first.path, first.line, first.key) == (str(path), line, key)
    assert problem in first.problem
    assert str(first).startswith(f"{path}:{line}: ")


def test_a_broken_wav_is_found_at_validation(tmp_path: Path) -> None:
    (tmp_path / "broken.wav").write_bytes(b"RIFF\x00\x00\x00\x00WAVEjunk")
    write_tone(tmp_path / "fine.wav", rate=16000)
    path = write_scenario(
        tmp_path,
        "wav.yaml",
        """
        name: wav
        turns:
          - audio: fine.wav
          - audio: broken.wav
        """,
    )
    (problem,) = _problems(path)
    assert (problem.line, problem.key) == (4, "audio")
    assert "cannot read broken.wav as audio" in problem.problem


def test_an_image_must_be_an_image(tmp_path: Path) -> None:
    (tmp_path / "cat.jpg").write_bytes(b"\xff\xd8\xff\xe0" + b"\x00" * 64)
    (tmp_path / "note.jpg").write_text("not an image")
    path = write_scenario(
        tmp_path,
        "img.yaml",
        """
        name: img
        turns:
          - user: what is this?
            image: cat.jpg
          - user: and this?
            image: note.jpg
        """,
    )
    (problem,) = _problems(path)
    assert (problem.line, problem.key) == (6, "image") and "not a JPEG" in problem.problem


def test_include_cycles_are_refused_with_the_chain(tmp_path: Path) -> None:
    (tmp_path / "a.yaml").write_text("eval: !include b.yaml\n")
    (tmp_path / "b.yaml").write_text("x: !include a.yaml\n")
    path = write_scenario(tmp_path, "top.yaml", "name: t\njudge: !include a.yaml\nturns: []\n")
    (problem,) = _problems(path)
    assert problem.key == "!include" and problem.path == str(tmp_path / "b.yaml")
    assert "an include cycle:" in problem.problem
    assert problem.problem.endswith(
        f"{tmp_path / 'a.yaml'} -> {tmp_path / 'b.yaml'} -> {tmp_path / 'a.yaml'}"
    )


LAUGHS = "".join(
    f"{name}: &{name} [{', '.join([f'*{prev}'] * 9) if prev else ', '.join(['lol'] * 9)}]\n"
    for prev, name in zip(["", *"abcdefgh"], "abcdefghi", strict=True)
)


@pytest.mark.parametrize(
    ("text", "problem"),
    [
        (LAUGHS, "expands to more than 200000 values"),
        ("name: x\nturns: &a [{user: hi, expect: *a}]\n", "a recursive alias"),
        ("name: x\nturns: " + "[" * 5000 + "]" * 5000 + "\n", "nested deeper than 64 levels"),
        ("name: " + "x" * (MAX_FILE_BYTES + 1) + "\n", "the most read is"),
    ],
)
def test_hostile_yaml_is_a_clear_error(tmp_path: Path, text: str, problem: str) -> None:
    assert len(LAUGHS) < 500
    path = tmp_path / "hostile.yaml"
    path.write_text(text, encoding="utf-8")
    with pytest.raises(ScenarioFileError) as error:
        read_yaml(path)
    assert problem in str(error.value)


def test_aliases_are_shared_not_copied(tmp_path: Path) -> None:
    path = tmp_path / "shared.yaml"
    path.write_text("a: &a [1, 2]\nb: *a\nc: *a\n")
    value = read_yaml(path).plain()
    assert value == {"a": [1, 2], "b": [1, 2], "c": [1, 2]}
    assert value["b"] is value["c"]


def test_simulations_need_their_support(tmp_path: Path) -> None:
    if importlib.util.find_spec("lifecycle.testing.simulation_file") is not None:
        pytest.skip("the simulated caller is installed: its own tests cover these files")
    path = write_scenario(
        tmp_path, "sim.yaml", "name: x\nscenarios:\n  - name: s\n    persona: Jamie\n"
    )
    (problem,) = _problems(path)
    assert (problem.line, problem.key) == (3, "persona")
    assert "need the simulated caller" in problem.problem


def test_old_names_warn() -> None:
    import lifecycle.testing.scenario as scenario_module

    with pytest.warns(DeprecationWarning, match="ScriptedTurn"):
        assert scenario_module.Turn is ScriptedTurn  # type: ignore[attr-defined]
    with pytest.warns(DeprecationWarning, match="ScriptedScenario"):
        assert scenario_module.Scenario is ScriptedScenario  # type: ignore[attr-defined]
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert scenario_module.ScriptedTurn is ScriptedTurn


def test_the_old_runner_module_warns_and_still_runs_scenarios() -> None:
    import importlib
    import sys

    from lifecycle.testing import scripted

    sys.modules.pop("lifecycle.testing.runner", None)
    with pytest.warns(DeprecationWarning, match="lifecycle.testing.scripted"):
        runner = importlib.import_module("lifecycle.testing.runner")
    assert runner.run_scenario is scripted.run_scenario
