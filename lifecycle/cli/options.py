"""Argument types and option groups shared by several commands.

The start vocabulary is here, one definition for ``connect``, ``test`` and
``load``: :func:`add_start_options` registers ``--start URL``, ``--start-data JSON``,
``-H NAME=VALUE``, ``--transport ws|webrtc`` and ``--connect-timeout S`` (and the old
spellings a command still accepts, as deprecated aliases that warn once on stderr), and
:func:`start_settings` turns them into a :class:`~lifecycle.start.StartSettings`.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Collection, Sequence
from typing import Any, Final

from lifecycle.cli.arguments import loads_json
from lifecycle.start import TRANSPORT_KINDS, StartSettings, parse_header

__all__ = [
    "START_FLAG",
    "DeprecatedAlias",
    "add_start_options",
    "add_verbose",
    "parse_headers",
    "parse_json",
    "positive_float",
    "positive_int",
    "start_settings",
]

DEFAULT_CONNECT_TIMEOUT: Final = 30.0
START_FLAG: Final = "\0flag"
"""``args.start`` when ``--start`` was given with no URL (``connect URL --start``, deprecated)."""


def add_verbose(parser: argparse.ArgumentParser) -> None:
    """``-v``/``-vv``: how much of the library's log reaches stderr."""
    parser.add_argument(
        "-v",
        "--verbose",
        action="count",
        default=0,
        help="log to stderr: -v info, -vv debug (default: warnings only)",
    )


def positive_float(text: str) -> float:
    """An argparse type: a number greater than zero."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number: {text!r}") from None
    if not value > 0 or value == float("inf"):
        raise argparse.ArgumentTypeError(f"must be a positive number of seconds: {text!r}")
    return value


def positive_int(text: str) -> int:
    """An argparse type: a whole number greater than zero."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a whole number: {text!r}") from None
    if value <= 0:
        raise argparse.ArgumentTypeError(f"must be positive: {text!r}")
    return value


class DeprecatedAlias(argparse.Action):
    """An old spelling of an option: stores into the new option's ``dest`` and prints one
    line on stderr naming the new spelling. Hidden from ``--help`` (CHANGELOG lists it)."""

    def __init__(
        self, option_strings: Sequence[str], dest: str, *, new: str, **kwargs: Any
    ) -> None:
        kwargs.setdefault("default", argparse.SUPPRESS)
        super().__init__(option_strings, dest, help=argparse.SUPPRESS, **kwargs)
        self.new = new
        self._warned = False

    def __call__(
        self,
        parser: argparse.ArgumentParser,
        namespace: argparse.Namespace,
        values: Any,
        option_string: str | None = None,
    ) -> None:
        """Store ``values`` as the new option would; warn the first time."""
        if not self._warned:
            self._warned = True
            deprecated(parser, option_string or "/".join(self.option_strings), self.new)
        setattr(namespace, self.dest, values)


def deprecated(parser: argparse.ArgumentParser, old: str, new: str) -> None:
    """The one warning line of a deprecated spelling (stderr)."""
    print(
        f"{parser.prog}: warning: {old} is deprecated and will be removed; use {new}",
        file=sys.stderr,
    )


def add_start_options(
    parser: argparse.ArgumentParser,
    *,
    start_required: bool = False,
    start_help: str = "the bot's start endpoint (POST), e.g. http://localhost:7860/start",
    aliases: Collection[str] = (),
) -> None:
    """The start vocabulary: ``--start``, ``--start-data``, ``-H``, ``--transport``,
    ``--connect-timeout``.

    ``aliases`` turns on old spellings this command accepted, each a deprecated alias:
    ``"-t"`` (for ``--transport``), ``"--timeout"`` (``--connect-timeout``), ``"--data"``
    (``--start-data``) and ``"--start-flag"`` (``--start`` with no URL, which then names
    a positional URL: ``args.start`` is :data:`START_FLAG`).
    """
    group = parser.add_argument_group("reaching the bot")
    if "--start-flag" in aliases:
        group.add_argument("--start", nargs="?", const=START_FLAG, metavar="URL", help=start_help)
    else:
        group.add_argument("--start", required=start_required, metavar="URL", help=start_help)
    group.add_argument(
        "--start-data",
        metavar="JSON",
        help="the start request body, sent as is (default with --transport ws: "
        '{"transport": "websocket"}; with webrtc: {})',
    )
    group.add_argument(
        "-H",
        "--header",
        dest="header",
        action="append",
        default=[],
        metavar="NAME=VALUE",
        help="a start request header, e.g. -H 'Authorization=Bearer pk_...'; repeatable",
    )
    group.add_argument(
        "--transport",
        choices=TRANSPORT_KINDS,
        default="ws",
        help="ws (WebSocket) or webrtc (SmallWebRTC); default: ws",
    )
    group.add_argument(
        "--connect-timeout",
        type=positive_float,
        default=DEFAULT_CONNECT_TIMEOUT,
        metavar="S",
        help="seconds for the start request, and again for bot-ready (default: 30)",
    )
    if "-t" in aliases:
        group.add_argument(
            "-t",
            action=DeprecatedAlias,
            new="--transport",
            dest="transport",
            choices=TRANSPORT_KINDS,
        )
    if "--timeout" in aliases:
        group.add_argument(
            "--timeout",
            action=DeprecatedAlias,
            new="--connect-timeout",
            dest="connect_timeout",
            type=positive_float,
        )
    if "--data" in aliases:
        group.add_argument("--data", action=DeprecatedAlias, new="--start-data", dest="start_data")


def start_settings(
    parser: argparse.ArgumentParser, args: argparse.Namespace, start_url: str | None = None
) -> StartSettings:
    """The :class:`StartSettings` of the parsed start options (a bad one: exit 2 naming it).

    ``start_url`` replaces ``args.start`` (``connect`` resolves its two forms itself).
    """
    headers = parse_headers(parser, args.header)
    data = parse_json(parser, "--start-data", args.start_data)
    url = start_url if start_url is not None else args.start
    try:
        return StartSettings(
            start_url=url,
            start_data=data,
            headers=headers,
            transport=args.transport,
            connect_timeout=args.connect_timeout,
        )
    except (TypeError, ValueError) as exc:
        parser.error(f"-H: {exc}")


def parse_headers(parser: argparse.ArgumentParser, items: Sequence[str]) -> dict[str, str]:
    """``NAME=VALUE`` items (curl's ``NAME: VALUE`` too) -> a header mapping.

    A malformed one is a usage error (exit 2) that shows the name, never the value.
    """
    headers: dict[str, str] = {}
    for item in items:
        try:
            name, value = parse_header(item)
        except ValueError as exc:
            parser.error(f"-H wants NAME=VALUE: {exc}")
        headers[name] = value
    return headers


def parse_json(parser: argparse.ArgumentParser, option: str, text: str | None) -> Any:
    """The JSON value of ``option`` (``None`` when not given); invalid JSON is a usage error."""
    if text is None:
        return None
    try:
        return loads_json(text)
    except ValueError as exc:
        why = "" if str(exc) == "not valid JSON" else f" ({exc})"
        parser.error(f"{option} is not valid JSON{why}")
