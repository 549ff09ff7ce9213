"""Scenario files (pipecat.evals' scripted format, the subset of API.md §13): validation.

Every problem names the file, the line and the key; keys pipecat.evals has but this runner
does not are "not supported", never silently ignored.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from lifecycle.testing.scenario import ScenarioFileError, load_scenarios
from tests.support.toolkit import REPO, write_scenario

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
                check_from: turn_start
          - dtmf: "012#"
          - expect:
              - event: response
                absent: true
                within_ms: 100
      - name: two
        stop_on_failure: true
        turns:
          - user: "hi"
"""


def test_a_valid_file_becomes_scenarios(tmp_path: Path) -> None:
    one, two = load_scenarios(write_scenario(tmp_path, "demo.yaml", GOOD))
    assert (one.name, two.name) == ("demo/one", "demo/two")
    assert (one.stop_on_failure, two.stop_on_failure) == (False, True)
    first, keys, observe = one.turns
    assert first.user == "hello" and keys.dtmf == "012#" and observe.user is None
    reply, call = first.expect
    assert (reply.event, reply.text_contains, reply.within_ms, reply.line) == (
        "llm_response",
        "hello",
        5000,
        8,
    )
    assert call.calls[0].name == "get_weather" and call.calls[0].args == {"location": "Lisbon"}
    assert call.check_from == "turn_start"
    assert observe.expect[0].absent is True


def test_the_examples_are_valid() -> None:
    files = sorted((REPO / "examples" / "scenarios").glob("*.yaml"))
    assert len(files) >= 2
    for path in files:
        assert load_scenarios(path)


@pytest.mark.parametrize(
    ("text", "line", "key", "problem"),
    [
        # pipecat.evals keys outside the subset: unsupported, by name.
        ("judge: {modality: text}\nscenarios: []\n", 1, "judge", "not supported"),
        (
            "name: x\nscenarios:\n  - name: s\n    persona: 'Jamie'\n    goal: book\n",
            4,
            "persona",
            "not supported",
        ),
        (
            "scenarios:\n  - name: s\n    turns:\n      - user: hi\n"
            "        send_after: {event: llm_started, delay_ms: 5}\n",
            5,
            "send_after",
            "not supported",
        ),
        (
            "scenarios:\n  - name: s\n    turns:\n      - user: hi\n        expect:\n"
            "          - event: llm_marker\n",
            6,
            "event",
            "'llm_marker' is not supported",
        ),
        (
            "scenarios:\n  - name: s\n    turns:\n      - user: hi\n        expect:\n"
            "          - event: llm_response\n            marker: complete\n",
            7,
            "marker",
            "not supported",
        ),
        ("user: !include user_audio.yaml\n", 1, "!include", "unsupported YAML tag"),
        # Unknown keys and events.
        (
            "scenarios:\n  - name: s\n    turns:\n      - user: hi\n        expct: []\n",
            5,
            "expct",
            "unknown key in a turn",
        ),
        (
            "scenarios:\n  - name: s\n    turns:\n      - user: hi\n        expect:\n"
            "          - event: bot_said\n",
            6,
            "event",
            "unknown event 'bot_said'",
        ),
        # Wrong types and values.
        (
            "scenarios:\n  - name: s\n    turns:\n      - user: hi\n        expect:\n"
            "          - event: llm_response\n            within_ms: 5s\n",
            7,
            "within_ms",
            "must be an integer",
        ),
        (
            "scenarios:\n  - name: s\n    turns:\n      - user: hi\n        expect:\n"
            "          - event: llm_response\n            within_ms: true\n",
            7,
            "within_ms",
            "must be an integer",
        ),
        ("scenarios:\n  - name: s\n    turns:\n      - dtmf: 123\n", 4, "dtmf", "quote the keys"),
        ("scenarios:\n  - name: s\n    turns:\n      - dtmf: '12a'\n", 4, "dtmf", "0-9, * and #"),
        (
            "scenarios:\n  - name: s\n    turns:\n      - user: hi\n        dtmf: '1'\n",
            5,
            "dtmf",
            "presses keys or talks",
        ),
        (
            "scenarios:\n  - name: s\n    turns:\n      - user: hi\n        expect:\n"
            "          - event: response\n            absent: true\n"
            "            text_contains: x\n",
            8,
            "text_contains",
            "cannot go with absent",
        ),
        (
            "scenarios:\n  - name: s\n    turns:\n      - user: hi\n        expect:\n"
            "          - event: llm_response\n            calls: [{name: f}]\n",
            7,
            "calls",
            "only function_call",
        ),
        (
            "scenarios:\n  - name: s\n    turns:\n      - audio: missing.wav\n",
            4,
            "audio",
            "no such file",
        ),
        ("scenarios:\n  - turns: [{user: hi}]\n", 2, "name", "missing"),
        ("scenarios:\n  - name: s\n    turns: {user: hi}\n", 3, "turns", "non-empty list"),
        ("scenarios:\n  - name: s\n    turns:\n      - user: [a, {pause_ms: 5}]\n", 4, "user", ""),
        ("name: [unclosed\n", 2, "", "not valid YAML"),
        ("", 1, "", "empty"),
    ],
)
def test_invalid_files_name_file_line_and_key(
    tmp_path: Path, text: str, line: int, key: str, problem: str
) -> None:
    path = tmp_path / "bad.yaml"
    path.write_text(text, encoding="utf-8")
    with pytest.raises(ScenarioFileError) as error:
        load_scenarios(path)
    assert (error.value.path, error.value.line, error.value.key) == (str(path), line, key)
    assert problem in error.value.problem
    assert str(error.value).startswith(f"{path}:{line}: ")
