"""Judges for ``eval:`` (lifecycle.testing.judge), against a local OpenAI-compatible stand-in.

A "no" with its reason, "continue" then "yes", an unreachable endpoint (exit 3), malformed
and hostile answers (clear errors), file factories, and the key in no output at all.
"""

from __future__ import annotations

import asyncio
import json
import logging
import sys
from pathlib import Path
from typing import Any

import pytest

from lifecycle.cli import main
from lifecycle.testing.judge import (
    CallableJudge,
    JudgeUnavailableError,
    ModelJudge,
    Verdict,
    judge_source,
    verdict_of,
)
from lifecycle.testing.model import ModelEndpoint
from lifecycle.testing.scenario import load_scenarios
from tests.support.openai_stub import OpenAIStub, StubReply, scripted
from tests.support.toolkit import free_port_url, write_scenario

SECRET = "sk-test-0123456789abcdef-secret"


def answer(verdict: str, reason: str = "") -> str:
    return json.dumps({"verdict": verdict, "reason": reason})


async def test_a_no_comes_with_its_reason() -> None:
    with OpenAIStub(scripted(answer("no", "It talks about Paris, not Tokyo."))) as stub:
        judge = ModelJudge(ModelEndpoint(stub.base_url, "judge-model"))
        judge.add_user_message("What is the capital of Japan?")
        judge.add_assistant_message("Paris is lovely.")
        async with asyncio.timeout(30):
            verdict = await judge.evaluate("says Tokyo")
            await judge.aclose()
        (request,) = stub.completions
    assert verdict == Verdict("no", "It talks about Paris, not Tokyo.")
    assert request["model"] == "judge-model"
    system, user = request["messages"]
    assert "Criterion: says Tokyo" in system["content"] and "continue" in system["content"]
    state = json.loads(user["content"])
    assert state == {
        "conversation": [{"role": "user", "content": "What is the capital of Japan?"}],
        "latest_bot_reply": "Paris is lovely.",
    }


async def test_continue_then_yes_and_answers_are_cached() -> None:
    replies = scripted(
        "```json\n" + answer("continue") + "\n```", answer("yes", "Tokyo"), then=answer("no")
    )
    with OpenAIStub(replies) as stub:
        judge = ModelJudge(ModelEndpoint(stub.base_url, "m"), allow_continue=True)
        judge.add_assistant_message("Let me check.")
        async with asyncio.timeout(30):
            first = await judge.evaluate("says Tokyo")
            judge.add_assistant_message("It is Tokyo.")
            second = await judge.evaluate("says Tokyo")
            again = await judge.evaluate("says Tokyo")  # same question, same conversation
            call = await judge.evaluate_call("book", {"time": "6pm"}, "books at 6pm")
            await judge.aclose()
        assert len(stub.completions) == 3
    assert (first.verdict, second.verdict, again.verdict) == ("continue", "yes", "yes")
    assert call == Verdict("no", "(the judge gave no reason)")
    assert json.loads(stub.completions[1]["messages"][1]["content"])["latest_bot_reply"] == (
        "Let me check. It is Tokyo."
    )


@pytest.mark.parametrize(
    ("reply", "problem"),
    [
        ("I think it does.", 'did not answer {"verdict": ..., "reason": ...}'),
        (answer("maybe"), "answered 'maybe', not one of yes, no, continue"),
        (StubReply(raw=b"{not json", status=200), "not usable"),
        (StubReply(raw=b"x" * 5_000_000), "not usable"),
        (StubReply(raw=b"[" * 10_000 + b"]" * 10_000), "not usable"),
        (StubReply(status=500), "cannot be reached"),
        (StubReply(raw=b'{"choices": []}'), "not usable"),
        (json.dumps({"verdict": 5, "reason": []}), "did not answer"),
        (json.dumps({"verdict": "no", "reason": ["x"] * 3}), "ok"),
    ],
)
async def test_malformed_and_hostile_answers_are_clear_errors(reply: Any, problem: str) -> None:
    with OpenAIStub(scripted(reply)) as stub:
        judge = ModelJudge(ModelEndpoint(stub.base_url, "m"), timeout=20)
        judge.add_assistant_message("Hello.")
        if problem == "ok":  # a reason of the wrong type: the verdict stands, reason-less
            async with asyncio.timeout(30):
                verdict = await judge.evaluate("greets")
            await judge.aclose()
            assert verdict == Verdict("no", "(the judge gave no reason)")
            return
        with pytest.raises(JudgeUnavailableError) as error:
            async with asyncio.timeout(30):
                await judge.evaluate("greets")
        await judge.aclose()
    assert problem in str(error.value)


async def test_an_unreachable_or_slow_endpoint() -> None:
    judge = ModelJudge(ModelEndpoint(free_port_url() + "/v1", "m"), timeout=5)
    with pytest.raises(JudgeUnavailableError, match="the judge cannot be reached"):
        async with asyncio.timeout(30):
            await judge.evaluate("greets")
    await judge.aclose()
    with OpenAIStub(scripted(StubReply(text=answer("yes"), delay=10))) as stub:
        slow = ModelJudge(ModelEndpoint(stub.base_url, "m"), timeout=0.5)
        with pytest.raises(JudgeUnavailableError, match=r"did not answer within 0\.5 s"):
            async with asyncio.timeout(30):
                await slow.evaluate("greets")
        await slow.aclose()


def test_callable_verdicts() -> None:
    assert verdict_of(True) == Verdict("yes")
    assert verdict_of((False, "too short")) == Verdict("no", "too short")
    assert verdict_of(("Not applicable", "")) == Verdict("not_applicable")
    assert verdict_of("continue").verdict == "continue"
    with pytest.raises(JudgeUnavailableError, match="not a verdict"):
        verdict_of(42)


