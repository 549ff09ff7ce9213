"""Pipecat's own eval files, as published, against a Pipecat 1.14 bot, over both transports.

The files are the pinned pipecat-ai source distribution's ``evals/`` (``make`` fetches it
with the interop venv: env ``PIPECAT_EVALS_DIR``). Every one of its 78 scenario files
passes ``test --validate`` (audio-modality ones, until the speaking caller is in this
build, fail only for that). A selection of 20 text-modality files (function calls among
them) runs unchanged with ``pipecat-lifecycle test`` against tests/interop/eval_bot.py over
WebSocket and SmallWebRTC, the judge given on the command line (``--judge-url``) and served,
like the bot's LLM, by the local OpenAI stand-in (tests/support/openai_stub.py).

Four files of Pipecat's turn-completion suite (67 scenarios, ``context:`` and ``llm_marker``)
run against the same bot's turn-completion pipeline over WebSocket.

The stand-in plays a plausible LLM for those files: where a turn of a selected file expects
function calls, the user's words of that turn make it call them (names and ``args:`` as the
file expects); where a turn expects a turn-completion marker, the context's last words and
the user's make it answer with that marker; otherwise, and after a tool result, it answers
in words. The judge says yes, with a reason quoting the reply it judged.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from lifecycle.cli import main
from lifecycle.testing.scenario import ScriptedScenario, load_scenario_file
from lifecycle.testing.scenario_check import file_kind
from lifecycle.testing.scenario_errors import ScenarioFileError, ScenarioFileErrors
from lifecycle.testing.yaml_source import read_yaml
from tests.support.interop_bots import BotProcess
from tests.support.openai_stub import OpenAIStub, StubReply, Tool
from tests.support.processes import pipecat_evals_dir
from tests.support.toolkit import patch_loopback_ice

SCRIPTED = "release/scenarios/scripted"
SELECTION = [
    f"{SCRIPTED}/{name}.yaml"
    for name in (
        "acme_handoff",
        "describe_image",
        "dtmf_menu",
        "food_ordering_pizza",
        "food_ordering_sushi",
        "function_call_timeout",
        "hello_world",
        "insurance_quote",
        "keenable",
        "llm_switching",
        "mcp_memory",
        "multi_turn",
        "patient_intake",
        "restaurant_reservation",
        "vision_describe",
        "weather",
        "weather_and_restaurant",
        "weather_function_call",
        "weather_no_function_call",
    )
] + ["llm-with-backend/scenarios/text/frontend_only.yaml"]
TURN_COMPLETION = [
    f"turn-completion/scenarios/{name}.yaml"
    for name in ("complete", "cutoff", "long", "short_complete")
]
MARKER_REPLIES = {
    "complete": "● That sounds wonderful, tell me more about it.",
    "incomplete": "◐",
    "short": "◐",
    "long": "○",
}
AUDIO_MISSING = "needs the speaking caller"


@pytest.fixture(scope="module")
def evals_dir() -> Path:
    return pipecat_evals_dir()


def scenario_files(root: Path) -> list[Path]:
    files = []
    for path in sorted(root.rglob("*.yaml")):
        try:
            kind = file_kind(read_yaml(path))
        except ScenarioFileError:
            kind = "scenario"
        if kind == "scenario":
            files.append(path)
    return files


def test_every_published_file_validates(evals_dir: Path) -> None:
    files = scenario_files(evals_dir)
    assert len(files) == 78
    valid, audio = [], []
    for path in files:
        try:
            load_scenario_file(path)
            valid.append(path)
        except ScenarioFileErrors as exc:
            problems = [e for e in exc.errors if AUDIO_MISSING not in e.problem]
            assert not problems, "\n".join(str(e) for e in problems)
            audio.append(path)
        except ScenarioFileError as exc:
            assert AUDIO_MISSING in exc.problem, str(exc)
            audio.append(path)
    print(f"\n{len(valid)} of {len(files)} published files valid; {len(audio)} need audio")
    for relative in SELECTION:
        assert evals_dir / relative in valid
    # Through the command line too, a folder at a time (fragments and manifests skipped).
    text_only = [str(p) for p in valid]
    assert main(["test", "--validate", *text_only]) == 0


def stand_in_rules(evals_dir: Path) -> dict[str, list[Tool]]:
    """User words -> the calls the selected files expect after them."""
    rules: dict[str, list[Tool]] = {}
    for relative in SELECTION:
        for scenario in load_scenario_file(evals_dir / relative).scenarios:
            assert isinstance(scenario, ScriptedScenario)
            for turn in scenario.turns:
                calls = [
                    Tool(call.name or "remember", dict(call.args or {}))
                    for exp in turn.expect
                    if exp.event == "function_call" and not exp.absent
                    for call in exp.calls
                ]
                if turn.user is not None and calls:
                    known = rules.setdefault(turn.user, [])
                    known.extend(c for c in calls if c.name not in {k.name for k in known})
    return rules


def marker_rules(evals_dir: Path) -> dict[tuple[str, str], str]:
    """(the context's last assistant words, the user's words) -> the reply with its marker."""
    rules: dict[tuple[str, str], str] = {}
    for relative in TURN_COMPLETION:
        for scenario in load_scenario_file(evals_dir / relative).scenarios:
            assert isinstance(scenario, ScriptedScenario)
            said = [m["content"] for m in scenario.context if m.get("role") == "assistant"]
            for turn in scenario.turns:
                kinds = [e.marker for e in turn.expect if e.event == "llm_marker"]
                if turn.user is not None:
                    key = (said[-1] if said else "", turn.user.strip())
                    rules[key] = MARKER_REPLIES[(kinds[0] if kinds else None) or "complete"]
    return rules


def _text(message: dict[str, Any]) -> str:
    content = message.get("content")
    if isinstance(content, list):  # text with an image (send-file): its text part
        content = " ".join(str(p.get("text", "")) for p in content if isinstance(p, dict))
    return content.strip() if isinstance(content, str) else ""


class StandIn:
    """The bots' LLM and the judge, one OpenAI-compatible server."""

    def __init__(self, rules: dict[str, list[Tool]], markers: dict[tuple[str, str], str]) -> None:
        self.rules = rules
        self.markers = markers
        self.judged: list[dict[str, Any]] = []

    def __call__(self, request: dict[str, Any]) -> StubReply | str:
        messages = request.get("messages") or []
        first = messages[0].get("content") if messages else ""
        if isinstance(first, str) and first.startswith("You are a judge"):
            state = json.loads(messages[-1]["content"])
            self.judged.append(state)
            reply = state.get("latest_bot_reply") or json.dumps(state.get("call"))
            return json.dumps({"verdict": "yes", "reason": f"the bot said: {reply[:80]}"})
        last = messages[-1] if messages else {}
        role, text = last.get("role"), _text(last)
        if role == "tool":
            return "Done. All set: I took care of that for you. Anything else?"
        if role == "user":
            said = [_text(m) for m in messages[:-1] if m.get("role") == "assistant"]
            marked = self.markers.get((said[-1] if said else "", text))
            if marked is not None:
                return marked
            calls = self.rules.get(text)
            if calls:
                return StubReply(tool_calls=calls)
            return f"Sure. You said: {text} Here is my answer."
        return "Hello! I'm your assistant. How can I help you today?"


