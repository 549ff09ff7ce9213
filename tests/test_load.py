"""Load runs: the engine (``lifecycle.load``) in-process and ``pipecat-lifecycle load``."""

from __future__ import annotations

import asyncio
import importlib.util
import json
import os
import re
import signal
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from lifecycle.load import LoadPlan, LoadRun, SessionContext
from tests.support.cli_process import run_cli, run_cli_on_terminal
from tests.support.flaky_start import FlakyStart
from transports.testing import TestingBotServer
from transports.websocket import WebSocketTransport

pytest.importorskip("hdrh", reason="load runs need the 'load' extra (hdrhistogram)")

REPO = Path(__file__).resolve().parent.parent
TIMEOUT = 60.0
PERCENTILE_KEYS = {"count", "p50", "p90", "p99", "max"}


def open_fds() -> int:
    return len(os.listdir("/proc/self/fd"))


async def test_hundred_websocket_sessions_all_ok_and_nothing_leaks() -> None:
    fds_before = open_fds()
    async with asyncio.timeout(TIMEOUT):
        async with TestingBotServer() as bot:
            plan = LoadPlan(
                start=bot.start_url, sessions=100, concurrency=50, request="echo", request_data={}
            )
            stats = await LoadRun(plan, WebSocketTransport).run()
    summary = stats.summary()
    assert summary["sessions"] == 100 and summary["ok"] == 100 and summary["failed"] == 0
    assert summary["errors"] == {} and summary["errors_by_phase"] == {}
    for phase in ("start", "connect", "request", "disconnect"):
        latency = summary["latency_ms"][phase]
        assert set(latency) == PERCENTILE_KEYS and latency["count"] == 100
        assert 0 < latency["p50"] <= latency["p90"] <= latency["p99"] <= latency["max"]
    assert stats.ready == 100
    assert asyncio.all_tasks() == {asyncio.current_task()}
    assert open_fds() <= fds_before


async def test_cli_json_summary(server: TestingBotServer) -> None:
    code, out, err = await run_cli(
        "load", "--start", server.start_url, "--sessions", "20", "--concurrency", "10", "--json"
    )
    assert code == 0, err
    (line,) = out.splitlines()  # one JSON object, nothing else on stdout
    summary = json.loads(line)
    assert {"sessions", "ok", "errors", "errors_by_phase", "latency_ms"} <= set(summary)
    assert summary["sessions"] == summary["ok"] == 20 and summary["errors"] == {}
    assert set(summary["latency_ms"]) == {"start", "connect", "disconnect"}
    assert set(summary["latency_ms"]["connect"]) == PERCENTILE_KEYS


async def test_cli_table_without_a_terminal(server: TestingBotServer) -> None:
    code, out, _ = await run_cli(
        "load", "--start", server.start_url, "--sessions", "4", "--concurrency", "2",
        "--request", "echo", "--request-data", '{"x": 1}',
    )  # fmt: skip
    assert code == 0
    for expected in ("connect→ready", "request", "p99 ms", "ok 4, failed 0"):
        assert expected in out
    assert "started" not in out.split("┏")[0]  # no live progress line when piped


async def test_every_third_start_failing_is_reported_by_class(server: TestingBotServer) -> None:
    async with FlakyStart(server.ws_url, every=3) as start:
        code, out, _ = await run_cli(
            "load", "--start", start.url, "--sessions", "30", "--concurrency", "5", "--json"
        )
    summary = json.loads(out)
    assert code == 1
    assert summary["failed"] == 10 and summary["ok"] == 20
    assert summary["errors"] == {"StartBotError": 10}
    assert summary["errors_by_phase"] == {"start": {"StartBotError": 10}}
    assert summary["latency_ms"]["connect"]["count"] == 20


async def test_rate_limits_starts() -> None:
    async with (
        asyncio.timeout(TIMEOUT),
        TestingBotServer() as bot,
        FlakyStart(bot.ws_url, every=1000) as start,
    ):
        plan = LoadPlan(start=start.url, sessions=5, concurrency=5, rate=20.0)
        began = time.monotonic()
        stats = await LoadRun(plan, WebSocketTransport).run()
    assert stats.ok == 5 and len(start.arrivals) == 5
    # Session i may not start before i/20 s into the run (however fast the network is).
    for index, arrived in enumerate(sorted(start.arrivals)):
        assert arrived >= began + index / 20.0


async def test_scenario_hook_times_its_own_phases() -> None:
    async def scenario(session: SessionContext) -> None:
        async with session.phase("echo"):
            await session.client.send_client_request("echo", {"n": 1})
        async with session.phase("nope"):
            await session.client.send_client_request("nope")

    async with asyncio.timeout(TIMEOUT), TestingBotServer() as bot:
        plan = LoadPlan(start=bot.start_url, sessions=6, concurrency=3)
        stats = await LoadRun(plan, WebSocketTransport, scenario=scenario).run()
    summary = stats.summary()
    assert summary["latency_ms"]["echo"]["count"] == 6
    assert summary["errors_by_phase"] == {"nope": {"MessageError": 6}}
    assert summary["failed"] == 6 and "scenario" not in summary["errors_by_phase"]


