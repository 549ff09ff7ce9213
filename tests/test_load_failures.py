"""``load`` reports failures in the user's terms: per phase and error class, how many and the
first message, as Locust's Failures table (text) and as ``failures`` in ``--json``."""

from __future__ import annotations

import json
from pathlib import Path

from lifecycle.load import LoadStats
from lifecycle.load.stats import FAILURE_MESSAGE_LIMIT
from tests.support.cli_process import run_cli
from tests.support.http_stub import HTTPStub
from tests.support.toolkit import free_port_url

REPO = Path(__file__).resolve().parent.parent
TIMEOUT = 60.0


def test_first_message_per_phase_and_class() -> None:
    stats = LoadStats()
    stats.record("start", 1.0, TimeoutError("first"))
    stats.record("start", 1.0, TimeoutError("second"))
    stats.record("connect", 1.0, ValueError("x" * 1000))
    stats.record("connect", 2.0)
    rows = stats.failures()
    assert rows[0] == {"phase": "start", "error": "TimeoutError", "count": 2, "message": "first"}
    assert rows[1]["phase"] == "connect" and len(rows[1]["message"]) == FAILURE_MESSAGE_LIMIT
    assert stats.summary()["failures"] == rows


async def test_json_and_table_show_the_failures() -> None:
    url = free_port_url()
    code, out, err = await run_cli("load", "--start", url, "--sessions", "3", "--json")
    assert code == 1, err
    (row,) = json.loads(out)["failures"]
    assert row["phase"] == "start" and row["error"] == "StartBotError" and row["count"] == 3
    assert row["message"].startswith("start_bot could not reach http://127.0.0.1:")
    assert "?***" not in out
    code, out, err = await run_cli("load", "--start", url, "--sessions", "2")
    assert code == 1, err
    assert "failures (first message of each)" in out
    assert "StartBotError" in out and "start_bot could not reach" in out


async def test_a_websocket_start_answer_that_is_webrtc_says_what_to_do() -> None:
    # A runner that answers for WebRTC ({"sessionId"}): the message names the flags.
    async with HTTPStub() as stub:
        stub.json_reply({"sessionId": "abc"})
        code, out, err = await run_cli(
            "load", "--start", stub.url(), "--start-data", "{}", "--json"
        )
    assert code == 1, err
    (row,) = json.loads(out)["failures"]
    assert row["phase"] == "connect" and row["error"] == "TransportError"
    assert "leave out --start-data, or use --transport webrtc" in row["message"]
