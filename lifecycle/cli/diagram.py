"""``pipecat-lifecycle diagram``: print or write the lifecycle state diagram."""

from __future__ import annotations

import argparse
import sys
from typing import Any

from lifecycle import diagrams
from lifecycle.cli.arguments import output_path
from lifecycle.cli.exits import EXIT_OK
from lifecycle.extras import MissingExtraError
from lifecycle.states import State


def add_command(commands: Any) -> None:
    """Register ``diagram`` on the subcommand group."""
    diagram = commands.add_parser(
        "diagram",
        help="print or write the lifecycle state diagram",
        description="The lifecycle state diagram, built from lifecycle.TRANSITIONS.",
        epilog="exit codes: 0 written, 2 usage error, or svg without the 'diagrams' extra "
        '(pip install "pipecat-lifecycle[diagrams]")',
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    diagram.add_argument(
        "--format",
        "-f",
        choices=("mermaid", "dot", "svg"),
        default="mermaid",
        help="output format (default: mermaid); svg needs Graphviz via the 'diagrams' extra",
    )
    diagram.add_argument(
        "-o", "--output", metavar="FILE", type=output_path, help="write to FILE instead of stdout"
    )
    diagram.add_argument(
        "--highlight",
        metavar="STATE",
        choices=[state.value for state in State],
        help="highlight one state: " + ", ".join(state.value for state in State),
    )
    diagram.set_defaults(run=run)


def run(parser: argparse.ArgumentParser, args: argparse.Namespace) -> int:
    """Write the diagram (svg without Graphviz: :class:`MissingExtraError`, exit 2)."""
    from pathlib import Path

    highlight = State(args.highlight) if args.highlight else None
    if args.format == "mermaid":
        text = diagrams.to_mermaid(highlight)
    elif args.format == "dot":
        text = diagrams.to_dot(highlight)
    else:
        try:
            text = diagrams.to_svg(highlight)
        except ImportError:
            raise MissingExtraError("diagram --format svg", "diagrams") from None
        if not text.endswith("\n"):
            text += "\n"
    if args.output:
        Path(args.output).write_text(text, encoding="utf-8")
    else:
        sys.stdout.write(text)
        sys.stdout.flush()
    return EXIT_OK