async def test_session_lost_while_held_is_an_error() -> None:
    seen: list[tuple[str, str | None]] = []
    both_ready = asyncio.Event()

    def on_phase(phase: str, ms: float, error: BaseException | None) -> None:
        seen.append((phase, type(error).__name__ if error else None))
        if seen.count(("connect", None)) == 2:
            both_ready.set()

    async with asyncio.timeout(TIMEOUT), TestingBotServer() as bot:
        plan = LoadPlan(start=bot.start_url, sessions=2, concurrency=2, hold=20.0)
        run = LoadRun(plan, WebSocketTransport, on_phase=on_phase)
        run_task = asyncio.ensure_future(run.run())
        await both_ready.wait()
        await asyncio.wait_for(bot.stop(), 10)  # the bot goes away under the held sessions
        stats = await run_task
    assert stats.failed == 2
    assert stats.summary()["errors_by_phase"] == {"hold": {"SessionLostError": 2}}
    assert ("start", None) in seen and ("hold", "SessionLostError") in seen


async def test_ctrl_c_stops_starting_ends_running_and_prints_the_summary(
    server: TestingBotServer,
) -> None:
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "lifecycle", "load", "--start", server.start_url,
        "--sessions", "50", "--concurrency", "5", "--hold", "30", "--json", "-v",
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE, cwd=REPO,
    )  # fmt: skip
    assert process.stderr is not None
    try:
        ready = 0
        async with asyncio.timeout(TIMEOUT):
            while ready < 5:  # -v logs every transition: wait for five sessions to be READY
                line = await process.stderr.readline()
                assert line, "load ended before five sessions were ready"
                ready += b"transition" in line and b"dest=ready" in line
        process.send_signal(signal.SIGINT)
        out, err = await asyncio.wait_for(process.communicate(), TIMEOUT)
    finally:
        if process.returncode is None:
            process.kill()
            await asyncio.wait_for(process.wait(), 5)
    assert process.returncode == 130, err
    summary = json.loads(out)
    assert summary["stopped"] is True
    assert summary["sessions"] == 5 and summary["interrupted"] == 5
    assert summary["failed"] == 0 and summary["errors"] == {}
    assert "hold" not in summary["latency_ms"] and summary["latency_ms"]["connect"]["count"] == 5
    assert "Ctrl-C" in err.decode()


async def test_a_huge_concurrency_makes_sessions_lazily_and_stops_at_once() -> None:
    # Before: every one of the 200,000 sessions was made in one loop step (Ctrl-C ignored,
    # RSS past 800 MiB). Now one per loop turn: a stop() right away finds a handful made.
    made = 0

    def factory() -> WebSocketTransport:
        nonlocal made
        made += 1
        if made == 1:  # the first session runs: Ctrl-C comes now
            asyncio.get_running_loop().call_soon(run.stop)
        return WebSocketTransport("ws://127.0.0.1:9/ws")

    plan = LoadPlan(start="http://127.0.0.1:9/start", sessions=20_000, concurrency=20_000)
    run = LoadRun(plan, factory)
    async with asyncio.timeout(TIMEOUT):
        stats = await run.run()
    assert run.stopped and stats.started < 100 and made <= stats.started


async def test_usage_and_missing_toolkit() -> None:
    code, out, _ = await run_cli("load", "--help")
    assert code == 0 and out.startswith("usage: pipecat-lifecycle load")
    assert "exit codes:" in out and "130" in out and "--concurrency" in out
    code, _, err = await run_cli(
        "load", "--start", "http://127.0.0.1:9/start", "--request-data", "{}"
    )
    assert code == 2 and "--request-data goes with --request" in err
    code, _, err = await run_cli("load", "--sessions", "3")
    assert code == 2 and "--start" in err
    code, _, err = await run_cli("load", "--start", "http://x/start", "--concurrency", "0")
    assert code == 2
    if importlib.util.find_spec("yaml") is None:
        code, _, err = await run_cli("load", "--start", "http://x/start", "--scenario", "s.yaml")
        assert code == 2 and 'pip install "pipecat-lifecycle[testing]"' in err


def test_plan_rejects_nonsense() -> None:
    for bad in ({"sessions": 0}, {"rate": float("nan")}, {"hold": float("inf")}):
        with pytest.raises(ValueError):
            LoadPlan(start="http://x/start", **bad)


