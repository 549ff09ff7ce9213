"""``pipecat-lifecycle test`` over WebSocket against the testing bot (API.md §13).

Exit codes 0/1/2/3, the timing table, JUnit XML, a judge for ``eval:``, audio and DTMF
turns, function calls with ``calls:``, and a failing file that points at the right line.
The examples in ``examples/`` run here exactly as their comments say.
"""

from __future__ import annotations

import asyncio
import sys
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

from lifecycle.cli import main
from tests.support.toolkit import (
    REPO,
    cli_command,
    cli_env,
    free_port_url,
    let_webrtc_bot_close,
    patch_loopback_ice,
    readme_testing_blocks,
    run_cli,
    write_scenario,
    write_tone,
)

EXAMPLES = REPO / "examples" / "scenarios"


def test_examples_run_as_written() -> None:
    done = run_cli("test", "examples/scenarios/echo.yaml", "examples/scenarios/weather.yaml")
    assert done.returncode == 0, done.stdout + done.stderr
    assert "echo/three_turns  PASSED" in done.stdout
    assert "weather/calls_get_weather  PASSED" in done.stdout
    assert "2 of 2 scenarios passed" in done.stdout


def test_timing_table_and_junit(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    report = tmp_path / "report.xml"
    code = main(["test", str(EXAMPLES / "echo.yaml"), "--junit-xml", str(report)])
    out = capsys.readouterr().out
    assert code == 0, out
    header = next(line for line in out.splitlines() if "expectation" in line)
    assert header.split() == ["turn", "expectation", "within", "latency", "result"]
    rows = [line.split() for line in out.splitlines() if line.endswith("  passed")]
    assert len(rows) == 5  # one per expectation, each with its latency from the turn's anchor
    assert all(row[-2] == "ms" and row[-3].isdigit() for row in rows)
    suite = ET.parse(report).getroot().find("testsuite")
    assert suite is not None
    assert (suite.get("tests"), suite.get("failures"), suite.get("errors")) == ("1", "0", "0")
    case = suite.find("testcase")
    assert case is not None and case.get("name") == "echo/three_turns"
    assert case.find("failure") is None


FAILING = """
    name: failing
    scenarios:
      - name: wrong_reply
        turns:
          - user: "hello"
            expect:
              - event: llm_response
                text_contains: "hello"
          - user: "how are you"
            expect:
              - event: llm_started
              - event: llm_response
                text_contains: "Berlin"
                within_ms: 1500
          - user: "never sent"
      - name: passes
        turns:
          - user: "fine"
            expect:
              - event: llm_response
                text_contains: "fine"
"""


def test_a_failing_scenario_fails_at_the_right_expectation(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = write_scenario(tmp_path, "failing.yaml", FAILING)
    report = tmp_path / "report.xml"
    code = main(["test", str(path), "--junit-xml", str(report)])
    out = capsys.readouterr().out
    assert code == 1
    assert "failing/wrong_reply  FAILED" in out and "failing/passes  PASSED" in out
    failure = f"{path}:12: turn 2 ('how are you'), expectation llm_response ~ 'Berlin': "
    assert failure + "not satisfied within 1500ms: 'You said: how are you' does not contain" in out
    assert "1 of 2 scenarios passed" in out
    # stop_on_failure (default true): turn 3 never ran.
    assert out.count("not run") == 0 and "never sent" not in out
    suite = ET.parse(report).getroot().find("testsuite")
    assert suite is not None and suite.get("failures") == "1"
    failed = suite.find("testcase[@name='failing/wrong_reply']/failure")
    assert failed is not None and failed.get("message", "").startswith(f"{path}:12: turn 2")


def test_a_bad_file_exits_2_before_anything_runs(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    good = EXAMPLES / "echo.yaml"
    bad = write_scenario(
        tmp_path,
        "bad.yaml",
        """
        name: bad
        judge:
          modality: txt
        scenarios:
          - name: s
            turns: [{user: hi, expct: []}]
        """,
    )
    code = main(["test", str(good), str(bad)])
    captured = capsys.readouterr()
    assert code == 2
    assert f"error: {bad}:3: modality: must be audio or text" in captured.err
    assert f"error: {bad}:6: expct: unknown key in a turn (did you mean 'expect'?)" in captured.err
    assert "2 problem(s) found" in captured.err
    assert "PASSED" not in captured.out  # validated before running anything


def test_validate_checks_every_file_and_runs_nothing(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (tmp_path / "suite").mkdir()
    write_scenario(tmp_path / "suite", "one.yaml", "name: one\nturns: [{user: hi}]\n")
    write_scenario(tmp_path / "suite", "turns.yaml", "- user: hi\n")
    write_scenario(tmp_path / "suite", "two.yml", "name: two\nturns: !include turns.yaml\n")
    code = main(["test", str(tmp_path / "suite"), "--validate", "--start", free_port_url()])
    captured = capsys.readouterr()
    assert code == 0, captured.err
    assert f"skipped {tmp_path / 'suite' / 'turns.yaml'}: a fragment" in captured.err
    assert "2 scenarios in 1 path(s): valid" in captured.out
    # A fragment named on the command line is an error.
    assert main(["test", str(tmp_path / "suite" / "turns.yaml"), "--validate"]) == 2
    assert "a fragment" in capsys.readouterr().err


def test_eval_without_a_judge_is_refused_at_validation(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = write_scenario(tmp_path, "judged.yaml", JUDGED)
    code = main(["test", str(path), "--validate"])
    err = capsys.readouterr().err
    assert code == 2
    assert f"{path}:5: eval: 'eval:' needs a judge: give the file a 'judge:' block" in err
    assert "--judge-url URL --judge-model NAME" in err


JUDGED = """
    name: judged
    turns:
      - user: "hello"
        expect:
          - event: response
            eval: "repeats what the user said"
"""


def test_eval_with_a_judge(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    (tmp_path / "my_judge.py").write_text(
        "async def judge(criterion, text):\n"
        "    return ('hello' in text, 'saw hello' if 'hello' in text else 'no hello')\n"
        "def strict(criterion, text):\n"
        "    return False\n"
        "def broken(criterion, text):\n"
        "    raise RuntimeError('no model')\n"
    )
    monkeypatch.syspath_prepend(str(tmp_path))
    path = write_scenario(tmp_path, "judged.yaml", JUDGED)
    assert main(["test", str(path), "--judge", "my_judge:judge"]) == 0
    assert main(["test", str(path), "--judge", "my_judge:strict"]) == 1
    out = capsys.readouterr().out
    assert "eval 'repeats what the user said': judge said no: (the judge gave no reason)" in out
    assert main(["test", str(path), "--judge", "my_judge:broken"]) == 3
    assert "ERROR the judge raised RuntimeError: no model" in capsys.readouterr().out
    with pytest.raises(SystemExit) as usage:
        main(["test", str(path), "--judge", "my_judge"])
    assert usage.value.code == 2
    sys.modules.pop("my_judge", None)


def test_audio_dtmf_and_function_call_turns(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    write_tone(tmp_path / "question.wav", rate=8000, channels=2, seconds=0.5)
    path = write_scenario(
        tmp_path,
        "mixed.yaml",
        """
        name: mixed
        scenarios:
          - name: all_kinds
            turns:
              - audio: question.wav
                expect:
                  - event: user_started_speaking
                    within_ms: 3000
                  - event: user_transcription
                    text_contains: "microphone"
                    within_ms: 3000
                  - event: llm_response
                    text_contains: "You said: Hello from the microphone."
                    within_ms: 3000
              - dtmf: "1*#"
              - user: "what's the weather?"
                expect:
                  - event: function_call
                    calls:
                      - name: get_weather
                        args: {location: Lisbon}
                    within_ms: 3000
          - name: wrong_args
            turns:
              - user: "weather please"
                expect:
                  - event: function_call
                    calls:
                      - name: get_weather
                        args: {location: Paris}
                    within_ms: 500
        """,
    )
    code = main(["test", str(path)])
    out = capsys.readouterr().out
    assert code == 1
    assert "mixed/all_kinds  PASSED" in out
    assert (
        f"{path}:27: turn 1 ('weather please'), expectation function_call get_weather"
        "(location='Paris'): no 'get_weather' call had args {'location': 'Paris'} "
        "(saw [{'location': 'Lisbon'}])" in out
    )


def test_absent_fails_when_the_event_arrives(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = write_scenario(
        tmp_path,
        "absent.yaml",
        """
        name: absent
        turns:
          - user: "hello"
            expect:
              - event: llm_started
                absent: true
                within_ms: 2000
        """,
    )
    assert main(["test", str(path)]) == 1
    assert "expected no 'llm_started' within 2000ms, but one arrived" in capsys.readouterr().out


def test_an_unreachable_bot_exits_3(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    report = tmp_path / "report.xml"
    code = main(
        [
            "test",
            str(EXAMPLES / "echo.yaml"),
            "--start",
            free_port_url(),
            "--junit-xml",
            str(report),
        ]
    )
    assert code == 3
    assert "could not start or reach the bot: StartBotError" in capsys.readouterr().err
    suite = ET.parse(report).getroot().find("testsuite")
    assert suite is not None and suite.get("errors") == "1"


async def test_start_url_of_a_running_bot() -> None:
    from transports.testing import TestingBotServer

    async with TestingBotServer() as bot:
        proc = await asyncio.create_subprocess_exec(
            *cli_command("test", str(EXAMPLES / "echo.yaml"), "--start", bot.start_url),
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
            env=cli_env(),
        )
        async with asyncio.timeout(60):
            out, err = await proc.communicate()
        assert proc.returncode == 0, (out + err).decode()
        assert bot.sessions_started == 1
        assert [m["data"]["content"] for m in bot.received if m["type"] == "send-text"] == [
            "hello there",
            "how are you",
            "goodbye",
        ]


def test_the_readme_scenario_runs_as_written(tmp_path: Path) -> None:
    (scenario,) = readme_testing_blocks("yaml")
    (tmp_path / "echo.yaml").write_text(scenario)
    done = run_cli("test", str(tmp_path / "echo.yaml"))
    assert done.returncode == 0, done.stdout + done.stderr
    assert "echo/three_turns  PASSED" in done.stdout


async def test_load_runs_a_scenario_file_in_each_session(tmp_path: Path) -> None:
    import json

    from transports.testing import TestingBotServer

    async with TestingBotServer() as bot:
        proc = await asyncio.create_subprocess_exec(
            *cli_command(
                "load",
                "--start",
                bot.start_url,
                "--sessions",
                "2",
                "--concurrency",
                "2",
                "--scenario",
                str(EXAMPLES / "echo.yaml"),
                "--json",
            ),
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
            env=cli_env(),
        )
        async with asyncio.timeout(60):
            out, err = await proc.communicate()
    assert proc.returncode == 0, (out + err).decode()
    summary = json.loads(out.decode().strip().splitlines()[-1])
    assert summary["ok"] == 2 and summary["errors"] == {}
    assert "scenario" in summary["latency_ms"]
    texts = [m["data"]["content"] for m in bot.received if m["type"] == "send-text"]
    assert texts.count("goodbye") == 2


@pytest.mark.webrtc
async def test_scenario_runner_over_webrtc_in_process(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    # aiortc gathers no candidate on a loopback-only host from the command line: the WebRTC
    # path runs in process, with the tests' aioice patch.
    patch_loopback_ice(monkeypatch)
    pytest.importorskip("aiortc")
    from lifecycle import PipecatClient
    from lifecycle.testing.scenario import load_scenarios
    from lifecycle.testing.scripted import run_scenario
    from transports.small_webrtc import SmallWebRTCTransport
    from transports.testing.webrtc import TestingWebRTCBotServer

    write_tone(tmp_path / "caller.wav", rate=24000, seconds=0.5)
    path = write_scenario(
        tmp_path,
        "webrtc.yaml",
        """
        name: webrtc
        turns:
          - audio: caller.wav
            expect:
              - event: user_transcription
                text_contains: "microphone"
                within_ms: 5000
              - event: bot_stopped_speaking
                within_ms: 5000
          - user: "hello over webrtc"
            expect:
              - event: llm_response
                text_contains: "hello over webrtc"
                within_ms: 5000
              - event: bot_stopped_speaking
                within_ms: 5000
        """,
    )
    (scenario,) = load_scenarios(path)
    async with TestingWebRTCBotServer() as server:
        client = PipecatClient(SmallWebRTCTransport(ice_servers=[]), connect_timeout=15)
        try:
            async with asyncio.timeout(30):
                await client.start_bot_and_connect(server.start_url)
                result = await run_scenario(scenario, client)
        finally:
            await client.disconnect()
            await let_webrtc_bot_close(server)
    assert result.passed, result.failures
    assert [r.status for r in result.expectations] == ["passed"] * 4
    assert all(r.latency_ms is not None for r in result.expectations)


def test_reports_of_several_scenarios_and_runs_never_share_a_file(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = write_scenario(
        tmp_path,
        "many.yaml",
        """
        name: many
        scenarios:
          - name: "a b"
            runs: 2
            turns: [{user: hi, expect: [{event: llm_response, within_ms: 5000}]}]
          - name: "a_b"
            turns: [{user: hi, expect: [{event: llm_response, within_ms: 5000}]}]
        """,
    )
    report = tmp_path / "reports"
    code = main(["test", str(path), "--report", str(report)])
    assert code == 0, capsys.readouterr()
    assert sorted(p.name for p in report.iterdir()) == [
        "many-a_b-2.html",
        "many-a_b-3.html",
        "many-a_b.html",
    ]
