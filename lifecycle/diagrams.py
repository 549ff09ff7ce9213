"""State diagrams of the session lifecycle, built from :data:`lifecycle.TRANSITIONS`.

The table is the one source: every row becomes one edge per source state, labelled
with its trigger, in table order, so the output is deterministic and a test can
compare it with the committed files in ``diagrams/``. :func:`to_mermaid` and
:func:`to_dot` are pure string builders; :func:`to_svg` lays the DOT text out with
Graphviz through ``pygraphviz`` (the optional ``diagrams`` extra).
"""

from __future__ import annotations

from typing import Final

from lifecycle.states import State
from lifecycle.table import INITIAL_STATE, TRANSITIONS

__all__ = ["INITIAL_STATE", "SVG_EXTRA_HINT", "edges", "to_dot", "to_mermaid", "to_svg"]

SVG_EXTRA_HINT: Final = 'pip install "pipecat-lifecycle[diagrams]"'
"""The command that installs what :func:`to_svg` needs."""

_TITLE: Final = "Pipecat session lifecycle"
_HIGHLIGHT_FILL: Final = "#ffd54f"
_HIGHLIGHT_STROKE: Final = "#e65100"


def edges() -> list[tuple[State, State, str]]:
    """Every ``(source, dest, trigger)`` of the table: one per source of a row, in table order."""
    return [
        (State(source), State(row["dest"]), row["trigger"])
        for row in TRANSITIONS
        for source in row["source"]
    ]


def _check_highlight(highlight: State | str | None) -> State | None:
    # A StrEnum accepts its value too, so "ready" works as well as State.READY.
    return None if highlight is None else State(highlight)


def to_mermaid(highlight: State | None = None) -> str:
    """The lifecycle as a Mermaid ``stateDiagram-v2`` (GitHub renders it in Markdown).

    ``[*]`` points at the initial state; each edge is labelled with its trigger;
    ``highlight`` (e.g. the current state) gets a ``current`` class with a fill colour.
    Raises ``ValueError`` for a ``highlight`` that is not a state.
    """
    current = _check_highlight(highlight)
    lines = [
        "---",
        f"title: {_TITLE}",
        "---",
        "stateDiagram-v2",
        "    direction TB",
        f"    [*] --> {INITIAL_STATE.value}",
    ]
    lines += [f"    {src.value} --> {dst.value}: {trigger}" for src, dst, trigger in edges()]
    if current is not None:
        lines += [
            f"    classDef current fill:{_HIGHLIGHT_FILL},stroke:{_HIGHLIGHT_STROKE},"
            "stroke-width:3px,font-weight:bold",
            f"    class {current.value} current",
        ]
    return "\n".join(lines) + "\n"


def to_dot(highlight: State | None = None) -> str:
    """The lifecycle as a Graphviz DOT ``digraph``.

    A point-shaped ``__start__`` node points at the initial state, which is also drawn
    with a double border; each edge is labelled with its trigger; ``highlight`` is
    filled. Raises ``ValueError`` for a ``highlight`` that is not a state.
    """
    current = _check_highlight(highlight)
    lines = [
        "digraph lifecycle {",
        f'    label="{_TITLE}";',
        "    labelloc=t;",
        "    rankdir=TB;",
        '    fontname="Helvetica";',
        '    node [shape=box, style=rounded, fontname="Helvetica"];',
        '    edge [fontname="Helvetica", fontsize=10];',
        '    __start__ [shape=point, width=0.2, label=""];',
    ]
    for state in State:
        attrs = [f'label="{state.value}"']
        if state is INITIAL_STATE:
            attrs.append("peripheries=2")
        if state is current:
            attrs += [
                'style="rounded,filled,bold"',
                f'fillcolor="{_HIGHLIGHT_FILL}"',
                f'color="{_HIGHLIGHT_STROKE}"',
                "penwidth=2",
            ]
        lines.append(f"    {state.value} [{', '.join(attrs)}];")
    lines.append(f"    __start__ -> {INITIAL_STATE.value};")
    lines += [
        f'    {src.value} -> {dst.value} [label="{trigger}"];' for src, dst, trigger in edges()
    ]
    lines.append("}")
    return "\n".join(lines) + "\n"


def to_svg(highlight: State | None = None) -> str:
    """The DOT diagram laid out by Graphviz (``dot``) as SVG text.

    Needs ``pygraphviz`` (which bundles or links Graphviz): without it an
    ``ImportError`` says to run ``pip install "pipecat-lifecycle[diagrams]"``.
    """
    dot = to_dot(highlight)
    try:
        import pygraphviz
    except ImportError as exc:
        raise ImportError(
            f"SVG diagrams need Graphviz through pygraphviz: {SVG_EXTRA_HINT}"
        ) from exc
    graph = pygraphviz.AGraph(string=dot)
    svg = graph.draw(format="svg", prog="dot")
    return svg.decode("utf-8") if isinstance(svg, bytes) else str(svg)