async def test_first_bot_output_is_timed() -> None:
    from transports.loopback import LoopbackBot, LoopbackTransport

    def talking_bot() -> LoopbackTransport:
        async def talk(data: object) -> dict[str, bool]:
            await bot.send({"label": "rtvi-ai", "type": "bot-output", "data": {"text": "hi"}})
            return {"talked": True}

        bot = LoopbackBot(handlers={"talk": talk})
        return LoopbackTransport(bot)

    async with (
        asyncio.timeout(TIMEOUT),
        TestingBotServer() as bot,
        FlakyStart(bot.ws_url, every=1000) as start,
    ):
        plan = LoadPlan(start=start.url, sessions=3, concurrency=3, request="talk")
        stats = await LoadRun(plan, talking_bot).run()
    summary = stats.summary()
    assert summary["ok"] == 3
    assert summary["latency_ms"]["first_output"]["count"] == 3


async def test_live_progress_only_on_a_terminal(server: TestingBotServer) -> None:
    code, text = await run_cli_on_terminal(
        "load", "--start", server.start_url,
        "--sessions", "2", "--concurrency", "1", "--hold", "0.6",
        timeout=TIMEOUT,
    )  # fmt: skip
    assert code == 0
    assert "started 1/2 ready 1" in text  # the live line, while a session holds
    assert "connect→ready" in text and "ok 2, failed 0" in text


@pytest.mark.webrtc
async def test_webrtc_sessions(monkeypatch: pytest.MonkeyPatch) -> None:
    aioice = pytest.importorskip("aioice")
    # This host has only loopback: let ICE gather it (hosts with a LAN interface need no patch).
    monkeypatch.setattr(aioice.ice, "get_host_addresses", lambda use_ipv4, use_ipv6: ["127.0.0.1"])
    from transports.small_webrtc import SmallWebRTCTransport
    from transports.testing_webrtc import TestingWebRTCBotServer

    async with asyncio.timeout(TIMEOUT), TestingWebRTCBotServer() as bot:
        plan = LoadPlan(start=bot.start_url, sessions=4, concurrency=2, request="echo")
        stats = await LoadRun(plan, lambda: SmallWebRTCTransport(ice_servers=[])).run()
    summary = stats.summary()
    assert summary["ok"] == 4, summary
    assert summary["latency_ms"]["connect"]["count"] == 4


async def test_say_times_the_answer_to_a_text_turn() -> None:
    from transports.loopback import LoopbackBot, LoopbackTransport

    answers: list[asyncio.Task[None]] = []

    def answering_bot() -> LoopbackTransport:
        bot = LoopbackBot()

        async def answer() -> None:
            await bot.wait_for_message("send-text")
            await bot.send({"label": "rtvi-ai", "type": "bot-output", "data": {"text": "hello"}})

        answers.append(asyncio.ensure_future(answer()))
        return LoopbackTransport(bot)

    async with (
        asyncio.timeout(TIMEOUT),
        TestingBotServer() as bot,
        FlakyStart(bot.ws_url, every=1000) as start,
    ):
        plan = LoadPlan(start=start.url, sessions=3, concurrency=3, say="hi")
        stats = await LoadRun(plan, answering_bot).run()
        await asyncio.gather(*answers)
    summary = stats.summary()
    assert summary["ok"] == 3, summary
    assert summary["latency_ms"]["first_output"]["count"] == 3


async def test_readme_load_example_runs(server: TestingBotServer) -> None:
    readme = (REPO / "README.md").read_text(encoding="utf-8")
    (code,) = [c for c in re.findall(r"```python\n(.*?)```", readme, re.S) if "LoadRun(" in c]
    code = code.replace("http://localhost:7860/start", server.start_url)
    code = code.replace("asyncio.run(main())", "")
    namespace: dict[str, Any] = {}
    exec(compile(code, "README.md", "exec"), namespace)
    await asyncio.wait_for(namespace["main"](), TIMEOUT)


async def test_cli_say_times_the_testing_bots_answer(server: TestingBotServer) -> None:
    code, out, err = await run_cli(
        "load", "--start", server.start_url, "--sessions", "6", "--concurrency", "3",
        "--say", "hello there", "--json",
    )  # fmt: skip
    assert code == 0, err
    summary = json.loads(out)
    assert summary["ok"] == 6 and summary["latency_ms"]["first_output"]["count"] == 6
    # One turn per session: its figures are phases of their own, p50 to max like the others.
    for phase in ("turn_llm_first", "turn_tts_first", "turn_bot_speaking", "turn_answered"):
        latency = summary["latency_ms"][phase]
        assert set(latency) == PERCENTILE_KEYS and latency["count"] == 6, (phase, latency)


async def test_cli_table_shows_the_turn_figures(server: TestingBotServer) -> None:
    code, out, err = await run_cli(
        "load", "--start", server.start_url, "--sessions", "2", "--say", "hello"
    )
    assert code == 0, err
    for title in ("turn: first LLM text", "turn: bot speaking", "turn: answered"):
        assert title in out, out
