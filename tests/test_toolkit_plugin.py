"""The pytest plugin (``pytest11`` entry point ``pipecat_lifecycle``): fixtures and options.

Each case runs pytest in a subprocess on a test file of its own, in a directory of its own
(its own ini file), so pytest-asyncio's ``auto`` and ``strict`` modes are both exercised;
``examples/test_my_bot.py`` runs as written; ``--pipecat-start`` points the client at
another bot.
"""

from __future__ import annotations

import asyncio
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from tests.support.toolkit import CLI_TIMEOUT_S, REPO, cli_env, plugin_args, readme_testing_blocks

TEST_FILE = """
import pytest
from lifecycle import State
from lifecycle.testing import Conversation

{mark}
async def test_client_is_ready(pipecat_client, pipecat_bot):
    assert pipecat_client.state is State.READY
    async with Conversation(pipecat_client) as conv:
        await conv.say("hi from pytest")
        await conv.expect("on_bot_output", text_contains="hi from pytest", within=5)
    assert pipecat_bot.sessions_started >= 1

{mark}
async def test_client_is_disconnected_after_the_test(pipecat_client):
    CLIENTS.append(pipecat_client)

def test_after():
    from lifecycle import State
    assert CLIENTS and CLIENTS[0].state is State.DISCONNECTED

CLIENTS = []
"""


def pytest_command(*args: str) -> list[str]:
    return [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", *plugin_args(), *args]


def run_pytest(directory: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        pytest_command(*args),
        cwd=directory,
        env=cli_env(),
        capture_output=True,
        text=True,
        timeout=CLI_TIMEOUT_S,
        check=False,
    )


@pytest.mark.parametrize(
    ("mode", "mark"), [("auto", ""), ("strict", "@pytest.mark.asyncio")], ids=["auto", "strict"]
)
def test_fixtures_in_both_pytest_asyncio_modes(tmp_path: Path, mode: str, mark: str) -> None:
    (tmp_path / "pytest.ini").write_text(
        f"[pytest]\nasyncio_mode = {mode}\nasyncio_default_fixture_loop_scope = function\n"
    )
    (tmp_path / "test_bot.py").write_text(textwrap.dedent(TEST_FILE.format(mark=mark)))
    done = run_pytest(tmp_path)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "3 passed" in done.stdout


def test_the_plugin_does_nothing_unless_its_fixtures_are_used(tmp_path: Path) -> None:
    (tmp_path / "pytest.ini").write_text("[pytest]\n")
    (tmp_path / "test_plain.py").write_text(
        "import sys\n"
        "def test_plain():\n"
        "    assert 'transports.testing' not in sys.modules\n"
        "    assert 'lifecycle.client' not in sys.modules\n"
    )
    done = run_pytest(tmp_path)
    assert done.returncode == 0, done.stdout + done.stderr
    options = run_pytest(tmp_path, "--help")
    assert "--pipecat-start=URL" in options.stdout and "--pipecat-transport" in options.stdout


def test_example_test_file_runs_as_written() -> None:
    done = run_pytest(REPO, "examples/test_my_bot.py")
    assert done.returncode == 0, done.stdout + done.stderr
    assert "2 passed" in done.stdout


async def test_pipecat_start_points_the_client_at_another_bot() -> None:
    from transports.testing import TestingBotServer

    async with TestingBotServer() as bot:
        proc = await asyncio.create_subprocess_exec(
            *pytest_command("examples/test_my_bot.py", "--pipecat-start", bot.start_url),
            cwd=REPO,
            env=cli_env(),
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
        )
        async with asyncio.timeout(CLI_TIMEOUT_S):
            out, err = await proc.communicate()
        assert proc.returncode == 0, (out + err).decode()
        # Both tests' sessions reached this bot, not the plugin's own testing bot.
        assert bot.sessions_started == 2
        texts = [m["data"]["content"] for m in bot.received if m["type"] == "send-text"]
        assert texts == ["hello there", "what is the weather like?"]


def test_the_readme_test_runs_as_written(tmp_path: Path) -> None:
    (code,) = readme_testing_blocks("python")
    (tmp_path / "pytest.ini").write_text("[pytest]\nasyncio_mode = auto\n")
    (tmp_path / "test_readme_bot.py").write_text(code)
    done = run_pytest(tmp_path)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "1 passed" in done.stdout
    assert (tmp_path / "bot.wav").stat().st_size > 44  # a WAV header and the bot's audio