@pytest.fixture(scope="module")
def stand_in(evals_dir: Path) -> Iterator[tuple[OpenAIStub, StandIn]]:
    handler = StandIn(stand_in_rules(evals_dir), marker_rules(evals_dir))
    with OpenAIStub(handler) as stub:
        yield stub, handler


@pytest.fixture(scope="module")
def eval_bot(
    interop_python_path: Path, stand_in: tuple[OpenAIStub, StandIn], tmp_path_factory: Any
) -> Iterator[BotProcess]:
    stub, _ = stand_in
    log_dir = tmp_path_factory.mktemp("eval-bot")
    bot = BotProcess(
        interop_python_path,
        "eval_bot.py",
        ["--port", "{port}", "--llm-url", stub.base_url],
        log_dir,
    )
    bot.start()
    try:
        yield bot
    finally:
        bot.stop()
        sys.stderr.write(f"\neval bot log: {bot.log_path}\n")


@pytest.mark.parametrize("transport", ["ws", "webrtc"])
def test_published_files_run_as_published(
    transport: str,
    evals_dir: Path,
    eval_bot: BotProcess,
    stand_in: tuple[OpenAIStub, StandIn],
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    patch_loopback_ice(monkeypatch)
    stub, handler = stand_in
    handler.judged.clear()
    files = [str(evals_dir / relative) for relative in SELECTION]
    code = main(
        [
            "test",
            *files,
            "--start",
            f"{eval_bot.base_url}/start",
            "--transport",
            transport,
            "--judge-url",
            stub.base_url,
            "--judge-model",
            "stand-in-judge",
            "--json",
        ]
    )
    captured = capsys.readouterr()
    lines = [json.loads(line) for line in captured.out.splitlines() if line.startswith("{")]
    results = [line for line in lines if line.get("event") == "scenario"]
    passed = [r["scenario"] for r in results if r["passed"]]
    failed = {r["scenario"]: r["failures"] or r["error"] for r in results if not r["passed"]}
    print(f"\n{transport}: {len(passed)} of {len(results)} scenarios of {len(files)} files passed")
    assert code == 0, json.dumps(failed, indent=1) + captured.err + eval_bot.tail()
    assert len(results) == 22 and len(passed) == 22
    # The judge saw the bot's own words, and the function calls the files check.
    assert any("Hello!" in (s.get("latest_bot_reply") or "") for s in handler.judged)


def test_turn_completion_files_run_as_published(
    evals_dir: Path,
    eval_bot: BotProcess,
    stand_in: tuple[OpenAIStub, StandIn],
    capsys: pytest.CaptureFixture[str],
) -> None:
    """Pipecat's turn-completion suite: context: and llm_marker against a marker-reporting bot."""
    stub, _ = stand_in
    files = [str(evals_dir / relative) for relative in TURN_COMPLETION]
    args = ["test", *files, "--start", f"{eval_bot.base_url}/tc/start", "--json"]
    code = main([*args, "--judge-url", stub.base_url, "--judge-model", "stand-in-judge"])
    captured = capsys.readouterr()
    lines = [json.loads(line) for line in captured.out.splitlines() if line.startswith("{")]
    results = [line for line in lines if line.get("event") == "scenario"]
    failed = {r["scenario"]: r["failures"] or r["error"] for r in results if not r["passed"]}
    print(f"\nturn-completion (ws): {len(results) - len(failed)} of {len(results)} passed")
    assert code == 0, json.dumps(failed, indent=1)[:4000] + captured.err[-2000:]
    assert len(results) == 67 and "eval-context" not in captured.err
