"""The ``pipecat-lifecycle`` command line, driven as a subprocess (``python -m lifecycle``)."""

from __future__ import annotations

import asyncio
import json
import re
import signal
import socket
import sys
import xml.etree.ElementTree as ET
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pytest
import structlog

from lifecycle import State, diagrams
from tests.support.cli_process import run_cli, run_cli_on_terminal
from transports.testing import TestingBotServer

REPO = Path(__file__).resolve().parent.parent
TIMEOUT = 30.0


def json_lines(text: str) -> list[dict[str, Any]]:
    lines = text.splitlines()
    assert lines, "no output"
    return [json.loads(line) for line in lines]


def events(rows: Sequence[dict[str, Any]], name: str) -> list[dict[str, Any]]:
    return [row for row in rows if row["event"] == name]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
    return port


# ------------------------------------------------------------------------------ help


@pytest.mark.parametrize("command", [[], ["diagram"], ["connect"], ["demo"]])
async def test_help_on_every_command(command: list[str]) -> None:
    code, out, _ = await run_cli(*command, "--help")
    assert code == 0
    assert out.startswith("usage: pipecat-lifecycle")
    if command != ["diagram"]:
        assert "exit codes:" in out and "3  startup error" in out


async def test_usage_errors_exit_2() -> None:
    code, _, err = await run_cli()
    assert code == 2 and "usage:" in err
    code, _, err = await run_cli("diagram", "--format", "png")
    assert code == 2
    code, _, err = await run_cli("connect", "ws://x", "--header", "nokeyvalue")
    assert code == 2 and "-H wants NAME=VALUE" in err
    code, _, err = await run_cli("connect", "--start", "http://x/start", "--start-data", "{bad")
    assert code == 2 and "--start-data is not valid JSON" in err


# --------------------------------------------------------------------------- diagram


async def test_diagram_mermaid_and_dot_to_stdout() -> None:
    code, out, _ = await run_cli("diagram", "--format", "mermaid")
    assert code == 0 and out == diagrams.to_mermaid()
    code, out, _ = await run_cli("diagram", "--format", "dot")
    assert code == 0 and out == diagrams.to_dot()


async def test_diagram_highlight(tmp_path: Path) -> None:
    target = tmp_path / "ready.mmd"
    code, out, _ = await run_cli("diagram", "--highlight", "ready", "-o", str(target))
    assert code == 0 and out == ""
    assert target.read_text(encoding="utf-8") == diagrams.to_mermaid(State.READY)
    code, _, _ = await run_cli("diagram", "--highlight", "nowhere")
    assert code == 2


async def test_diagram_svg_to_file(tmp_path: Path) -> None:
    pytest.importorskip("pygraphviz")
    target = tmp_path / "x.svg"
    code, _, _ = await run_cli("diagram", "--format", "svg", "-o", str(target))
    assert code == 0
    root = ET.fromstring(target.read_bytes())
    assert root.tag == "{http://www.w3.org/2000/svg}svg"


async def test_diagram_files_written_by_the_cli_match_the_committed_ones(tmp_path: Path) -> None:
    for fmt, name in (("mermaid", "lifecycle.mmd"), ("dot", "lifecycle.dot")):
        target = tmp_path / name
        code, _, _ = await run_cli("diagram", "--format", fmt, "-o", str(target))
        assert code == 0
        assert target.read_bytes() == (REPO / "diagrams" / name).read_bytes()


# ------------------------------------------------------------------------------ demo


def transitions_printed(out: str) -> list[str]:
    """The destination states of the printed transition lines, in order."""
    return re.findall(r"-> (\w+) +\[", out)


async def test_demo_loopback() -> None:
    code, out, _ = await run_cli("demo", "--transport", "loopback")
    assert code == 0, out
    assert "connected -> ready" in out and "bot-ready" in out
    assert "echo round trip" in out
    assert transitions_printed(out) == [
        "connecting",
        "connected",
        "ready",
        "disconnecting",
        "disconnected",
    ]
    assert "turn 1 (text):" in out


async def test_demo_websocket_ends_with_the_turn_and_a_report_hint() -> None:
    code, out, _ = await run_cli("demo")
    assert code == 0, out
    for expected in (
        "idle -> authenticating",
        "authenticated -> connecting",
        "connected -> ready",
        "bot-ready: RTVI 2.2.0",
        'echo round trip: {"hello":"pipecat"}',
        "disconnecting -> disconnected",
        "turn 1 (text): llm",
        "--report",
    ):
        assert expected in out
    # The turn's figures and the hint end the output, not a dump of the trace.
    assert not [line for line in out.splitlines() if line.startswith("{")]
    assert len(out.split("disconnecting -> disconnected", 1)[1].splitlines()) <= 8


