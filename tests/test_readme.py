"""The README's examples run as written and its diagram and table match the state table."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

from lifecycle import TRANSITIONS
from lifecycle.diagrams import to_mermaid

README = (Path(__file__).parent.parent / "README.md").read_text()
BLOCKS = re.findall(r"```(\w+)\n(.*?)```", README, re.S)


def python_blocks() -> list[str]:
    return [code for lang, code in BLOCKS if lang == "python"]


def test_quick_start_runs_as_written() -> None:
    code = python_blocks()[0]
    assert len(code.strip().splitlines()) <= 20, "the quick start stays short"
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=True
    )
    assert "bot: You said: Hello, bot!" in out.stdout
    assert "turn 1 (text): llm" in out.stdout


def test_install_and_quick_start_lead() -> None:
    headings = re.findall(r"^## (.+)$", README, re.M)
    assert headings[:2] == ["Install", "Quick start"]
    assert "make demo" in README and "make test" in README
    assert "shared/" not in README  # nothing outside the repository


def test_loopback_example_runs_as_written() -> None:
    code = next(c for c in python_blocks() if "LoopbackBot(handlers" in c)
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=True
    )
    assert "bot ready, RTVI 2.2.0" in out.stdout
    assert "{'hello': 'bot'}" in out.stdout
    assert "ready -> disconnecting" in out.stdout


def test_embedding_example_runs() -> None:
    code = next(c for c in python_blocks() if "SessionLifecycle()" in c)
    subprocess.run([sys.executable, "-c", code], check=True, timeout=60, capture_output=True)


def test_mermaid_diagram_matches_table() -> None:
    (diagram,) = [code for lang, code in BLOCKS if lang == "mermaid"]
    assert diagram.strip() == to_mermaid().strip()


def test_trigger_table_matches_transitions() -> None:
    rows = re.findall(r"^\| `(\w+)` \| ([a-z, ]+) \| (\w+) \|", README, re.M)
    expected = [
        (r["trigger"], ", ".join(s.value for s in r["source"]), r["dest"].value)
        for r in TRANSITIONS
    ]
    assert rows == expected
