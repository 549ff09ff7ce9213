"""``pipecat-lifecycle demo``: a whole session against a local bot, then its turns."""

from __future__ import annotations

import argparse
import asyncio
import time
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any, Final

from lifecycle.cli.exits import EXIT_CODES_HELP, EXIT_OK
from lifecycle.cli.logging_setup import configure_logging
from lifecycle.cli.options import add_verbose, positive_float
from lifecycle.cli.output import Output, compact, elapsed_ms, startup_failed
from lifecycle.cli.report import print_turns, write_report
from lifecycle.cli.session import Interrupt
from lifecycle.cli.watch import Watch
from lifecycle.errors import PipecatClientError, SessionCancelledError
from lifecycle.events import FunctionCall
from lifecycle.extras import require
from lifecycle.rtvi import BotReadyData

if TYPE_CHECKING:
    from lifecycle.client import PipecatClient

DEMO_EPILOG: Final = (
    """\
transports:
  ws        a local testing bot over WebSocket + protobuf (transports.testing), through
            start_bot_and_connect and the real WebSocket transport (default)
  loopback  an in-process bot (transports.loopback), no network at all
  webrtc    a local SmallWebRTC testing bot (transports.testing_webrtc, needs aiortc);
            without aiortc, prints how to try WebRTC against a Pipecat bot

"""
    + EXIT_CODES_HELP
)
DEMO_TEXT: Final = "Hello! What's the weather like in Lisbon today?"
"""The text turn the demo sends (the testing bots answer it, calling a function)."""
_ANSWER_WAIT: Final = 5.0


def add_command(commands: Any) -> None:
    """Register ``demo`` on the subcommand group."""
    demo = commands.add_parser(
        "demo",
        help="run a session against a local testing bot",
        description=(
            "Run a whole session against a local bot: start, connect, bot-ready, one echo "
            "request, one text turn (the conversation is printed), disconnect; then print "
            "the turn's latencies. The testing bot plays its audio in real time."
        ),
        epilog=DEMO_EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    demo.add_argument(
        "--transport",
        "-t",
        choices=("ws", "loopback", "webrtc"),
        default="ws",
        help="default: ws",
    )
    demo.add_argument(
        "--timeout", type=positive_float, default=30.0, metavar="S", help="default: 30"
    )
    demo.add_argument(
        "--report",
        metavar="FILE.html",
        help="at the end, write the session's HTML timeline (turns, lanes, states) to FILE",
    )
    add_verbose(demo)
    demo.set_defaults(run=run)


def run(parser: argparse.ArgumentParser, args: argparse.Namespace) -> int:
    """Run the demo session; returns its exit code."""
    configure_logging(args.verbose)
    return asyncio.run(_demo(args))


async def _demo(args: argparse.Namespace) -> int:
    out = Output(json_mode=False, t0=time.monotonic())
    if args.transport == "webrtc":
        require("demo --transport webrtc", "webrtc", "aiortc", "av")
        return await _demo_webrtc(args, out)
    if args.transport == "loopback":
        return await _demo_loopback(args, out)
    return await _demo_ws(args, out)


async def _demo_ws(args: argparse.Namespace, out: Output) -> int:
    from lifecycle.client import PipecatClient
    from transports.testing import TestingBotServer
    from transports.websocket import WebSocketTransport

    out.say("pipecat-lifecycle demo: a local RTVI bot over WebSocket + protobuf")
    # Audio paced as it plays, so the speaking events fall where a listener hears them.
    async with TestingBotServer(realtime_audio=True) as server:
        out.say(f"testing bot listening; start endpoint {server.start_url}\n")
        client = PipecatClient(WebSocketTransport(), connect_timeout=args.timeout)
        return await _demo_session(
            client, out, lambda: client.start_bot_and_connect(server.start_url), args.report
        )


async def _demo_loopback(args: argparse.Namespace, out: Output) -> int:
    from lifecycle.client import PipecatClient
    from transports.loopback import LoopbackBot, LoopbackTransport

    out.say("pipecat-lifecycle demo: an in-process loopback bot (no network)\n")

    def echo(data: Any) -> Any:
        return data

    bot = LoopbackBot(handlers={"echo": echo})
    client = PipecatClient(LoopbackTransport(bot), connect_timeout=args.timeout)
    return await _demo_session(client, out, client.connect, args.report)


async def _demo_webrtc(args: argparse.Namespace, out: Output) -> int:
    from lifecycle.client import PipecatClient
    from transports.small_webrtc import SmallWebRTCTransport
    from transports.testing_webrtc import TestingWebRTCBotServer

    out.say("pipecat-lifecycle demo: a local RTVI bot over SmallWebRTC (aiortc)")
    async with TestingWebRTCBotServer() as server:
        out.say(f"testing bot listening; start endpoint {server.start_url}\n")
        client = PipecatClient(SmallWebRTCTransport(ice_servers=[]), connect_timeout=args.timeout)
        return await _demo_session(
            client, out, lambda: client.start_bot_and_connect(server.start_url), args.report
        )


async def _echo(client: PipecatClient, out: Output) -> None:
    started = time.monotonic()
    try:
        answer = await client.send_client_request("echo", {"hello": "pipecat"})
    except PipecatClientError as exc:
        out.emit("request-failed", f"echo failed: {type(exc).__name__}: {exc}")
    else:
        out.emit("response", f"echo round trip: {compact(answer)} in {elapsed_ms(started)} ms")


async def _text_turn(client: PipecatClient, out: Output) -> None:
    """Say something and wait (bounded) until the bot has finished answering."""
    try:
        await client.send_text(DEMO_TEXT)
    except PipecatClientError as exc:
        out.emit("send-failed", f"not sent: {exc}")
        return
    out.emit("sent-text", f"sent text: {DEMO_TEXT}")
    try:
        await client.wait_for("on_bot_stopped_speaking", timeout=_ANSWER_WAIT)
    except TimeoutError:
        out.say(f"(no answer from the bot within {_ANSWER_WAIT:g} s)")
    except PipecatClientError:
        pass  # the session ended first: its events say why


def _demo_function(call: FunctionCall) -> dict[str, Any]:
    """Answers any function the bot's LLM calls, so the demo shows a complete call."""
    if "weather" in (call.function_name or ""):
        return {"conditions": "sunny", "temperature_c": 21}
    return {"answered_by": "pipecat-lifecycle demo"}


async def _demo_session(
    client: PipecatClient,
    out: Output,
    start: Callable[[], Awaitable[BotReadyData]],
    report: str | None,
) -> int:
    """Start, bot-ready, an echo round trip, a text turn, disconnect; then the turn's figures."""
    watch = Watch(client, out)
    interrupt = Interrupt(client, out)
    client.register_function_call_handler("*", _demo_function)
    try:
        try:
            await start()
        except SessionCancelledError:
            await watch.caught_up()
            return EXIT_OK
        except PipecatClientError as exc:
            await client.disconnect()
            await watch.caught_up()
            return startup_failed(out, exc)
        if not watch.ended.is_set():
            await _echo(client, out)
        if not watch.ended.is_set():
            await _text_turn(client, out)
        await client.disconnect()
        await watch.caught_up()
    finally:
        interrupt.remove()
        await client.disconnect()
        await watch.close()
    code = watch.exit_code()
    out.say("")
    print_turns(client.trace, out)
    if report:
        write_report(client.trace, out, report)
    else:
        out.say(
            "\nThe session as an HTML timeline: pipecat-lifecycle demo --report demo.html\n"
            "Your bot: pipecat-lifecycle connect --start http://localhost:7860/start "
            "[--report session.html]"
        )
    return code
