"""Pipecat's published simulation files, as published, against a Pipecat 1.14 bot, both transports.

The six files of the pinned sdist's ``evals/release/scenarios/simulated/`` (env
``PIPECAT_EVALS_DIR``; ``make`` fetches them with the interop venv) all pass ``--validate``.
Four of them (book_table with its three callers, order_pizza, order_sushi,
get_insurance_quote: every text-modality one) run unchanged with ``pipecat-lifecycle test``
against tests/interop/sim_bot.py, whose LLM is Pipecat's ``OpenAILLMService`` on a local OpenAI
stand-in playing each flow (tests/support/sim_flows.py), over WebSocket and SmallWebRTC. The
persona and the judge are given on the command line (``--simulator-url``, ``--judge-url``) and
served by a second stand-in that plays each published persona and judges yes. The end reasons
are the scripted ones: the restaurant bot hangs up on a booking (``bot``), the other callers
hang up themselves (``end_call``).
"""

from __future__ import annotations

import json
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from lifecycle.cli import main
from tests.support import sim_flows
from tests.support.interop_bots import BotProcess
from tests.support.openai_stub import OpenAIStub
from tests.support.processes import pipecat_evals_dir
from tests.support.toolkit import patch_loopback_ice

SIMULATED = "release/scenarios/simulated"
SIX = (
    "book_table",
    "capital_curious",
    "complete_patient_intake",
    "get_insurance_quote",
    "order_pizza",
    "order_sushi",
)
# file -> (the bot's flow, {scenario: end reason})
RUNS = {
    "book_table": (
        "restaurant",
        {"available": "bot", "flexible": "bot", "impossible": "end_call"},
    ),
    "order_pizza": ("pizza", {"order_pizza": "end_call"}),
    "order_sushi": ("sushi", {"order_sushi": "end_call"}),
    "get_insurance_quote": ("insurance", {"get_insurance_quote": "end_call"}),
}


@pytest.fixture(scope="module")
def evals_dir() -> Path:
    return pipecat_evals_dir() / SIMULATED


@pytest.fixture(scope="module")
def bot_llm() -> Iterator[OpenAIStub]:
    with OpenAIStub(sim_flows.bot_llm) as stub:
        yield stub


@pytest.fixture(scope="module")
def caller_model() -> Iterator[OpenAIStub]:
    with OpenAIStub(sim_flows.persona_and_judge) as stub:
        yield stub


@pytest.fixture(scope="module")
def sim_bot(interop_python_path: Path, bot_llm: OpenAIStub) -> Iterator[BotProcess]:
    logs = Path(tempfile.mkdtemp(prefix="pipecat-sim-"))
    bot = BotProcess(
        interop_python_path, "sim_bot.py", ["--port", "{port}", "--llm-url", bot_llm.base_url], logs
    )
    bot.start()
    try:
        yield bot
    finally:
        bot.stop()


def test_all_six_published_simulation_files_validate(evals_dir: Path) -> None:
    files = [str(evals_dir / f"{name}.yaml") for name in SIX]
    assert main(["test", "--validate", *files]) == 0


@pytest.mark.parametrize("transport", ["ws", "webrtc"])
@pytest.mark.parametrize("name", sorted(RUNS))
def test_published_simulation_runs_as_published(
    evals_dir: Path,
    sim_bot: BotProcess,
    caller_model: OpenAIStub,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    name: str,
    transport: str,
) -> None:
    if transport == "webrtc":
        patch_loopback_ice(monkeypatch)
    monkeypatch.setenv("OPENAI_API_KEY", "sk-interop-SECRET-0123456789")
    flow, ends = RUNS[name]
    code = main(
        [
            "test",
            str(evals_dir / f"{name}.yaml"),
            "--start",
            f"{sim_bot.base_url}/{flow}/start",
            "--transport",
            transport,
            "--simulator-url",
            caller_model.base_url,
            "--simulator-model",
            "stand-in",
            "--judge-url",
            caller_model.base_url,
            "--judge-model",
            "stand-in",
            "--logs-dir",
            str(tmp_path),
        ]
    )
    out = capsys.readouterr()
    assert code == 0, out.out + out.err
    assert "sk-interop-SECRET" not in out.out + out.err
    for scenario, end_reason in ends.items():
        [log] = tmp_path.glob(f"{name}__{scenario}__001.conversation.json")
        run = json.loads(log.read_text())
        assert (run["passed"], run["end_reason"]) == (True, end_reason), run["reason"]
        assert run["turns"] and all(t["first_token_ms"] is not None for t in run["turns"][:-1])
        assert all(v["passed"] and v["reason"] for v in run["verdicts"])
        assert "sk-interop-SECRET" not in log.read_text()
