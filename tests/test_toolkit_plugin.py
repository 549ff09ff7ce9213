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
    ("ini", "mark"),
    [
        ("asyncio_mode = auto\n", ""),
        ("asyncio_mode = strict\n", "@pytest.mark.asyncio"),
        ("asyncio_mode = strict\n", ""),  # the plugin marks tests that use its fixtures
        ("", ""),  # pytest-asyncio's default (strict), no ini line at all
    ],
    ids=["auto", "strict-marked", "strict-unmarked", "default"],
)
def test_fixtures_in_both_pytest_asyncio_modes(tmp_path: Path, ini: str, mark: str) -> None:
    (tmp_path / "pytest.ini").write_text(f"[pytest]\n{ini}")
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


def test_example_test_file_runs_as_written(tmp_path: Path) -> None:
    # A fresh project: its own ini (none: pytest-asyncio's default strict mode), the file as is.
    (tmp_path / "test_my_bot.py").write_text((REPO / "examples" / "test_my_bot.py").read_text())
    done = run_pytest(tmp_path)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "2 passed" in done.stdout


async def run_pytest_async(directory: Path, *args: str) -> tuple[int, str, str]:
    """:func:`run_pytest` for a test whose own loop serves a bot meanwhile."""
    proc = await asyncio.create_subprocess_exec(
        *pytest_command(*args),
        cwd=directory,
        env=cli_env(),
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    try:
        async with asyncio.timeout(CLI_TIMEOUT_S):
            out, err = await proc.communicate()
    finally:
        if proc.returncode is None:
            proc.kill()
            await asyncio.wait_for(proc.wait(), 5)
    assert proc.returncode is not None
    return proc.returncode, out.decode(), err.decode()


async def test_pipecat_start_points_the_client_at_another_bot() -> None:
    from transports.testing import TestingBotServer

    async with TestingBotServer() as bot:
        code, out, err = await run_pytest_async(
            REPO, "examples/test_my_bot.py", "--pipecat-start", bot.start_url
        )
        assert code == 0, out + err
        # Both tests' sessions reached this bot, not the plugin's own testing bot.
        assert bot.sessions_started == 2
        texts = [m["data"]["content"] for m in bot.received if m["type"] == "send-text"]
        assert texts == ["hello there", "what is the weather like?"]


@pytest.mark.parametrize("mode", ["strict", "auto"])
def test_the_readme_test_runs_as_written(tmp_path: Path, mode: str) -> None:
    (code,) = readme_testing_blocks("python")
    (tmp_path / "pytest.ini").write_text(f"[pytest]\nasyncio_mode = {mode}\n")
    (tmp_path / "test_readme_bot.py").write_text(code)
    done = run_pytest(tmp_path)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "1 passed" in done.stdout
    assert (tmp_path / "bot.wav").stat().st_size > 44  # a WAV header and the bot's audio


SETTINGS_FILE = """
import sys
import pytest
from lifecycle import State

async def test_reaches_the_configured_bot(pipecat_client):
    assert pipecat_client.state is State.READY
    assert "transports.testing" not in sys.modules  # no local testing bot was started

def test_pipecat_bot_is_skipped(pipecat_bot):
    raise AssertionError("not reached")

@pytest.mark.pipecat_bot(start=None)
async def test_marker_brings_the_local_bot_back(pipecat_client, pipecat_bot):
    assert pipecat_bot.sessions_started == 1

@pytest.mark.pipecat_bot(transprot="webrtc")
async def test_marker_typo(pipecat_client):
    raise AssertionError("not reached")
"""


async def test_settings_from_the_ini_file_the_command_line_and_the_marker(tmp_path: Path) -> None:
    from tests.support.http_stub import HTTPStub
    from transports.testing import TestingBotServer

    (tmp_path / "test_settings.py").write_text(SETTINGS_FILE)
    async with TestingBotServer() as bot, HTTPStub() as stub:
        stub.json_reply({"wsUrl": bot.ws_url})
        (tmp_path / "pytest.ini").write_text(
            "[pytest]\n"
            f"pipecat_start = {stub.url()}\n"
            "pipecat_headers =\n    X-Team=blue\n    Authorization: Bearer pk_ini\n"
        )
        code, out, err = await run_pytest_async(
            tmp_path, "-rs", "--pipecat-start-data", '{"body": {"x": 1}}'
        )
    assert code == 1, out + err  # the typo fails, on purpose
    assert "2 passed, 1 skipped" in out and "1 error" in out, out
    assert "unknown key transprot=; did you mean transport=?" in out
    assert "pk_ini" not in out
    (seen,) = stub.requests  # the local-bot test did not use the start URL
    assert seen.json() == {"body": {"x": 1}}
    assert seen.headers["x-team"] == "blue" and seen.headers["authorization"] == "Bearer pk_ini"


def test_bad_settings_are_usage_errors(tmp_path: Path) -> None:
    (tmp_path / "test_nothing.py").write_text("def test_nothing():\n    pass\n")
    done = run_pytest(tmp_path, "--pipecat-start-data", "{bad")
    assert done.returncode == 4, done.stdout + done.stderr  # pytest's usage error
    assert "--pipecat-start-data (ini: pipecat_start_data) is not valid JSON" in done.stderr
    done = run_pytest(tmp_path, "--pipecat-connect-timeout", "-1")
    assert done.returncode == 4 and "--pipecat-connect-timeout" in done.stderr
