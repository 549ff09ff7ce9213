"""``pipecat-lifecycle test`` with simulation files, against the testing bot and the stand-in."""

from __future__ import annotations

import json
import textwrap
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from lifecycle.cli import main
from tests.support.openai_stub import OpenAIStub, StubReply, Tool, scripted
from tests.support.threaded import in_thread
from transports.testing import Dialogue, TestingBotServer

KEY = "sk-cli-SECRET-0123456789abcdef"
GREETING = "Hello, this is the restaurant."
HANG_UP = StubReply(tool_calls=(Tool("end_call", {"success": True, "reason": "done"}),))


def is_judge(request: dict[str, Any]) -> bool:
    tools = [t["function"]["name"] for t in request.get("tools") or []]
    return "end_call" not in tools


def judge_yes(request: dict[str, Any]) -> StubReply:
    tools = request.get("tools") or []
    verdict = {"verdict": "yes", "reason": "the bot did"}
    if tools:
        return StubReply(tool_calls=(Tool(tools[0]["function"]["name"], verdict),))
    return StubReply(text=json.dumps(verdict))


def persona_then_judge(*persona: StubReply | str) -> Any:
    next_persona = scripted(*persona)
    return lambda request: judge_yes(request) if is_judge(request) else next_persona(request)


def polite_caller(request: dict[str, Any]) -> StubReply | str:
    """One line, then hang up (each run alike: it counts its own turns)."""
    if is_judge(request):
        return judge_yes(request)
    said = sum(m["role"] == "assistant" for m in request["messages"])
    return "A table for two, please." if said == 0 else HANG_UP


