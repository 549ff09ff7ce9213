"""``Conversation.expect`` in the user's terms: pipecat.evals' event names, "did you mean",
and failures that point at the test's line, not the library's frames."""

from __future__ import annotations

import asyncio
import subprocess
import sys
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from lifecycle import EVENT_NAMES, PipecatClient
from lifecycle.testing import Conversation
from lifecycle.testing.event_names import EVALS_EVENTS, resolve_event_name
from tests.support.toolkit import CLI_TIMEOUT_S, cli_env, plugin_args
from transports.testing import TestingBotServer
from transports.websocket import WebSocketTransport

T = 15.0


@pytest.fixture
async def client() -> AsyncIterator[PipecatClient]:
    async with TestingBotServer() as bot:
        client = PipecatClient(WebSocketTransport(), connect_timeout=T)
        await asyncio.wait_for(client.start_bot_and_connect(bot.start_url), T)
        try:
            yield client
        finally:
            await asyncio.wait_for(client.disconnect(), T)


def test_every_evals_name_maps_to_a_client_event() -> None:
    for evals_name, name in EVALS_EVENTS.items():
        assert name in EVENT_NAMES, evals_name
        assert resolve_event_name(evals_name) == name
    assert resolve_event_name("bot-llm-text") == "on_bot_llm_text"  # an RTVI type
    assert resolve_event_name("bot_output") == "on_bot_output"  # without "on_"


@pytest.mark.parametrize(
    ("name", "suggestion"),
    [
        ("on_bot_outptu", "'on_bot_output'"),
        ("bot_stoped_speaking", "'bot_stopped_speaking'"),
        ("llm_start", "'llm_started'"),
        ("zzz", "did you mean '"),  # nothing close: still the nearest names
    ],
)
def test_every_unknown_name_gets_a_did_you_mean(name: str, suggestion: str) -> None:
    with pytest.raises(ValueError, match="did you mean") as info:
        resolve_event_name(name)
    assert suggestion in str(info.value)


def test_eval_transport_only_events_say_so() -> None:
    with pytest.raises(ValueError, match=r"only pipecat\.evals' own eval transport"):
        resolve_event_name("image")
    with pytest.raises(ValueError, match="input_type == 'backchannel'"):
        resolve_event_name("user_backchannel")


async def test_expect_takes_pipecat_evals_names(client: PipecatClient) -> None:
    async with Conversation(client) as conv:
        await conv.say("hello there")
        await conv.expect("llm_started", within=T)
        output = await conv.expect("response", text_contains="hello there", within=T)
        assert output.text == "You said: hello there"
        await conv.expect("bot_stopped_speaking", within=T)
        with pytest.raises(ValueError, match="did you mean 'on_bot_output'"):
            await conv.expect("on_bot_outptu")


FAILING_TEST = """
from lifecycle.testing import Conversation

async def test_fails(pipecat_client):
    async with Conversation(pipecat_client) as conv:
        await conv.say("hello there")
        await conv.expect("on_bot_output", text_contains="goodbye", within=1)
"""


def test_a_failed_expectation_shows_the_tests_line_only(tmp_path: Path) -> None:
    (tmp_path / "test_fail.py").write_text(FAILING_TEST)
    done = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", *plugin_args()],
        cwd=tmp_path,
        env=cli_env(),
        capture_output=True,
        text=True,
        timeout=CLI_TIMEOUT_S,
        check=False,
    )
    assert done.returncode == 1, done.stdout + done.stderr
    out = done.stdout
    assert "no on_bot_output with text containing 'goodbye' within 1s" in out, out
    assert 'await conv.expect("on_bot_output", text_contains="goodbye", within=1)' in out
    assert "lifecycle/testing/conversation.py" not in out, out