async def test_demo_report_writes_the_timeline(tmp_path: Path) -> None:
    report = tmp_path / "demo.html"
    code, out, _ = await run_cli("demo", "--report", str(report))
    assert code == 0, out
    assert f"report written to {report}" in out
    assert "<svg" in report.read_text(encoding="utf-8")


def test_demo_webrtc_runs_a_session(monkeypatch: pytest.MonkeyPatch, capsys: Any) -> None:
    # In-process so the loopback-ICE patch (this machine has no other interface) applies;
    # hosts with a LAN interface need no patch.
    aioice = pytest.importorskip("aioice")
    monkeypatch.setattr(aioice.ice, "get_host_addresses", lambda use_ipv4, use_ipv6: ["127.0.0.1"])
    from lifecycle import cli

    try:
        code = cli.main(["demo", "--transport", "webrtc"])
    finally:
        structlog.reset_defaults()
    out = capsys.readouterr().out
    assert code == 0, out
    assert "connected -> ready" in out and "echo round trip" in out
    assert "disconnecting -> disconnected" in out


# --------------------------------------------------------------------------- connect


async def test_connect_start_json_session(server: TestingBotServer) -> None:
    script = b'/msg echo {"a":1}\nhello bot\n/msg push {"p":2}\n/msg nope\n/quit\n'
    code, out, _ = await run_cli("connect", "--start", server.start_url, "--json", stdin=script)
    rows = json_lines(out)  # every line parses
    assert code == 0
    states = [r["state"] for r in events(rows, "transition")]
    assert states == [
        "authenticating",
        "authenticated",
        "connecting",
        "connected",
        "ready",
        "disconnecting",
        "disconnected",
    ]
    for row in events(rows, "transition"):
        assert row["trigger"] and isinstance(row["ms"], float)
    ms = [r["ms"] for r in events(rows, "transition")]
    assert ms == sorted(ms)
    (ready,) = events(rows, "bot-ready")
    assert ready["data"]["version"] == "2.2.0"
    echo, push = events(rows, "response")
    assert echo["type"] == "echo" and echo["data"] == {"a": 1} and echo["rtt_ms"] >= 0
    assert push["data"] == {"pushed": True}
    assert events(rows, "server-message")[0]["data"] == {"p": 2}
    assert events(rows, "sent-text")[0]["content"] == "hello bot"
    assert events(rows, "error-response")[0]["type"] == "nope"
    assert rows[-1] == {**rows[-1], "event": "exit", "code": 0}
    sent = [m for m in server.received if m.get("type") == "send-text"]
    assert sent and sent[0]["data"]["content"] == "hello bot"


async def test_connect_direct_websocket_url_and_eof(server: TestingBotServer) -> None:
    code, out, _ = await run_cli("connect", server.ws_url, "--json", stdin=b"")
    rows = json_lines(out)
    assert code == 0
    assert [r["state"] for r in events(rows, "transition")][:3] == [
        "connecting",
        "connected",
        "ready",
    ]
    assert events(rows, "input-closed")
    assert events(rows, "transition")[-1]["state"] == "disconnected"


async def test_connect_text_output(server: TestingBotServer) -> None:
    code, out, err = await run_cli(
        "connect", "--start", server.start_url, stdin=b'/msg echo {"x":2}\n/quit\n'
    )
    assert code == 0, out + err
    assert "connected -> ready" in out
    assert 'echo -> {"x":2}' in out
    # Not a terminal: no progress output on stderr.
    assert "authenticating..." not in err


@pytest.mark.parametrize("start", [True, False])
async def test_connect_startup_error_exits_3(start: bool) -> None:
    port = free_port()
    url = f"http://127.0.0.1:{port}/start" if start else f"ws://127.0.0.1:{port}/ws"
    args = ["connect", "--json", "--connect-timeout", "5"] + (["--start", url] if start else [url])
    code, out, _ = await run_cli(*args)
    assert code == 3
    rows = json_lines(out)
    error = events(rows, "startup-error")[0]
    assert error["error"] == ("StartBotError" if start else "TransportError")
    assert events(rows, "transition")[-1]["state"] == "disconnected"


async def test_connect_start_http_error_exits_3(server: TestingBotServer) -> None:
    code, out, _ = await run_cli("connect", "--start", f"{server.base_url}/unauthorized", "--json")
    assert code == 3
    error = events(json_lines(out), "startup-error")[0]
    assert error["error"] == "AuthenticationError" and error["status"] == 401


async def test_connect_ready_timeout_exits_3(server: TestingBotServer) -> None:
    code, out, _ = await run_cli(
        "connect", "--start", server.start_url, "--start-data", '{"never_ready": true}',
        "--connect-timeout", "0.5", "--json",
    )  # fmt: skip
    assert code == 3
    assert events(json_lines(out), "startup-error")[0]["error"] == "ConnectionTimeoutError"


