"""The ``pipecat-lifecycle`` command line (also ``python -m lifecycle``).

Commands:

``diagram``
    Print or write the lifecycle state diagram (Mermaid, DOT or SVG).
``connect``
    Run one live session with a bot, print every transition and RTVI message, and send
    what is typed on stdin.
``demo``
    Run a whole session against a local testing bot and show what happened.

This module is an application entry point: when structlog is not configured yet it
sends log lines to stderr (warnings and up; ``-v`` for info, ``-vv`` for debug), so
stdout carries only the command's own output.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import importlib.util
import json
import logging
import os
import signal
import sys
import threading
import time
from collections.abc import Awaitable, Callable, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, Final, TextIO

from lifecycle import diagrams
from lifecycle.errors import (
    ConnectionTimeoutError,
    MessageError,
    PipecatClientError,
    RequestTimeoutError,
    SessionCancelledError,
    StartBotError,
    TransportError,
)
from lifecycle.machine import TransitionEvent
from lifecycle.rtvi import BotReadyData, RTVIError
from lifecycle.states import State

if TYPE_CHECKING:
    from lifecycle.client import PipecatClient
    from transports.base import Transport

__all__ = [
    "EXIT_FAILURE",
    "EXIT_FATAL",
    "EXIT_OK",
    "EXIT_STARTUP",
    "EXIT_USAGE",
    "build_parser",
    "main",
]

EXIT_OK: Final = 0
"""The session ended cleanly: the user disconnected or the bot ended it."""
EXIT_FAILURE: Final = 1
"""An unexpected error, or a missing optional extra."""
EXIT_USAGE: Final = 2
"""Bad command-line usage (argparse's own code)."""
EXIT_STARTUP: Final = 3
"""The session never became ready: start endpoint, transport or bot-ready timeout."""
EXIT_FATAL: Final = 4
"""A fatal error ended a ready session (RTVI fatal error or the connection lost)."""

EXIT_CODES_HELP: Final = """\
exit codes:
  0  clean end: you disconnected (/quit, end of input, Ctrl-C) or the bot ended the session
  1  unexpected error, or an optional extra is missing
  2  usage error
  3  startup error: the start endpoint failed (StartBotError), the transport could not
     connect (TransportError) or bot-ready did not arrive in time (ConnectionTimeoutError)
  4  fatal error during the session: an RTVI error with fatal=true, or the connection lost
"""

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

_WAITING_STATES: Final = frozenset(
    {State.AUTHENTICATING, State.AUTHENTICATED, State.CONNECTING, State.CONNECTED}
)
_SPINNER: Final = "|/-\\"
_READ_CHUNK: Final = 65536
_END_WAIT: Final = 15.0
_REPO_DIAGRAM: Final = Path(__file__).resolve().parent.parent / "diagrams" / "lifecycle.mmd"


# --------------------------------------------------------------------------- parser


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of every command (exposed for docs and tests)."""
    parser = argparse.ArgumentParser(
        prog="pipecat-lifecycle",
        description="Pipecat session lifecycle: state diagrams, live sessions and a demo.",
        epilog=EXIT_CODES_HELP,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    from lifecycle import __version__

    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)

    diagram = commands.add_parser(
        "diagram",
        help="print or write the lifecycle state diagram",
        description="The lifecycle state diagram, built from lifecycle.TRANSITIONS.",
        epilog="exit codes: 0 written, 1 svg needs the 'diagrams' extra "
        '(pip install "pipecat-lifecycle[diagrams]"), 2 usage error',
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    diagram.add_argument(
        "--format",
        "-f",
        choices=("mermaid", "dot", "svg"),
        default="mermaid",
        help="output format (default: mermaid); svg needs Graphviz via the 'diagrams' extra",
    )
    diagram.add_argument("-o", "--output", metavar="FILE", help="write to FILE instead of stdout")
    diagram.add_argument(
        "--highlight",
        metavar="STATE",
        choices=[state.value for state in State],
        help="highlight one state: " + ", ".join(state.value for state in State),
    )

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
        type=_positive_float,
        default=30.0,
        metavar="S",
        help="seconds to wait for the start response and for bot-ready (default: 30)",
    )
    connect.add_argument(
        "--request-timeout",
        type=_positive_float,
        default=10.0,
        metavar="S",
        help="seconds to wait for the response of a /msg request (default: 10)",
    )
    connect.add_argument(
        "--json", action="store_true", help="print one JSON object per line instead of text"
    )
    _add_verbose(connect)

    demo = commands.add_parser(
        "demo",
        help="run a session against a local testing bot",
        description=(
            "Run a whole session against a local bot: start, connect, bot-ready, one echo "
            "request, disconnect; then show where the diagram is and the session trace."
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
        "--timeout", type=_positive_float, default=30.0, metavar="S", help="default: 30"
    )
    _add_verbose(demo)
    return parser


def _add_verbose(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "-v",
        "--verbose",
        action="count",
        default=0,
        help="log to stderr: -v info, -vv debug (default: warnings only)",
    )


def _positive_float(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number: {text!r}") from None
    if not value > 0:
        raise argparse.ArgumentTypeError(f"must be positive: {text!r}")
    return value


def _parse_headers(parser: argparse.ArgumentParser, items: Sequence[str]) -> dict[str, str]:
    headers: dict[str, str] = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep or not key.strip():
            parser.error(f"--header wants K=V, got {item.split('=', 1)[0]!r}...")
        headers[key.strip()] = value.strip()
    return headers


# ----------------------------------------------------------------------------- main


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line with ``argv`` (default ``sys.argv[1:]``); returns the exit code."""
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        if args.command == "diagram":
            return _diagram(args)
        headers = _parse_headers(parser, getattr(args, "header", []))
        data: Any = None
        if getattr(args, "data", None) is not None:
            if not args.start:
                parser.error("--data goes with --start")
            try:
                data = json.loads(args.data)
            except ValueError:
                parser.error("--data is not valid JSON")
        _configure_logging(args.verbose)
        if args.command == "connect":
            return asyncio.run(_connect(args, headers, data))
        return asyncio.run(_demo(args))
    except KeyboardInterrupt:
        # A second Ctrl-C while the first one's disconnect was still running.
        print("interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:
        # Output piped into e.g. `head`: quietly stop.
        with contextlib.suppress(OSError):
            sys.stdout = open(os.devnull, "w")  # noqa: SIM115
        return EXIT_FAILURE


def _configure_logging(verbosity: int) -> None:
    """Send log lines to stderr, filtered by level, unless the embedding app configured them."""
    import structlog

    if structlog.is_configured():
        return
    level = logging.WARNING if verbosity <= 0 else logging.INFO if verbosity == 1 else logging.DEBUG
    structlog.configure(
        processors=[
            structlog.processors.add_log_level,
            structlog.processors.TimeStamper(fmt="iso", utc=True),
            structlog.dev.ConsoleRenderer(colors=False),
        ],
        wrapper_class=structlog.make_filtering_bound_logger(level),
        logger_factory=structlog.PrintLoggerFactory(sys.stderr),
        cache_logger_on_first_use=False,
    )


def _diagram(args: argparse.Namespace) -> int:
    highlight = State(args.highlight) if args.highlight else None
    if args.format == "mermaid":
        text = diagrams.to_mermaid(highlight)
    elif args.format == "dot":
        text = diagrams.to_dot(highlight)
    else:
        try:
            text = diagrams.to_svg(highlight)
        except ImportError as exc:
            print(f"pipecat-lifecycle: {exc}", file=sys.stderr)
            return EXIT_FAILURE
        if not text.endswith("\n"):
            text += "\n"
    if args.output:
        Path(args.output).write_text(text, encoding="utf-8")
    else:
        sys.stdout.write(text)
        sys.stdout.flush()
    return EXIT_OK


# --------------------------------------------------------------------------- output


class _Output:
    """Prints events as text lines or JSON lines, with ms since the command started."""

    def __init__(self, *, json_mode: bool, t0: float, stream: TextIO | None = None) -> None:
        self.json_mode = json_mode
        self.t0 = t0
        self.stream = stream if stream is not None else sys.stdout
        self.progress: _Progress | None = None

    def ms(self, at: float | None = None) -> float:
        """Milliseconds from the command's start to ``at`` (default: now)."""
        return ((time.monotonic() if at is None else at) - self.t0) * 1000.0

    def emit(self, event: str, text: str, *, at: float | None = None, **fields: Any) -> None:
        """Print one event: ``text`` in text mode, ``{"event", "ms", **fields}`` in JSON mode."""
        if self.progress is not None:
            self.progress.clear()
        ms = round(self.ms(at), 1)
        if self.json_mode:
            line = json.dumps({"event": event, "ms": ms, **fields}, ensure_ascii=False, default=str)
        else:
            line = f"{ms:9.1f} ms  {text}"
        self.stream.write(line + "\n")
        self.stream.flush()

    def say(self, text: str) -> None:
        """A plain text line (text mode only: JSON mode prints events only)."""
        if self.json_mode:
            return
        if self.progress is not None:
            self.progress.clear()
        self.stream.write(text + "\n")
        self.stream.flush()

    def transition(self, event: TransitionEvent) -> None:
        """One state change."""
        reason = f"  ({event.reason})" if event.reason else ""
        self.emit(
            "transition",
            f"{event.source.value:>14} -> {event.dest.value:<14} [{event.trigger}]{reason}",
            at=event.at,
            state=event.dest.value,
            source=event.source.value,
            trigger=event.trigger,
            reason=event.reason,
            session_id=event.session_id,
        )


class _Progress:
    """A spinner on stderr while the session is starting; only on a terminal."""

    def __init__(self, client: PipecatClient) -> None:
        self._client = client
        self._task: asyncio.Task[None] | None = None
        self._shown = False

    @staticmethod
    def wanted() -> bool:
        """Progress shows only when stdout is a terminal (never when piped)."""
        return sys.stdout.isatty() and sys.stderr.isatty()

    def start(self) -> None:
        """Start spinning (from inside the event loop)."""
        self._task = asyncio.get_running_loop().create_task(self._spin())

    async def stop(self) -> None:
        """Stop and erase the spinner."""
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None
        self.clear()

    def clear(self) -> None:
        """Erase the spinner line (before other output)."""
        if self._shown:
            sys.stderr.write("\r\033[K")
            sys.stderr.flush()
            self._shown = False

    async def _spin(self) -> None:
        frame = 0
        while True:
            state = self._client.state
            if state in _WAITING_STATES:
                sys.stderr.write(f"\r{_SPINNER[frame % len(_SPINNER)]} {state.value}...\033[K")
                sys.stderr.flush()
                self._shown = True
                frame += 1
            await asyncio.sleep(0.1)


class _Watch:
    """Prints a client's events and remembers how its session ended."""

    def __init__(self, client: PipecatClient, out: _Output) -> None:
        self.out = out
        self.ended = asyncio.Event()
        self.fatal: RTVIError | None = None
        self.bot_left = False
        handlers: Mapping[str, Callable[..., Any]] = {
            "on_transition": out.transition,
            "on_bot_ready": self._bot_ready,
            "on_server_message": self._server_message,
            "on_unhandled_message": self._unhandled,
            "on_message_error": self._message_error,
            "on_error": self._error,
            "on_bot_disconnected": self._bot_disconnected,
            "on_disconnected": self._disconnected,
        }
        for name, callback in handlers.items():
            client.add_event_handler(name, callback)  # type: ignore[call-overload]

    def _bot_ready(self, data: BotReadyData) -> None:
        about = data.about
        who = " ".join(str(about[k]) for k in ("library", "library_version") if k in about)
        caps = f", capabilities {_compact(data.capabilities)}" if data.capabilities else ""
        self.out.emit(
            "bot-ready",
            f"bot-ready: RTVI {data.version or '?'}" + (f", {who}" if who else "") + caps,
            data=dict(data.raw),
        )

    def _server_message(self, data: Any) -> None:
        self.out.emit("server-message", f"server-message {_compact(data)}", data=data)

    def _unhandled(self, message: Mapping[str, Any]) -> None:
        msg_type = message.get("type")
        self.out.emit(
            "message",
            f"{msg_type} {_compact(message.get('data'))}",
            type=msg_type,
            message=message,
        )

    def _message_error(self, message: Mapping[str, Any]) -> None:
        self.out.emit(
            "error-response", f"error-response {_compact(message.get('data'))}", message=message
        )

    def _error(self, error: RTVIError) -> None:
        if error.fatal:
            self.fatal = error
        kind = "fatal error" if error.fatal else "error"
        self.out.emit("error", f"{kind}: {error.message}", message=error.message, fatal=error.fatal)

    def _bot_disconnected(self) -> None:
        self.bot_left = True
        self.out.emit("bot-disconnected", "the bot ended the session")

    def _disconnected(self) -> None:
        self.ended.set()

    def exit_code(self) -> int:
        """0 for a clean end, 4 when a fatal error ended the session."""
        return EXIT_FATAL if self.fatal is not None else EXIT_OK


def _compact(value: Any) -> str:
    text = json.dumps(value, ensure_ascii=False, separators=(",", ":"), default=str)
    return text if len(text) <= 500 else text[:499] + "…"


def _startup_failed(out: _Output, exc: BaseException) -> int:
    kind = type(exc).__name__
    status = getattr(exc, "status", None)
    fields: dict[str, Any] = {"error": kind, "message": str(exc)}
    if isinstance(exc, StartBotError):
        fields["status"] = status
    out.emit("startup-error", f"startup failed: {kind}: {exc}", **fields)
    return EXIT_STARTUP


# ------------------------------------------------------------------------- sessions


class _StdinLines:
    """Lines of stdin delivered to the event loop by a daemon thread (``None`` at EOF).

    The thread reads the file descriptor directly (no buffered object, whose lock could
    block interpreter shutdown) and works for terminals, pipes and regular files alike.
    """

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self._loop = loop
        self._queue: asyncio.Queue[str | None] = asyncio.Queue()
        thread = threading.Thread(target=self._read, name="pipecat-lifecycle-stdin", daemon=True)
        thread.start()

    async def get(self) -> str | None:
        """The next line without its newline, or ``None`` at end of input."""
        return await self._queue.get()

    def _put(self, line: str | None) -> None:
        with contextlib.suppress(RuntimeError):  # the loop already closed
            self._loop.call_soon_threadsafe(self._queue.put_nowait, line)

    def _read(self) -> None:
        buffer = b""
        try:
            fd = sys.stdin.fileno()
        except (AttributeError, OSError, ValueError):
            self._put(None)
            return
        while True:
            try:
                chunk = os.read(fd, _READ_CHUNK)
            except OSError:
                chunk = b""
            if not chunk:
                if buffer:
                    self._put(buffer.decode("utf-8", "replace"))
                self._put(None)
                return
            buffer += chunk
            *lines, buffer = buffer.split(b"\n")
            for raw in lines:
                self._put(raw.decode("utf-8", "replace").rstrip("\r"))


async def _first(awaitable: Awaitable[Any], event: asyncio.Event) -> tuple[bool, Any]:
    """Await ``awaitable`` unless ``event`` is set first.

    Returns ``(True, result)``, or ``(False, None)`` when the event won.
    """
    task = asyncio.ensure_future(awaitable)
    waiter = asyncio.ensure_future(event.wait())
    try:
        await asyncio.wait({task, waiter}, return_when=asyncio.FIRST_COMPLETED)
    finally:
        waiter.cancel()
    if task.done():
        return True, task.result()
    task.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await task
    return False, None


async def _interact(client: PipecatClient, watch: _Watch, out: _Output) -> None:
    """Read stdin lines and act on them until the session ends or the user leaves."""
    lines = _StdinLines(asyncio.get_running_loop())
    out.say("ready: type text to send, /msg TYPE JSON for a request, /quit to leave")
    while not watch.ended.is_set():
        got, line = await _first(lines.get(), watch.ended)
        if not got:
            return
        if line is None:
            out.emit("input-closed", "end of input: disconnecting")
            await client.disconnect()
            return
        line = line.strip()
        if not line:
            continue
        if line == "/quit":
            out.emit("quit", "disconnecting")
            await client.disconnect()
            return
        if line == "/msg" or line.startswith("/msg "):
            await _request(client, out, line)
        else:
            try:
                await client.send_text(line)
            except PipecatClientError as exc:
                out.emit(
                    "send-failed", f"not sent: {exc}", error=type(exc).__name__, message=str(exc)
                )
            else:
                out.emit("sent-text", f"sent text: {line}", content=line)
        if client.state is not State.READY:
            # The session is ending (the bot left, a fatal error): let its events print first.
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(watch.ended.wait(), _END_WAIT)
            return


async def _request(client: PipecatClient, out: _Output, line: str) -> None:
    """Handle ``/msg TYPE [JSON]``: send the request and print its response."""
    parts = line.split(None, 2)
    if len(parts) < 2:
        out.emit("usage", "usage: /msg TYPE [JSON]", message="usage: /msg TYPE [JSON]")
        return
    msg_type = parts[1]
    data: Any = None
    if len(parts) == 3:
        try:
            data = json.loads(parts[2])
        except ValueError as exc:
            out.emit("usage", f"invalid JSON: {exc}", message=f"invalid JSON: {exc}")
            return
    started = time.monotonic()
    try:
        result = await client.send_client_request(msg_type, data)
    except MessageError as exc:
        out.emit(
            "error-response",
            f"{msg_type}: error-response {exc} ({_elapsed(started)} ms)",
            type=msg_type,
            error=str(exc),
            data=exc.data,
            rtt_ms=_elapsed(started),
        )
    except RequestTimeoutError as exc:
        out.emit("request-timeout", f"{msg_type}: {exc}", type=msg_type, message=str(exc))
    except PipecatClientError as exc:
        out.emit(
            "request-failed",
            f"{msg_type}: {type(exc).__name__}: {exc}",
            type=msg_type,
            error=type(exc).__name__,
            message=str(exc),
        )
    else:
        out.emit(
            "response",
            f"{msg_type} -> {_compact(result)} ({_elapsed(started)} ms)",
            type=msg_type,
            data=result,
            rtt_ms=_elapsed(started),
        )


def _elapsed(started: float) -> float:
    return round((time.monotonic() - started) * 1000.0, 2)


class _Interrupt:
    """Ctrl-C (SIGINT) -> ``client.disconnect()`` once; a second Ctrl-C interrupts hard."""

    def __init__(self, client: PipecatClient, out: _Output) -> None:
        self.client = client
        self.out = out
        self.hit = False
        self._task: asyncio.Task[None] | None = None
        self._loop = asyncio.get_running_loop()
        self.installed = False
        with contextlib.suppress(NotImplementedError, RuntimeError, ValueError):
            self._loop.add_signal_handler(signal.SIGINT, self._on_sigint)
            self.installed = True

    def _on_sigint(self) -> None:
        self.hit = True
        self.remove()  # the next Ctrl-C raises KeyboardInterrupt as usual
        self.out.emit("interrupted", "Ctrl-C: disconnecting")
        self._task = self._loop.create_task(self.client.disconnect())

    def remove(self) -> None:
        """Restore the default SIGINT behaviour."""
        if self.installed:
            self._loop.remove_signal_handler(signal.SIGINT)
            self.installed = False


def _make_transport(kind: str, url: str | None, headers: Mapping[str, str]) -> Transport:
    """Build a transport, importing only the one asked for."""
    if kind == "webrtc":
        try:
            from transports.small_webrtc import SmallWebRTCTransport
        except ImportError as exc:
            raise TransportError(
                f'WebRTC needs aiortc: pip install "pipecat-lifecycle[webrtc]" ({exc})'
            ) from exc
        return SmallWebRTCTransport(url)
    from transports.websocket import WebSocketTransport

    return WebSocketTransport(url, headers=headers or None)


async def _connect(args: argparse.Namespace, headers: dict[str, str], data: Any) -> int:
    t0 = time.monotonic()
    out = _Output(json_mode=args.json, t0=t0)
    from lifecycle.client import PipecatClient
    from lifecycle.start import APIRequest

    try:
        # Direct URL: the transport gets it through connect params; --start: from the response.
        transport = _make_transport(args.transport, None, {} if args.start else headers)
    except TransportError as exc:
        return _startup_failed(out, exc)
    client = PipecatClient(
        transport, connect_timeout=args.timeout, request_timeout=args.request_timeout
    )
    watch = _Watch(client, out)
    interrupt = _Interrupt(client, out)
    progress = _Progress(client) if _Progress.wanted() else None
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
            await client.disconnect()
            out.emit("exit", "interrupted before the bot was ready", code=EXIT_OK)
            return EXIT_OK
        except (StartBotError, TransportError, ConnectionTimeoutError, PipecatClientError) as exc:
            await client.disconnect()
            code = _startup_failed(out, exc)
            if out.json_mode:
                out.emit("exit", f"exit {code}", code=code)
            return code
        finally:
            if progress is not None:
                await progress.stop()
        if not interrupt.hit:
            await _interact(client, watch, out)
        await client.disconnect()
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


# ----------------------------------------------------------------------------- demo


async def _demo(args: argparse.Namespace) -> int:
    out = _Output(json_mode=False, t0=time.monotonic())
    if args.transport == "webrtc":
        if importlib.util.find_spec("aiortc") is None:
            out.say(
                'The WebRTC demo needs aiortc: pip install "pipecat-lifecycle[webrtc]".\n'
                "Against a Pipecat bot with the SmallWebRTC transport (e.g. port 7860), run:\n\n"
                "  pipecat-lifecycle connect --start --transport webrtc "
                "http://localhost:7860/api/start\n"
            )
            return EXIT_USAGE
        return await _demo_webrtc(args, out)
    if args.transport == "loopback":
        return await _demo_loopback(args, out)
    return await _demo_ws(args, out)


async def _demo_ws(args: argparse.Namespace, out: _Output) -> int:
    from lifecycle.client import PipecatClient
    from transports.testing import TestingBotServer
    from transports.websocket import WebSocketTransport

    out.say("pipecat-lifecycle demo: a local RTVI bot over WebSocket + protobuf")
    async with TestingBotServer() as server:
        out.say(f"testing bot listening; start endpoint {server.start_url}\n")
        client = PipecatClient(WebSocketTransport(), connect_timeout=args.timeout)
        return await _demo_session(
            client, out, lambda: client.start_bot_and_connect(server.start_url)
        )


async def _demo_loopback(args: argparse.Namespace, out: _Output) -> int:
    from lifecycle.client import PipecatClient
    from transports.loopback import LoopbackBot, LoopbackTransport

    out.say("pipecat-lifecycle demo: an in-process loopback bot (no network)\n")

    def echo(data: Any) -> Any:
        return data

    bot = LoopbackBot(handlers={"echo": echo})
    client = PipecatClient(LoopbackTransport(bot), connect_timeout=args.timeout)
    return await _demo_session(client, out, client.connect)


async def _demo_webrtc(args: argparse.Namespace, out: _Output) -> int:
    from lifecycle.client import PipecatClient
    from transports.small_webrtc import SmallWebRTCTransport
    from transports.testing_webrtc import TestingWebRTCBotServer

    out.say("pipecat-lifecycle demo: a local RTVI bot over SmallWebRTC (aiortc)")
    async with TestingWebRTCBotServer() as server:
        out.say(f"testing bot listening; start endpoint {server.start_url}\n")
        client = PipecatClient(SmallWebRTCTransport(ice_servers=[]), connect_timeout=args.timeout)
        return await _demo_session(
            client, out, lambda: client.start_bot_and_connect(server.start_url)
        )


async def _demo_session(
    client: PipecatClient, out: _Output, start: Callable[[], Awaitable[BotReadyData]]
) -> int:
    """Start, show bot-ready, one echo round trip, disconnect, then diagram and trace."""
    watch = _Watch(client, out)
    interrupt = _Interrupt(client, out)
    try:
        try:
            await start()
        except SessionCancelledError:
            return EXIT_OK
        except PipecatClientError as exc:
            await client.disconnect()
            return _startup_failed(out, exc)
        if not watch.ended.is_set():
            started = time.monotonic()
            try:
                answer = await client.send_client_request("echo", {"hello": "pipecat"})
            except PipecatClientError as exc:
                out.emit("request-failed", f"echo failed: {type(exc).__name__}: {exc}")
            else:
                out.emit(
                    "response",
                    f"echo round trip: {_compact(answer)} in {_elapsed(started)} ms",
                )
        await client.disconnect()
    finally:
        interrupt.remove()
        await client.disconnect()
    code = watch.exit_code()
    where = (
        f"{_REPO_DIAGRAM} (Mermaid; .dot and .svg beside it)"
        if _REPO_DIAGRAM.exists()
        else "diagrams/lifecycle.mmd in the repository"
    )
    out.say(
        "\nThe state diagram of this lifecycle: "
        + where
        + "\n  or print it: pipecat-lifecycle diagram --format mermaid|dot|svg [--highlight ready]"
    )
    out.say("\nSession trace (client.trace.to_jsonl()):")
    out.say(client.trace.to_jsonl().rstrip("\n"))
    return code
