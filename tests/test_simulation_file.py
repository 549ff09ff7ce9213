"""The simulation file format (lifecycle.testing.simulation_file): pipecat.evals 1.14's keys."""

from __future__ import annotations

from typing import Any

import pytest

from lifecycle.testing.simulation_file import (
    ExpectedCall,
    Metric,
    SimulationError,
    parse_simulation,
)

BASE: dict[str, Any] = {
    "persona": "Jamie, calling to book a table.",
    "goal": "Book a table for two at 6 PM tonight, then end the call.",
    "success": "the bot confirmed a reservation for a party of two at 6 PM",
}


def parse(**changes: Any) -> Any:
    data = {"name": "book_table/available", **BASE, **changes}
    return parse_simulation(data, "book.yaml", line_of=lambda key: 3)


def test_defaults_are_pipecat_evals_ones() -> None:
    spec = parse()
    assert spec.name == "book_table/available"
    assert (spec.max_turns, spec.max_duration_s, spec.max_silence_s) == (20, 300.0, 30.0)
    assert (spec.runs, spec.max_model_calls, spec.metrics) == (1, 100, ())
    assert spec.simulator == {} and spec.judge == {}
    assert not spec.user_audio and not spec.bot_audio


def test_every_key() -> None:
    spec = parse(
        simulator={
            "service": "ollama",
            "model": "gemma4:12b",
            "extra": {"reasoning_effort": "none"},
        },
        judge={"eval": {"factory": "evals.judges.typesafe_classifier"}, "modality": "audio"},
        user={"modality": "audio", "speech": {"service": "kokoro", "voice": "af_heart"}},
        max_turns=8,
        max_duration_s=120,
        max_silence_s=10,
        runs=3,
        max_model_calls=40,
        context=[{"role": "system", "content": "ignored here"}],
        metrics=[
            {"name": "politeness", "criterion": "the reply is courteous", "min_score": 1},
            {"name": "brevity", "criterion": "at most three sentences"},
            {"measure": "words", "max_value": 60},
            {"measure": "latency", "max_value": 5},
            {
                "name": "calls",
                "measure": "function_calls",
                "calls": ["a", {"name": "b", "args": {"x": 1}}],
            },
        ],
    )
    assert spec.max_turns == 8 and spec.runs == 3 and spec.max_model_calls == 40
    assert spec.simulator["model"] == "gemma4:12b"
    assert spec.judge == {"factory": "evals.judges.typesafe_classifier"}
    assert spec.user_audio and spec.bot_audio
    assert spec.metrics == (
        Metric("politeness", criterion="the reply is courteous", min_score=1.0),
        Metric("brevity", criterion="at most three sentences"),
        Metric("words", measure="words", max_value=60.0),
        Metric("latency", measure="latency", max_value=5.0),
        Metric(
            "calls",
            measure="function_calls",
            calls=(ExpectedCall("a"), ExpectedCall("b", {"x": 1})),
        ),
    )


@pytest.mark.parametrize(
    ("changes", "key", "problem"),
    [
        ({"goal": ""}, "goal", "non-empty string"),
        ({"success": 5}, "success", "non-empty string"),
        ({"turns": []}, "turns", "scripted"),
        ({"colour": "red"}, "colour", "unknown key"),
        ({"max_turns": 0}, "max_turns", "whole number"),
        ({"max_turns": True}, "max_turns", "whole number"),
        ({"max_silence_s": -1}, "max_silence_s", "positive number"),
        ({"runs": 10**6}, "runs", "whole number"),
        ({"simulator": "ollama"}, "simulator", "mapping"),
        ({"simulator": {"service": "anthropic"}}, "simulator.service", "unknown service"),
        ({"simulator": {"modle": "x"}}, "simulator.modle", "unknown key"),
        ({"simulator": {"extra": [1]}}, "simulator.extra", "mapping"),
        ({"judge": {"modality": "video"}}, "judge.modality", "text or audio"),
        ({"user": {"modality": "sms"}}, "user.modality", "text or audio"),
        ({"metrics": {"a": 1}}, "metrics", "list"),
        ({"metrics": [{"criterion": "x"}]}, "metrics.0.name", "missing"),
        ({"metrics": [{"name": "a", "criterion": "x", "measure": "words"}]}, "metrics.0", "judged"),
        (
            {"metrics": [{"name": "a", "criterion": "x", "min_score": 2}]},
            "metrics.0.min_score",
            "0..1",
        ),
        ({"metrics": [{"measure": "speed", "max_value": 1}]}, "metrics.0.measure", "one of"),
        ({"metrics": [{"measure": "words"}]}, "metrics.0", "min_value"),
        ({"metrics": [{"measure": "words", "min_score": 1}]}, "metrics.0.min_score", "range"),
        ({"metrics": [{"measure": "function_calls"}]}, "metrics.0.calls", "list"),
        ({"metrics": [{"measure": "function_calls", "calls": [5]}]}, "metrics.0.calls.0", "name"),
        (
            {
                "metrics": [
                    {"measure": "words", "max_value": 1},
                    {"measure": "words", "max_value": 2},
                ]
            },
            "metrics.1.name",
            "listed twice",
        ),
        (
            {"metrics": [{"name": "a", "criterion": "x", "colour": 1}]},
            "metrics.0.colour",
            "unknown",
        ),
    ],
)
def test_problems_name_the_key(changes: dict[str, Any], key: str, problem: str) -> None:
    with pytest.raises(SimulationError) as caught:
        parse(**changes)
    assert caught.value.key == key
    assert problem in caught.value.problem
    assert str(caught.value).startswith("book.yaml:3: ")


def test_line_of_gives_the_line_of_the_key() -> None:
    lines = {"metrics.0.min_score": 13}
    data = {"name": "f/s", **BASE, "metrics": [{"measure": "words", "min_score": 1}]}
    with pytest.raises(SimulationError) as caught:
        parse_simulation(data, "f.yaml", line_of=lambda key: lines.get(key, 1))
    assert str(caught.value) == "f.yaml:13: metrics.0.min_score: a measured metric takes a range"