async def test_connect_fatal_error_exits_4(server: TestingBotServer) -> None:
    code, out, _ = await run_cli(
        "connect", "--start", server.start_url, "--json", stdin=b"/msg fatal {}\n"
    )
    rows = json_lines(out)
    assert code == 4
    error = events(rows, "error")[0]
    assert error["fatal"] is True and error["message"] == "requested fatal"
    assert [r["trigger"] for r in events(rows, "transition")][-2:] == ["fail", "disconnected"]
    assert rows[-1]["event"] == "exit" and rows[-1]["code"] == 4


async def test_connect_bot_ends_session_exits_0(server: TestingBotServer) -> None:
    code, out, _ = await run_cli(
        "connect", "--start", server.start_url, "--json", stdin=b"/msg end\n"
    )
    rows = json_lines(out)
    assert code == 0
    assert events(rows, "bot-disconnected")
    assert events(rows, "transition")[-1]["trigger"] == "transport_closed"


async def test_connect_ctrl_c_disconnects_cleanly(server: TestingBotServer) -> None:
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "lifecycle", "connect", "--start", server.start_url, "--json",
        stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE, cwd=REPO,
    )  # fmt: skip
    assert process.stdout is not None and process.stdin is not None
    try:
        rows: list[dict[str, Any]] = []
        while not events(rows, "bot-ready"):
            line = await asyncio.wait_for(process.stdout.readline(), TIMEOUT)
            assert line, "CLI ended before bot-ready"
            rows.append(json.loads(line))
        process.send_signal(signal.SIGINT)
        rest, _ = await asyncio.wait_for(process.communicate(), TIMEOUT)
    finally:
        if process.returncode is None:
            process.kill()
            await asyncio.wait_for(process.wait(), 5)
    rows += json_lines(rest.decode())
    assert process.returncode == 0
    assert events(rows, "interrupted")
    assert [r["state"] for r in events(rows, "transition")][-2:] == [
        "disconnecting",
        "disconnected",
    ]


async def test_progress_only_on_a_terminal(server: TestingBotServer) -> None:
    # A terminal: the spinner shows the waiting state on stderr while /start is slow.
    code, text = await run_cli_on_terminal(
        "connect", "--start", f"{server.start_url}?delay=0.6", stdin=b"/quit\n", timeout=TIMEOUT
    )
    assert code == 0
    assert "authenticating..." in text
    assert "connected -> ready" in text


async def test_connect_ctrl_c_during_startup_cancels_it(server: TestingBotServer) -> None:
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "lifecycle", "connect", "--start",
        f"{server.start_url}?delay=5", "--json",
        stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE, cwd=REPO,
    )  # fmt: skip
    assert process.stdout is not None
    try:
        first = json.loads(await asyncio.wait_for(process.stdout.readline(), TIMEOUT))
        assert first["state"] == "authenticating"
        process.send_signal(signal.SIGINT)
        rest, _ = await asyncio.wait_for(process.communicate(), TIMEOUT)
    finally:
        if process.returncode is None:
            process.kill()
            await asyncio.wait_for(process.wait(), 5)
    rows = json_lines(rest.decode())
    assert process.returncode == 0
    assert [r["state"] for r in events(rows, "transition")] == ["disconnecting", "disconnected"]
    assert rows[-1]["event"] == "exit" and rows[-1]["code"] == 0


# ---------------------------------------------------------------------- conversation

TURN: list[tuple[str, Any]] = [
    ("user-started-speaking", None),
    ("user-input", {"text": "weather in Paris?", "input_type": "transcription", "final": True}),
    ("user-transcription", {"text": "weather in Paris?", "final": True}),
    ("bot-llm-started", None),
    ("bot-llm-text", {"text": "Let me "}),
    ("bot-llm-text", {"text": "check."}),
    ("bot-llm-stopped", None),
    ("llm-function-call-in-progress",
     {"tool_call_id": "c1", "function_name": "get_weather", "arguments": {"city": "Paris"}}),
    ("llm-function-call-stopped",
     {"tool_call_id": "c1", "cancelled": False, "function_name": "get_weather",
      "result": {"sky": "sunny"}}),
    ("bot-output", {"text": "Let me check.", "aggregated_by": "sentence"}),
    ("metrics", {"ttfb": [{"processor": "llm", "value": 0.2}]}),
    ("bot-tts-audio", {"audio": "AAAA", "sample_rate": 16000, "num_channels": 1}),
    ("error", {"error": "tts hiccup", "fatal": False}),
]  # fmt: skip


