"""``pipecat-lifecycle connect``: one live session, printed as it happens."""

from __future__ import annotations

import argparse
import asyncio
import time
from typing import TYPE_CHECKING, Any, Final

from lifecycle.cli.exits import EXIT_CODES_HELP, EXIT_FATAL, EXIT_OK
from lifecycle.cli.logging_setup import configure_logging
from lifecycle.cli.options import (
    START_FLAG,
    add_start_options,
    add_verbose,
    deprecated,
    positive_float,
    start_settings,
)
from lifecycle.cli.output import Output, Progress, startup_failed
from lifecycle.cli.report import print_turns, write_report
from lifecycle.cli.session import ANSWER_TIMEOUT, Interrupt, interact
from lifecycle.cli.watch import Watch
from lifecycle.contrib.transport_factory import make_transport
from lifecycle.errors import (
    ConnectionTimeoutError,
    PipecatClientError,
    SessionCancelledError,
    StartBotError,
    TransportError,
)

if TYPE_CHECKING:
    from lifecycle.client import PipecatClient
    from lifecycle.start import StartSettings

CONNECT_EPILOG: Final = (
    """\
input (read from stdin once the bot is ready, one line each):
  /msg TYPE [JSON]   send a client-message request and print its response
  /quit              disconnect and exit
  anything else      sent to the bot as send-text
  end of input or Ctrl-C disconnects cleanly. From a pipe (or with --say), each line waits
  for the bot's answer to the one before, and end of input for the last answer
  (--answer-timeout). connect answers no function calls: a call says so when it arrives.

examples:
  pipecat-lifecycle connect --start http://localhost:7860/start
  pipecat-lifecycle connect --start http://localhost:7860/start --transport webrtc
  pipecat-lifecycle connect ws://localhost:8765/ws --json
  echo "What's the weather?" | pipecat-lifecycle connect --start http://localhost:7860/start

"""
    + EXIT_CODES_HELP
)


def add_command(commands: Any) -> None:
    """Register ``connect`` on the subcommand group."""
    connect = commands.add_parser(
        "connect",
        help="run one live session and print what happens",
        description=(
            "Run one live session with a Pipecat bot: print each transition (state, trigger, "
            "ms since the command started) and every RTVI message, one line each; then send "
            "what you type."
        ),
        epilog=CONNECT_EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    connect.add_argument(
        "url",
        metavar="URL",
        nargs="?",
        help="the bot's ws:// URL or WebRTC offer URL (or use --start URL)",
    )
    add_start_options(
        connect,
        start_help="POST to this start endpoint (start_bot), then connect with its answer",
        aliases=("-t", "--timeout", "--data", "--start-flag"),
    )
    connect.add_argument(
        "--say",
        action="append",
        default=[],
        metavar="TEXT",
        help="send TEXT once the bot is ready (before stdin's lines); repeatable",
    )
    connect.add_argument(
        "--answer-timeout",
        type=positive_float,
        default=ANSWER_TIMEOUT,
        metavar="S",
        help="reading a pipe (or with --say): seconds to wait for the bot's answer before the "
        "next line and before disconnecting at end of input (default: 30)",
    )
    connect.add_argument(
        "--request-timeout",
        type=positive_float,
        default=10.0,
        metavar="S",
        help="seconds to wait for the response of a /msg request (default: 10)",
    )
    connect.add_argument(
        "--json", action="store_true", help="print one JSON object per line instead of text"
    )
    connect.add_argument(
        "--report",
        metavar="FILE.html",
        help="at the end, write the session's HTML timeline (turns, lanes, states) to FILE",
    )
    add_verbose(connect)
    connect.set_defaults(run=run)


def run(parser: argparse.ArgumentParser, args: argparse.Namespace) -> int:
    """Check the options, then run the session; returns its exit code."""
    settings = start_settings(parser, args, _start_url(parser, args))
    if settings.start_url is None:
        if args.url is None:
            parser.error("give the bot's URL, or its start endpoint with --start URL")
        if args.start_data is not None:
            parser.error("--start-data goes with --start URL")
    configure_logging(args.verbose)
    return asyncio.run(_connect(args, settings))


def _start_url(parser: argparse.ArgumentParser, args: argparse.Namespace) -> str | None:
    """The start URL: ``--start URL``, or (deprecated) ``URL --start``."""
    if args.start is None:
        return None
    if args.start == START_FLAG:
        if args.url is None:
            parser.error("--start wants the start endpoint: --start URL")
        deprecated(parser, "connect URL --start", "connect --start URL")
        url: str = args.url
        args.url = None
        return url
    if args.url is not None:
        parser.error(f"two URLs: --start {args.start} and {args.url}; give one")
    start: str = args.start
    return start


async def _connect(args: argparse.Namespace, settings: StartSettings) -> int:
    t0 = time.monotonic()
    out = Output(json_mode=args.json, t0=t0)
    from lifecycle.client import PipecatClient

    # Direct URL: the transport gets it through connect params; --start: from the response.
    transport = make_transport(settings)
    client = PipecatClient(
        transport, connect_timeout=settings.connect_timeout, request_timeout=args.request_timeout
    )
    watch = Watch(client, out, answers_calls=False)
    interrupt = Interrupt(client, out)
    progress = Progress(client) if Progress.wanted() else None
    out.progress = progress
    try:
        if progress is not None:
            progress.start()
        try:
            if settings.start_url is not None:
                await client.start_bot_and_connect(settings.api_request())
            else:
                key = "webrtcUrl" if args.transport == "webrtc" else "wsUrl"
                await client.connect({key: args.url})
        except SessionCancelledError:
            await _ended(client, watch, out, args.report)
            out.emit("exit", "interrupted before the bot was ready", code=EXIT_OK)
            return EXIT_OK
        except (StartBotError, TransportError, ConnectionTimeoutError, PipecatClientError) as exc:
            await _ended(client, watch, out, args.report)
            code = startup_failed(out, exc)
            if out.json_mode:
                out.emit("exit", f"exit {code}", code=code)
            return code
        finally:
            if progress is not None:
                await progress.stop()
        if not interrupt.hit:
            await interact(client, watch, out, say=args.say, answer_timeout=args.answer_timeout)
        await _ended(client, watch, out, args.report)
        code = watch.exit_code()
        how = (
            "fatal error"
            if code == EXIT_FATAL
            else "the bot ended the session"
            if watch.bot_left
            else "disconnected"
        )
        out.emit("exit", f"session ended: {how} (exit {code})", code=code)
        return code
    finally:
        interrupt.remove()
        await client.disconnect()
        await watch.close()


async def _ended(client: PipecatClient, watch: Watch, out: Output, report: str | None) -> None:
    """Disconnect, let the session's last events print, then its turns and the report."""
    await client.disconnect()
    await watch.caught_up()
    print_turns(client.trace, out, client.session_id)
    if report:
        write_report(client.trace, out, report)