@pytest.fixture(autouse=True)
def key(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OPENAI_API_KEY", KEY)


@pytest.fixture
def stub() -> Iterator[OpenAIStub]:
    with OpenAIStub(polite_caller) as server:
        yield server


@pytest.fixture
def bot() -> Iterator[TestingBotServer]:
    with in_thread(TestingBotServer(dialogue=Dialogue(greeting=GREETING))) as server:
        yield server


def sim_file(tmp_path: Path, stub: OpenAIStub, extra: str = "") -> Path:
    path = tmp_path / "booking.yaml"
    path.write_text(
        textwrap.dedent(
            f"""\
            name: booking
            simulator:
              endpoint: {stub.base_url}
              model: stand-in
            judge:
              eval:
                endpoint: {stub.base_url}
                model: stand-in
            max_turns: 4
            scenarios:
              - name: table
                persona: "Jamie, calling to book a table."
                goal: "Book a table for two."
                success: "the bot took the booking"
            """
        )
        + textwrap.dedent(extra)
    )
    return path


def run(bot: TestingBotServer, *args: str) -> int:
    return main(["test", *args, "--start", bot.start_url])


def test_a_simulation_file_runs_and_writes_its_conversation(
    bot: TestingBotServer, stub: OpenAIStub, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    logs = tmp_path / "logs"
    code = run(bot, str(sim_file(tmp_path, stub)), "--logs-dir", str(logs))
    out = capsys.readouterr()
    assert code == 0, out.out + out.err
    assert "booking/table  PASSED  (ended by end_call" in out.out
    [log] = logs.glob("booking__table__001.conversation.json")
    saved = json.loads(log.read_text())
    assert saved["end_reason"] == "end_call" and saved["passed"]
    assert saved["turns"][0]["caller"] == "A table for two, please."
    assert saved["conversation"][0] == {
        "role": "assistant",
        "content": GREETING,
        "at": saved["conversation"][0]["at"],
    }
    assert KEY not in out.out + out.err + log.read_text()
    assert stub.requests[0].headers["Authorization"] == f"Bearer {KEY}"


def test_repeat_gives_a_pass_rate_and_fails_when_one_run_fails(
    bot: TestingBotServer, stub: OpenAIStub, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    runs = iter([True, False, True])
    keep: dict[str, bool] = {}

    def caller(request: dict[str, Any]) -> StubReply | str:
        if is_judge(request):
            return judge_yes(request)
        said = sum(m["role"] == "assistant" for m in request["messages"])
        if said == 0:
            keep["hangs_up"] = next(runs)
            return "A table for two, please."
        return HANG_UP if keep["hangs_up"] else "Hmm, let me think."

    stub.handler = caller
    code = run(bot, str(sim_file(tmp_path, stub)), "--repeat", "3", "--json")
    out = capsys.readouterr()
    assert code == 1, out.out + out.err
    lines = [json.loads(line) for line in out.out.splitlines() if line.startswith("{")]
    [summary] = [line for line in lines if line.get("event") == "simulation"]
    assert summary["pass_rate"] == pytest.approx(2 / 3, abs=1e-3)
    assert [r["end_reason"] for r in summary["runs"]] == ["end_call", "max_turns", "end_call"]


def test_model_endpoint_failing_mid_conversation_exits_3(
    bot: TestingBotServer, stub: OpenAIStub, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    echo = json.dumps({"error": {"message": f"upstream down for {KEY}"}}).encode()
    stub.handler = persona_then_judge("A table, please.", StubReply(status=502, raw=echo))
    code = run(bot, str(sim_file(tmp_path, stub)))
    out = capsys.readouterr()
    assert code == 3, out.out + out.err
    assert "ended by error" in out.out and "HTTP 502" in out.out
    assert KEY not in out.out + out.err
    # The session was cleaned up: the bot's side of the WebSocket closes (bounded wait).
    server = bot._ws
    assert server is not None
    deadline = time.monotonic() + 10
    while server.connections and time.monotonic() < deadline:
        time.sleep(0.02)  # the bot's loop is in another thread: poll its connection set
    assert not server.connections


def test_model_call_cap_from_the_command_line(
    bot: TestingBotServer, stub: OpenAIStub, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    stub.handler = persona_then_judge("Go on.")
    code = run(bot, str(sim_file(tmp_path, stub)), "--max-model-calls", "2")
    out = capsys.readouterr()
    assert code == 1, out.out + out.err
    assert "model call limit reached (2 calls to stand-in)" in out.out


def test_hostile_persona_answer_fails_the_run(
    bot: TestingBotServer, stub: OpenAIStub, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    stub.handler = persona_then_judge(StubReply(tool_calls=(Tool("rm_rf", {}),)))
    code = run(bot, str(sim_file(tmp_path, stub)))
    out = capsys.readouterr()
    assert code == 1, out.out + out.err
    assert "unknown tool 'rm_rf'" in out.out


def test_simulator_url_overrides_a_factory_block(
    bot: TestingBotServer, stub: OpenAIStub, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = sim_file(tmp_path, stub)
    path.write_text(
        path.read_text().replace(
            f"  endpoint: {stub.base_url}\n  model: stand-in\njudge", "  factory: my.llm\njudge", 1
        )
    )
    assert "factory: my.llm" in path.read_text()
    code = run(
        bot,
        str(path),
        "--simulator-url",
        stub.base_url,
        "--simulator-model",
        "other-model",
    )
    out = capsys.readouterr()
    assert code == 0, out.out + out.err
    persona = [r for r in stub.completions if not is_judge(r)]
    assert {r["model"] for r in persona} == {"other-model"}


def test_validate_checks_simulation_files(
    stub: OpenAIStub, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    good = sim_file(tmp_path, stub)
    assert main(["test", "--validate", str(good)]) == 0
    bad = tmp_path / "bad.yaml"
    bad.write_text(good.read_text().replace("max_turns: 4", "max_turns: 0"))
    capsys.readouterr()
    assert main(["test", "--validate", str(bad)]) == 2
    err = capsys.readouterr().err
    line = bad.read_text().splitlines().index("max_turns: 0") + 1
    assert f"{bad}:{line}: max_turns:" in err
    unjudged = tmp_path / "unjudged.yaml"
    text = good.read_text()
    unjudged.write_text(text.replace(text[text.index("judge:") : text.index("max_turns:")], ""))
    assert main(["test", "--validate", str(unjudged)]) == 2
    assert (
        "judge: a simulation's success: and metric criteria need a judge" in capsys.readouterr().err
    )
    assert (
        main(
            [
                "test",
                "--validate",
                str(unjudged),
                "--judge-url",
                "http://x/v1",
                "--judge-model",
                "m",
            ]
        )
        == 0
    )
    assert stub.requests == []  # validation contacts nothing


def test_load_runs_one_simulated_call_per_session(
    bot: TestingBotServer, stub: OpenAIStub, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = sim_file(tmp_path, stub)
    args = ["load", "--start", bot.start_url, "--scenario", str(path), "--json"]
    code = main([*args, "--sessions", "6", "--concurrency", "3"])
    out = capsys.readouterr()
    assert code == 0, out.out + out.err
    summary = json.loads(out.out.strip().splitlines()[-1])
    assert (summary["sessions"], summary["ok"], summary["pass_rate"]) == (6, 6, 1.0)
    turns = summary["latency_ms"]["turn_llm_first"]
    assert turns["count"] >= 6 and turns["p50"] <= turns["p99"]
    assert KEY not in out.out + out.err


def test_audio_modality_speaks_with_the_local_voice(
    bot: TestingBotServer, stub: OpenAIStub, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    speech = """\
        user:
          modality: audio
          speech: {service: kokoro, voice: af_heart}
        """
    path = sim_file(tmp_path, stub)
    path.write_text(
        path.read_text().replace("max_turns: 4\n", "max_turns: 4\n" + textwrap.dedent(speech))
    )
    code = run(bot, str(path), "--logs-dir", str(tmp_path))
    out = capsys.readouterr()
    assert code == 0, out.out + out.err
    assert bot.received_audio  # the persona spoke
    run_log = json.loads(next(tmp_path.glob("*.conversation.json")).read_text())
    assert run_log["turns"][0]["bot"] == "You said: Hello from the microphone."


def test_report_and_junit_have_one_entry_per_run(
    bot: TestingBotServer, stub: OpenAIStub, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    import xml.etree.ElementTree as ET

    reports, junit = tmp_path / "reports", tmp_path / "junit.xml"
    path = str(sim_file(tmp_path, stub))
    code = run(bot, path, "--repeat", "2", "--report", str(reports), "--junit-xml", str(junit))
    out = capsys.readouterr()
    assert code == 0, out.out + out.err
    assert sorted(p.name for p in reports.iterdir()) == [
        "booking__table__001.html",
        "booking__table__002.html",
    ]
    cases = ET.parse(junit).getroot().findall(".//testcase")
    assert [c.get("name") for c in cases] == ["booking/table [run 1]", "booking/table [run 2]"]
    assert all(c.find("failure") is None and c.find("error") is None for c in cases)
    assert "turn 1:" in (cases[0].findtext("system-out") or "")


def always_yes(criterion: str, text: str) -> tuple[str, str]:
    """A ``--judge MODULE:CALLABLE`` judge."""
    return "yes", f"judged {criterion!r}"


def test_judge_callable_from_the_command_line(
    bot: TestingBotServer, stub: OpenAIStub, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code = run(bot, str(sim_file(tmp_path, stub)), "--judge", f"{__name__}:always_yes")
    out = capsys.readouterr()
    assert code == 0, out.out + out.err
    assert "judged 'the bot took the booking'" in out.out
    assert all(not is_judge(r) for r in stub.completions)  # the endpoint judged nothing


def test_a_pipecat_judge_factory_needs_the_judge_url(
    bot: TestingBotServer, stub: OpenAIStub, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = sim_file(tmp_path, stub)
    text = path.read_text()
    judge_block = text[text.index("judge:") : text.index("max_turns:")]
    path.write_text(text.replace(judge_block, "judge:\n  eval:\n    factory: evals.judges.nope\n"))
    code = run(bot, str(path))
    out = capsys.readouterr()
    assert code == 3, out.out + out.err
    assert "--judge-url" in out.out + out.err


def test_repeat_applies_to_scripted_files(capsys: pytest.CaptureFixture[str]) -> None:
    echo = Path(__file__).parent.parent / "examples" / "scenarios" / "echo.yaml"
    assert main(["test", str(echo), "--repeat", "2", "--json"]) == 0
    lines = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    [rate] = [line for line in lines if line.get("event") == "pass_rate"]
    assert (rate["scenario"], rate["runs"], rate["pass_rate"]) == ("echo/three_turns", 2, 1.0)
    assert sum(line.get("event") == "scenario" for line in lines) == 2


def test_an_unreachable_bot_exits_3(
    stub: OpenAIStub, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]  # closed again: nothing listens there
    path = str(sim_file(tmp_path, stub))
    code = main(["test", path, "--start", f"http://127.0.0.1:{port}/start"])
    out = capsys.readouterr()
    assert code == 3, out.out + out.err
    assert "could not start or reach the bot" in out.out + out.err
    assert stub.requests == []  # no model call for a call that never started
