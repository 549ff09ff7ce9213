"""The start vocabulary shared by ``connect``, ``test`` and ``load`` (API.md §16).

Each command is run as a subprocess against a local HTTP stub that records the start request
and answers 500 (so the command ends at once with its startup code): the body, the headers
and the deprecated spellings are read off the request the bot would have got.
"""

from __future__ import annotations

import json
import os
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from lifecycle import cli
from lifecycle.start import StartSettings
from tests.support.cli_process import run_cli
from tests.support.http_stub import HTTPStub
from tests.support.toolkit import free_port_url

REPO = Path(__file__).resolve().parent.parent
TIMEOUT = 60.0
SCENARIO = REPO / "examples" / "scenarios" / "echo.yaml"
WEBSOCKET_BODY = {"transport": "websocket"}


@pytest.fixture
async def stub() -> AsyncIterator[HTTPStub]:
    async with HTTPStub() as server:
        server.json_reply({"error": "no bots today"}, status=500)
        yield server


def command(name: str, url: str) -> list[str]:
    """``name`` with ``--start url`` and what else it needs to end after the start request."""
    if name == "test":
        return ["test", str(SCENARIO), "--start", url]
    if name == "load":
        return ["load", "--start", url, "--json"]
    return ["connect", "--start", url, "--json"]


def deprecations(err: str) -> list[str]:
    return [line for line in err.splitlines() if "is deprecated" in line]


# ------------------------------------------------------------------------------ the body


@pytest.mark.parametrize("name", ["connect", "test", "load"])
async def test_websocket_start_body_by_default(stub: HTTPStub, name: str) -> None:
    code, _, err = await run_cli(*command(name, stub.url()))
    assert code in (1, 3), err  # load counts a failed session (1); the others: startup (3)
    assert stub.requests[0].json() == WEBSOCKET_BODY
    assert deprecations(err) == []


@pytest.mark.parametrize("name", ["connect", "test", "load"])
async def test_start_data_replaces_the_body_and_headers_go_with_it(
    stub: HTTPStub, name: str
) -> None:
    code, _, err = await run_cli(
        *command(name, stub.url()),
        "--start-data",
        '{"createDailyRoom": false, "body": {"x": [1]}}',
        "-H",
        "X-Team=blue",
        "-H",
        "Authorization: Bearer pk_secret",
    )
    assert code in (1, 3), err
    seen = stub.requests[0]
    assert seen.json() == {"createDailyRoom": False, "body": {"x": [1]}}
    assert seen.headers["x-team"] == "blue"
    assert seen.headers["authorization"] == "Bearer pk_secret"
    assert "pk_secret" not in err


async def test_webrtc_sends_an_empty_body(stub: HTTPStub) -> None:
    pytest.importorskip("aiortc")
    code, _, err = await run_cli(*command("connect", stub.url()), "--transport", "webrtc")
    assert code == 3, err
    assert stub.requests[0].json() == {}


# ------------------------------------------------------------------------ old spellings


async def test_connect_old_spellings_warn_and_still_work(stub: HTTPStub) -> None:
    code, out, err = await run_cli(
        "connect", stub.url(), "--start", "--data", '{"a": 1}', "--timeout", "5", "-t", "ws",
        "--json",
    )  # fmt: skip
    assert code == 3, err
    assert stub.requests[0].json() == {"a": 1}
    lines = deprecations(err)
    assert len(lines) == 4, err
    for old, new in [
        ("connect URL --start", "connect --start URL"),
        ("--data", "--start-data"),
        ("--timeout", "--connect-timeout"),
        ("-t", "--transport"),
    ]:
        assert any(
            f" {old} is deprecated" in line and line.endswith(f"use {new}") for line in lines
        )
    assert json.loads(out.splitlines()[-1])["code"] == 3


async def test_load_old_spellings_warn_and_still_work(stub: HTTPStub) -> None:
    code, _, err = await run_cli(
        "load", "--start", stub.url(), "--request", "echo", "--data", "{}", "--timeout", "5",
        "-t", "ws", "--json",
    )  # fmt: skip
    assert code == 1, err
    lines = deprecations(err)
    assert len(lines) == 3, err
    assert any("--data is deprecated" in line and "--request-data" in line for line in lines)