async def print_conversation(json_mode: bool) -> list[str]:
    """A loopback session whose bot plays TURN, printed the way `connect` prints it."""
    import io

    from lifecycle import PipecatClient
    from lifecycle.cli.output import Output
    from lifecycle.cli.watch import Watch
    from transports.loopback import LoopbackBot, LoopbackTransport

    bot = LoopbackBot()
    stream = io.StringIO()
    async with asyncio.timeout(TIMEOUT):
        client = PipecatClient(LoopbackTransport(bot))
        watch = Watch(client, Output(json_mode=json_mode, t0=0.0, stream=stream))
        await client.connect()
        for msg_type, data in TURN:
            message = {"label": "rtvi-ai", "type": msg_type}
            await bot.send(message if data is None else {**message, "data": data})
        await client.wait_for("on_error", timeout=TIMEOUT)
        await client.disconnect()
        await watch.caught_up()
        await watch.close()
    return stream.getvalue().splitlines()


async def test_conversation_printed_readably() -> None:
    lines = [line.split("ms  ", 1)[1] for line in await print_conversation(json_mode=False)]
    talk = [line for line in lines if "->" not in line or line.startswith("function")]
    assert talk[0].startswith("bot-ready: RTVI 2.2.0")
    assert talk[1:] == [
        "user: weather in Paris?",
        "bot: Let me check.",
        'function call get_weather({"city":"Paris"})',
        'function result get_weather -> {"sky":"sunny"}',
        "error: tts hiccup",
    ], lines


async def test_conversation_json_one_line_per_event() -> None:
    rows = [json.loads(line) for line in await print_conversation(json_mode=True)]
    names = [row["event"] for row in rows if row["event"] != "transition"]
    assert names == [
        "bot-ready",
        "user-started-speaking",
        "user-input",
        "user-transcript",
        "bot-llm-started",
        "bot-llm-text",
        "bot-llm-text",
        "bot-llm-stopped",
        "llm-function-call-in-progress",
        "llm-function-call-stopped",
        "bot-output",
        "metrics",
        "error",
    ]  # bot audio is not printed
    (call,) = events(rows, "llm-function-call-in-progress")
    assert call["function_name"] == "get_weather" and call["arguments"] == {"city": "Paris"}
    (stopped,) = events(rows, "llm-function-call-stopped")
    assert stopped["result"] == {"sky": "sunny"} and stopped["cancelled"] is False
    assert events(rows, "bot-output")[0]["output_type"] == "sentence"
    assert events(rows, "metrics")[0]["ttfb"] == [{"processor": "llm", "value": 0.2}]
    assert events(rows, "error")[0] == {**events(rows, "error")[0], "fatal": False}


def test_conversation_printer_keeps_bounded_text() -> None:
    import io

    from lifecycle.cli.conversation import ConversationPrinter
    from lifecycle.cli.output import Output
    from lifecycle.dispatch import ClientEvent
    from lifecycle.events import BotText, FunctionCall

    stream = io.StringIO()
    printer = ConversationPrinter(Output(json_mode=False, t0=0.0, stream=stream))

    def show(name: str, data: Any = None) -> None:
        printer.show(ClientEvent(name, data, 1, 0.0))

    show("on_bot_llm_started")
    for _ in range(10_000):  # a reply that never ends until it does
        show("on_bot_llm_text", BotText("0123456789"))
    show("on_bot_llm_stopped")
    for n in range(1_000):  # calls that never report a result
        show("on_llm_function_call_in_progress", FunctionCall(str(n), "f", {}))
    (reply,) = [line for line in stream.getvalue().splitlines() if "bot: " in line]
    assert 2000 <= len(reply.split("bot: ", 1)[1]) <= 2001 and reply.endswith("…")
    assert stream.getvalue().count("function call f({})") == 1000


async def test_connect_prints_the_testing_bots_answer(server: TestingBotServer) -> None:
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "lifecycle", "connect", "--start", server.start_url,
        stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE, cwd=REPO,
    )  # fmt: skip
    assert process.stdout is not None and process.stdin is not None
    lines: list[str] = []
    try:
        async with asyncio.timeout(TIMEOUT):
            process.stdin.write(b"how are you\n")
            await process.stdin.drain()
            while not any(line.startswith("bot: ") for line in lines):
                raw = await process.stdout.readline()
                assert raw, "connect ended before the bot answered"
                lines.append(raw.decode().split("ms  ", 1)[-1].rstrip("\n"))
            rest, _ = await process.communicate(b"/quit\n")
    finally:
        if process.returncode is None:
            process.kill()
            await asyncio.wait_for(process.wait(), 5)
    assert process.returncode == 0
    assert "sent text: how are you" in lines
    (answer,) = [line for line in lines if line.startswith("bot: ")]
    assert "how are you" in answer
    assert "session ended: disconnected (exit 0)" in rest.decode()