async def test_a_callable_judge_sees_the_latest_reply_and_calls() -> None:
    seen: list[tuple[str, str]] = []

    def fn(criterion: str, text: str) -> bool:
        seen.append((criterion, text))
        return True

    judge = CallableJudge(fn)
    judge.add_user_message("hi")
    judge.add_assistant_message("Hello")
    judge.add_assistant_message("there.")
    assert (await judge.evaluate("greets")).passed
    assert (await judge.evaluate_call("book", {"n": 2}, "books")).passed
    assert seen == [("greets", "Hello there."), ("books", 'book({"n": 2})')]


JUDGED = """
    name: judged
    judge:
      eval:
        service: ollama
        model: gemma4:12b
    turns:
      - user: "hello"
        expect:
          - event: response
            eval: "repeats what the user said"
"""


def test_where_the_judge_comes_from(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OLLAMA_HOST", "127.0.0.1:9")
    (scenario,) = load_scenarios(write_scenario(tmp_path, "j.yaml", JUDGED))
    from_file = judge_source(scenario)
    assert from_file is not None and from_file.endpoint is not None
    assert (from_file.endpoint.base_url, from_file.endpoint.model) == (
        "http://127.0.0.1:9/v1",
        "gemma4:12b",
    )
    url = judge_source(scenario, url="http://127.0.0.1:1/v1", model="other")
    assert url is not None and url.endpoint is not None and url.endpoint.model == "other"
    fn = judge_source(scenario, fn=lambda c, t: True, fn_name="m:f", url="http://x/v1")
    assert fn is not None and fn.kind == "callable"


def _run(args: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str, str]:
    code = main(args)
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def test_judge_url_runs_a_file_as_published(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("OPENAI_API_KEY", SECRET)
    path = write_scenario(tmp_path, "judged.yaml", JUDGED)
    handler = scripted(answer("yes", "It repeats hello."), then=answer("no", "It does not."))
    with OpenAIStub(handler) as stub:
        args = ["test", str(path), "--judge-url", stub.base_url, "--judge-model", "stub"]
        code, out, err = _run(args, capsys)
        assert code == 0, out + err
        assert "judged  PASSED" in out
        # The judge says no: the run waits out the expectation's budget (15 s, not 60 s).
        code, out, err = _run([*args, "--timeout", "15"], capsys)
        assert code == 1
        assert "judge said no: It does not." in out
        headers = {k.lower(): v for k, v in stub.requests[0].headers.items()}
        assert headers["authorization"] == f"Bearer {SECRET}"  # sent, never shown


def test_an_unreachable_judge_exits_3_and_the_key_is_never_shown(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("OPENAI_API_KEY", SECRET)
    path = write_scenario(tmp_path, "judged.yaml", JUDGED)
    logs = tmp_path / "logs"
    report, junit = tmp_path / "report", tmp_path / "junit.xml"
    args = ["test", str(path), "--judge-url", free_port_url() + "/v1", "--judge-model", "m"]
    args += ["--report", str(report), "--junit-xml", str(junit), "-vv"]
    with _captured_logs(logs) as log_lines:
        code, out, err = _run(args, capsys)
    assert code == 3
    assert "ERROR the judge cannot be reached" in out
    code_json, out_json, err_json = _run([*args, "--json"], capsys)
    assert code_json == 3
    assert json.loads(out_json.splitlines()[0])["error"].startswith("the judge cannot be reached")
    written = "".join(p.read_text() for p in report.iterdir()) + junit.read_text()
    for text in (out, err, out_json, err_json, written, "\n".join(log_lines)):
        assert SECRET not in text and SECRET[:12] not in text


class _captured_logs:
    """Every log record of the run, formatted (the key must be in none)."""

    def __init__(self, _path: Path) -> None:
        self.lines: list[str] = []
        self.handler = logging.Handler()
        self.handler.emit = lambda record: self.lines.append(  # type: ignore[method-assign]
            f"{record.getMessage()} {record.exc_info!r}"
        )

    def __enter__(self) -> list[str]:
        logging.getLogger().addHandler(self.handler)
        return self.lines

    def __exit__(self, *_exc: object) -> None:
        logging.getLogger().removeHandler(self.handler)


def test_file_factories(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    (tmp_path / "my_judges.py").write_text(
        "def polite(config):\n"
        "    return lambda criterion, text: ('hello' in text, 'saw ' + config['model'])\n"
        "class Classifier:\n"
        "    pass\n"
        "Classifier.__module__ = 'pipecat.classifiers.base_classifier'\n"
        "def pipecat_style(config):\n"
        "    return Classifier()\n"
    )
    monkeypatch.syspath_prepend(str(tmp_path))
    text = JUDGED.replace("service: ollama", "factory: my_judges.polite")
    good = write_scenario(tmp_path, "good.yaml", text)
    code, out, err = _run(["test", str(good)], capsys)
    assert code == 0, out + err
    pipecat = write_scenario(tmp_path, "p.yaml", text.replace("polite", "pipecat_style"))
    code, out, _ = _run(["test", str(pipecat)], capsys)
    assert code == 3
    assert "returned a Classifier, which needs pipecat.evals; give --judge-url" in out
    missing = write_scenario(tmp_path, "m.yaml", text.replace("my_judges", "evals.judges"))
    assert _run(["test", str(missing), "--validate"], capsys)[0] == 0  # nothing imported
    code, out, _ = _run(["test", str(missing)], capsys)
    assert code == 3 and "judge factory 'evals.judges.polite' cannot be run" in out
    sys.modules.pop("my_judges", None)