def test_transport_has_no_short_option_in_help(capsys: pytest.CaptureFixture[str]) -> None:
    for name in ("connect", "test", "load"):
        with pytest.raises(SystemExit):
            cli.main([name, "--help"])
        text = capsys.readouterr().out
        for option in ("--start URL", "--start-data JSON", "-H NAME=VALUE", "--connect-timeout S"):
            assert option in text, (name, option)
        assert "--transport {ws,webrtc}" in text
        assert "-t {ws,webrtc}" not in text
        # test's --timeout is the expectation budget (pipecat.evals' --timeout), not bot-ready.
        if name != "test":
            assert "--timeout S" not in text.split("options:")[0]


async def test_usage_errors_name_the_flag() -> None:
    code, _, err = await run_cli("connect", "--start", "http://x/start", "-H", "nothing")
    assert code == 2 and "-H wants NAME=VALUE" in err
    code, _, err = await run_cli("connect", "ws://x/ws", "--start-data", "{}")
    assert code == 2 and "--start-data goes with --start URL" in err
    code, _, err = await run_cli("connect")
    assert code == 2 and "--start URL" in err
    code, _, err = await run_cli("connect", "--start", "http://x/start", "ws://x/ws")
    assert code == 2 and "give one" in err
    code, _, err = await run_cli("load", "--start", "http://x/start", "--connect-timeout", "0")
    assert code == 2 and "--connect-timeout" in err


# ------------------------------------------------------------------ StartSettings (API)


def test_start_settings_body_rules() -> None:
    assert StartSettings("http://x/start").start_body() == WEBSOCKET_BODY
    assert StartSettings("http://x/start", transport="webrtc").start_body() is None
    settings = StartSettings("http://x/start", start_data={"a": 1}, headers={"K": "v"})
    request = settings.api_request()
    assert request.request_data == {"a": 1} and dict(request.headers) == {"K": "v"}
    assert request.timeout == settings.connect_timeout
    with pytest.raises(ValueError, match="transport"):
        StartSettings(transport="daily")
    with pytest.raises(ValueError, match="no start URL"):
        StartSettings().api_request()
    secret = StartSettings("http://x/start?token=abc", headers={"Authorization": "Bearer abc"})
    assert "abc" not in repr(secret)


# --------------------------------------------------------------- extras and the clash


def test_missing_extra_exits_2_with_the_install_line(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    import importlib.util

    real = importlib.util.find_spec

    def without_aiortc(name: str, *args: object) -> object:
        return None if name in ("aiortc", "av") else real(name, *args)  # type: ignore[arg-type]

    monkeypatch.setattr(importlib.util, "find_spec", without_aiortc)
    code = cli.main(["connect", "--transport", "webrtc", "http://127.0.0.1:9/offer"])
    err = capsys.readouterr().err
    assert code == 2
    assert err.strip().endswith('pip install "pipecat-lifecycle[webrtc]"'), err
    assert "Traceback" not in err


async def test_a_foreign_transports_package_is_named(tmp_path: Path) -> None:
    (tmp_path / "transports").mkdir()
    (tmp_path / "transports" / "__init__.py").write_text("# the user's own package\n")
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join([str(REPO), os.environ.get("PYTHONPATH", "")]),
    }
    code, _, err = await run_cli("connect", "ws://127.0.0.1:9/ws", cwd=tmp_path, env=env)
    assert code == 2, err
    assert "not pipecat-lifecycle's" in err and str(tmp_path / "transports") in err
    assert "Traceback" not in err


async def test_startup_errors_name_the_flag_that_fixes_them(stub: HTTPStub) -> None:
    code, out, _ = await run_cli("connect", "--start", free_port_url(), "--json")
    assert code == 3
    (error,) = [r for r in map(json.loads, out.splitlines()) if r["event"] == "startup-error"]
    assert error["hint"].startswith("check --start (is the bot server running there?)")
    stub.json_reply({"detail": "Not Found"}, status=404)
    code, out, _ = await run_cli("connect", "--start", stub.url("/strat"))
    assert code == 3 and "hint: no start endpoint at that path: check --start" in out
    stub.json_reply({"detail": "no"}, status=401)
    code, out, _ = await run_cli("test", str(SCENARIO), "--start", stub.url())
    assert code == 3
    assert "refused the credentials: check -H NAME=VALUE" in out + _
