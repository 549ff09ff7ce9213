"""``connect`` fed by a pipe or ``--say``: it waits for the bot's answers before it moves on
or disconnects, and a function call it cannot answer says so when it arrives."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from tests.support.cli_process import run_cli
from transports.testing import TestingBotServer

REPO = Path(__file__).resolve().parent.parent
TIMEOUT = 60.0


async def run_connect(*args: str, stdin: bytes) -> tuple[int, str, str]:
    return await run_cli("connect", *args, stdin=stdin)


def rows(out: str) -> list[dict[str, Any]]:
    return [json.loads(line) for line in out.splitlines()]


@pytest.fixture
async def bot() -> AsyncIterator[TestingBotServer]:
    async with TestingBotServer() as server:
        yield server


async def test_piped_lines_wait_for_each_answer(bot: TestingBotServer) -> None:
    code, out, err = await run_connect(
        "--start", bot.start_url, "--json", stdin=b"first line\nsecond line\n"
    )
    assert code == 0, err
    order: list[tuple[str, Any]] = []
    for r in rows(out):
        item = (r["event"], r.get("content") or r.get("text"))
        if r["event"] in ("sent-text", "bot-output", "input-closed") and order[-1:] != [item]:
            order.append(item)  # bot-output comes per spoken status: once each here
    assert order == [
        ("sent-text", "first line"),
        ("bot-output", "You said: first line"),
        ("sent-text", "second line"),
        ("bot-output", "You said: second line"),
        ("input-closed", None),
    ], order


async def test_say_sends_and_waits_for_the_answer(bot: TestingBotServer) -> None:
    code, out, err = await run_connect("--start", bot.start_url, "--say", "hello there", stdin=b"")
    assert code == 0, err
    text = out.splitlines()
    said = next(i for i, line in enumerate(text) if "sent text: hello there" in line)
    answer = next(i for i, line in enumerate(text) if "bot: You said: hello there" in line)
    closed = next(i for i, line in enumerate(text) if "end of input: disconnecting" in line)
    assert said < answer < closed


async def test_an_unanswered_function_call_says_so_at_once(bot: TestingBotServer) -> None:
    code, out, err = await run_connect(
        "--start", bot.start_url, "--answer-timeout", "20", stdin=b"what is the weather like?\n"
    )
    assert code == 0, err
    (line,) = [line for line in out.splitlines() if "function call get_weather" in line]
    assert "not answered here (connect has no function call handlers" in line
    code, out, err = await run_connect(
        "--start", bot.start_url, "--json", stdin=b"what is the weather like?\n"
    )
    (call,) = [r for r in rows(out) if r["event"] == "llm-function-call-in-progress"]
    assert call["answered"] is False and call["function_name"] == "get_weather"
