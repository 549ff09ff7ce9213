"""The ``pipecat-lifecycle`` command line (also ``python -m lifecycle``).

Commands, one module each (a module registers its subparser with ``add_command`` and sets
``run(parser, args) -> exit code`` as its default):

``diagram`` (:mod:`lifecycle.cli.diagram`)
    Print or write the lifecycle state diagram (Mermaid, DOT or SVG).
``connect`` (:mod:`lifecycle.cli.connect`)
    Run one live session with a bot, print every transition and what the bot says, and
    send what is typed on stdin.
``demo`` (:mod:`lifecycle.cli.demo`)
    Run a whole session against a local testing bot and show what happened.
``load`` (:mod:`lifecycle.cli.load`)
    Run many sessions against a deployment and measure each phase.
``test`` (:mod:`lifecycle.cli.test`)
    Run pipecat.evals-format scenario files against a bot (needs the ``testing`` extra).

This package is an application entry point: when structlog is not configured yet it
sends log lines to stderr (warnings and up; ``-v`` for info, ``-vv`` for debug), so
stdout carries only the command's own output.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import sys
from collections.abc import Sequence

from lifecycle.cli import connect, demo, diagram, load, test
from lifecycle.cli.exits import (
    EXIT_CODES_HELP,
    EXIT_FAILURE,
    EXIT_FATAL,
    EXIT_INTERRUPTED,
    EXIT_OK,
    EXIT_STARTUP,
    EXIT_USAGE,
)
from lifecycle.contrib.transport_factory import ForeignTransportsError
from lifecycle.extras import MissingExtraError

__all__ = [
    "EXIT_FAILURE",
    "EXIT_FATAL",
    "EXIT_INTERRUPTED",
    "EXIT_OK",
    "EXIT_STARTUP",
    "EXIT_USAGE",
    "build_parser",
    "main",
]

_COMMANDS = (diagram, connect, demo, load, test)
"""The command modules, in the order ``--help`` lists them."""


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of every command (exposed for docs and tests)."""
    from lifecycle import __version__

    parser = argparse.ArgumentParser(
        prog="pipecat-lifecycle",
        description="Pipecat session lifecycle: state diagrams, live sessions and a demo.",
        epilog=EXIT_CODES_HELP,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for command in _COMMANDS:
        command.add_command(commands)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line with ``argv`` (default ``sys.argv[1:]``); returns the exit code."""
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        code: int = args.run(parser, args)
        return code
    except (MissingExtraError, ForeignTransportsError) as exc:
        # An installation problem, not a bug: the message says how to fix it.
        print(f"{parser.prog}: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except KeyboardInterrupt:
        # A second Ctrl-C while the first one's disconnect was still running.
        print("interrupted", file=sys.stderr)
        return EXIT_INTERRUPTED
    except BrokenPipeError:
        # Output piped into e.g. `head`: quietly stop.
        with contextlib.suppress(OSError):
            sys.stdout = open(os.devnull, "w")  # noqa: SIM115
        return EXIT_FAILURE
