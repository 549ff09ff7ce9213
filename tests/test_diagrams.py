"""The exported diagrams: built from the table, deterministic, committed files in sync."""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

from lifecycle import TRANSITIONS, State, diagrams

DIAGRAMS = Path(__file__).resolve().parent.parent / "diagrams"
REGENERATE = "regenerate with `make diagrams`"

MERMAID_EDGE = re.compile(r"^    (\w+) --> (\w+): (\w+)$")
DOT_EDGE = re.compile(r'^    (\w+) -> (\w+) \[label="(\w+)"\];$')


def table_edges() -> list[tuple[str, str, str]]:
    return [
        (str(source), str(row["dest"]), row["trigger"])
        for row in TRANSITIONS
        for source in row["source"]
    ]


def test_committed_mermaid_matches_the_table() -> None:
    committed = (DIAGRAMS / "lifecycle.mmd").read_text(encoding="utf-8")
    assert committed == diagrams.to_mermaid(), f"diagrams/lifecycle.mmd drifted: {REGENERATE}"


def test_committed_dot_matches_the_table() -> None:
    committed = (DIAGRAMS / "lifecycle.dot").read_text(encoding="utf-8")
    assert committed == diagrams.to_dot(), f"diagrams/lifecycle.dot drifted: {REGENERATE}"


def test_committed_svg_exists_and_is_svg() -> None:
    root = ET.fromstring((DIAGRAMS / "lifecycle.svg").read_bytes())
    assert root.tag.endswith("svg")


def test_every_table_row_is_one_edge_per_source_in_mermaid() -> None:
    text = diagrams.to_mermaid()
    found = [m.groups() for line in text.splitlines() if (m := MERMAID_EDGE.match(line))]
    assert found == table_edges()


def test_every_table_row_is_one_edge_per_source_in_dot() -> None:
    text = diagrams.to_dot()
    found = [m.groups() for line in text.splitlines() if (m := DOT_EDGE.match(line))]
    assert found == table_edges()


def test_edges_helper_lists_the_table() -> None:
    assert [(s.value, d.value, t) for s, d, t in diagrams.edges()] == table_edges()


def test_initial_state_is_marked() -> None:
    assert "    [*] --> idle" in diagrams.to_mermaid().splitlines()
    dot = diagrams.to_dot()
    assert "    __start__ -> idle;" in dot.splitlines()
    assert re.search(r"^    idle \[.*peripheries=2", dot, re.MULTILINE)


def test_every_state_appears() -> None:
    mermaid, dot = diagrams.to_mermaid(), diagrams.to_dot()
    for state in State:
        assert re.search(rf"\b{state.value}\b", mermaid)
        assert re.search(rf"^    {state.value} \[", dot, re.MULTILINE)


def test_output_is_deterministic() -> None:
    assert diagrams.to_mermaid() == diagrams.to_mermaid()
    assert diagrams.to_dot(State.READY) == diagrams.to_dot(State.READY)


@pytest.mark.parametrize("state", list(State))
def test_highlight_marks_only_that_state(state: State) -> None:
    mermaid = diagrams.to_mermaid(highlight=state)
    assert f"    class {state.value} current" in mermaid.splitlines()
    assert [line for line in mermaid.splitlines() if line.startswith("    class ")] == [
        f"    class {state.value} current"
    ]
    dot = diagrams.to_dot(highlight=state)
    filled = [line for line in dot.splitlines() if "filled" in line]
    assert len(filled) == 1 and filled[0].startswith(f"    {state.value} [")
    # Highlighting only adds lines: the edges stay the same.
    assert set(diagrams.to_mermaid().splitlines()) <= set(mermaid.splitlines())


def test_no_highlight_by_default() -> None:
    assert "class " not in diagrams.to_mermaid()
    assert "filled" not in diagrams.to_dot()


def test_highlight_accepts_a_value_and_rejects_unknown_states() -> None:
    assert diagrams.to_mermaid(highlight="ready") == diagrams.to_mermaid(  # type: ignore[arg-type]
        highlight=State.READY
    )
    with pytest.raises(ValueError):
        diagrams.to_dot(highlight="nowhere")  # type: ignore[arg-type]


def test_svg_renders_valid_xml() -> None:
    pytest.importorskip("pygraphviz")
    svg = diagrams.to_svg(highlight=State.READY)
    root = ET.fromstring(svg.encode("utf-8"))
    assert root.tag == "{http://www.w3.org/2000/svg}svg"
    text = "".join(root.itertext())
    for state in State:
        assert state.value in text
    for trigger in {row["trigger"] for row in TRANSITIONS}:
        assert trigger in text
    assert "#ffd54f" in svg  # the highlight fill


def test_svg_without_pygraphviz_names_the_extra(monkeypatch: pytest.MonkeyPatch) -> None:
    import builtins

    real_import = builtins.__import__

    def fake_import(name: str, *args: object, **kwargs: object) -> object:
        if name == "pygraphviz":
            raise ImportError("No module named 'pygraphviz'")
        return real_import(name, *args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(builtins, "__import__", fake_import)
    with pytest.raises(ImportError, match=re.escape('pip install "pipecat-lifecycle[diagrams]"')):
        diagrams.to_svg()
