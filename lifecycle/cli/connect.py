"""``pipecat-lifecycle connect``: one live session, printed as it happens."""

from __future__ import annotations

import argparse
import asyncio
import time
from typing import TYPE_CHECKING, Any, Final

from lifecycle.cli.exits import EXIT_CODES_HELP, EXIT_FATAL, EXIT_OK
from lifecycle.cli.logging_setup import configure_logging
from lifecycle.cli.options import add_verbose, parse_headers, parse_json, positive_float
from lifecycle.cli.output import Output, Progress, startup_failed
from lifecycle.cli.report import print_turns, write_report
from lifecycle.cli.session import Interrupt, interact
from lifecycle.cli.watch import Watch
from lifecycle.errors import (
    ConnectionTimeoutError,
    PipecatClientError,
    SessionCancelledError,
    StartBotError,
    TransportError,
)
from transports.factory import make_transport

if TYPE_CHECKING:
    from lifecycle.client import PipecatClient

CONNECT_EPILOG: Final = (
    """\
input (read from stdin once the bot is ready, one line each):
  /msg TYPE [JSON]   send a client-message request and print its response
  /quit              disconnect and exit
  anything else      sent to the bot as send-text
  end of input or Ctrl-C disconnects cleanly.

examples:
  pipecat-lifecycle connect --start http://localhost:7860/start --data '{"transport":"websocket"}'
  pipecat-lifecycle connect ws://localhost:8765/ws --json
  pipecat-lifecycle connect --start --transport webrtc http://localhost:7860/start

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
        help="the bot's ws:// or WebRTC offer URL; with --start, the start endpoint",
    )
    connect.add_argument(
        "--transport", "-t", choices=("ws", "webrtc"), default="ws", help="default: ws"
    )
    connect.add_argument(
        "--start",
        action="store_true",
        help="URL is a start endpoint: POST to it (start_bot), then connect with its response",
    )
    connect.add_argument(
        "--header",
        "-H",
        action="append",
        default=[],
        metavar="K=V",
        help="HTTP header for the start request (and the WebSocket handshake); repeatable",
    )
    connect.add_argument(
        "--data",
        metavar="JSON",
        help="JSON body of the start request (default: {}); only with --start",
    )
    connect.add_argument(
        "--timeout",
        type=positive_float,
        default=30.0,
        metavar="S",
        help="seconds to wait for the start response and for bot-ready (default: 30)",
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
    headers = parse_headers(parser, args.header)
    if args.data is not None and not args.start:
        parser.error("--data goes with --start")
    data = parse_json(parser, "--data", args.data)
    configure_logging(args.verbose)
    return asyncio.run(_connect(args, headers, data))


async def _connect(args: argparse.Namespace, headers: dict[str, str], data: Any) -> int:
    t0 = time.monotonic()
    out = Output(json_mode=args.json, t0=t0)
    from lifecycle.client import PipecatClient
    from lifecycle.start import APIRequest

    try:
        # Direct URL: the transport gets it through connect params; --start: from the response.
        transport = make_transport(args.transport, None, {} if args.start else headers)
    except TransportError as exc:
        return startup_failed(out, exc)
    client = PipecatClient(
        transport, connect_timeout=args.timeout, request_timeout=args.request_timeout
    )
    watch = Watch(client, out)
    interrupt = Interrupt(client, out)
    progress = Progress(client) if Progress.wanted() else None
    out.progress = progress
    try:
        if progress is not None:
            progress.start()
        try:
            if args.start:
                request = APIRequest(args.url, headers, request_data=data, timeout=args.timeout)
                await client.start_bot_and_connect(request)
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
            await interact(client, watch, out)
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
