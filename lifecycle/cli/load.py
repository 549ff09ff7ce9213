"""``pipecat-lifecycle load``: many sessions against one deployment, measured per phase."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import sys
import time
from functools import partial
from typing import TYPE_CHECKING, Any, Final

from lifecycle.cli.exits import EXIT_FAILURE, EXIT_INTERRUPTED, EXIT_OK, EXIT_USAGE
from lifecycle.cli.logging_setup import configure_logging
from lifecycle.cli.options import (
    DeprecatedAlias,
    add_start_options,
    add_verbose,
    parse_json,
    positive_float,
    positive_int,
    start_settings,
)
from lifecycle.cli.signals import FirstSigint
from lifecycle.cli.simulate import add_model_options, simulation_hook
from lifecycle.contrib.transport_factory import make_transport
from lifecycle.extras import require
from lifecycle.logs import describe_exception

if TYPE_CHECKING:
    from lifecycle.load import LoadPlan, LoadRun, SessionHook
    from lifecycle.media import AudioFrame
    from lifecycle.start import StartSettings

LOAD_EPILOG: Final = """\
phases: start (POST to the start endpoint), connect (connect until bot-ready), request
(--request round trip), speak (sending --audio or --say --speak in real time), first_output
(first bot output after bot-ready, --say or the speech), disconnect; hold (session lost while
held) and scenario appear when they fail or are used. With speech, the table adds the send
pacing lag of every audio frame, and the line under it the client's CPU seconds.

examples:
  pipecat-lifecycle load --start http://localhost:7860/start --sessions 200 --concurrency 50
  pipecat-lifecycle load --start http://bot/start --sessions 1000 --concurrency 100 \\
      --rate 20 --hold 30 --json
  pipecat-lifecycle load --start http://localhost:7860/start -n 100 -c 100 --audio hello.wav
  pipecat-lifecycle load --start http://localhost:7860/start -n 50 -c 50 --say "Hi" --speak

exit codes:
  0    every session ran
  1    a session failed (see errors by phase)
  2    usage error, a bad --scenario file, or a missing extra (the pip install line is shown)
  130  stopped by Ctrl-C before every session ran (and none failed)
"""


def add_command(commands: Any) -> None:
    """Register ``load`` on the subcommand group."""
    load = commands.add_parser(
        "load",
        help="run many sessions and measure each phase",
        description=(
            "Run N sessions against a start endpoint, at most C at once and R started per "
            "second; print per phase the count, errors by class and p50/p90/p99/max latency."
        ),
        epilog=LOAD_EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    add_start_options(load, start_required=True, aliases=("-t", "--timeout"))
    load.add_argument("--sessions", "-n", type=positive_int, default=1, metavar="N")
    load.add_argument(
        "--concurrency", "-c", type=positive_int, default=1, metavar="C", help="default: 1"
    )
    load.add_argument(
        "--rate", type=_rate, metavar="R/s", help="start at most R sessions per second"
    )
    load.add_argument(
        "--hold", type=_seconds, default=0.0, metavar="S", help="seconds to stay READY (0)"
    )
    load.add_argument("--request", metavar="TYPE", help="one client-message request per session")
    load.add_argument("--request-data", metavar="JSON", help="data of the --request message")
    load.add_argument("--data", action=DeprecatedAlias, new="--request-data", dest="request_data")
    load.add_argument("--say", metavar="TEXT", help="send TEXT and time the first bot output")
    load.add_argument(
        "--speak",
        action="store_true",
        help="speak --say TEXT with the local voice (extra 'voice'), paced in real time",
    )
    load.add_argument(
        "--audio",
        metavar="FILE.wav",
        help="each session speaks FILE in real time (extra 'testing')",
    )
    load.add_argument(
        "--scenario",
        metavar="FILE",
        help="run a scenario file in each session (a simulation file: one simulated call each)",
    )
    load.add_argument(
        "--request-timeout", type=positive_float, default=10.0, metavar="S", help="default: 10"
    )
    load.add_argument("--json", action="store_true", help="print the summary as one JSON object")
    add_model_options(load, judge=True)
    add_verbose(load)
    load.set_defaults(run=run)


def _rate(text: str) -> float:
    return positive_float(text.removesuffix("/s"))


def _seconds(text: str) -> float:
    if text.strip() in ("0", "0.0"):
        return 0.0
    return positive_float(text)


def run(parser: argparse.ArgumentParser, args: argparse.Namespace) -> int:
    """Check the options, run the load, print the summary; returns the exit code."""
    from lifecycle.load import LoadPlan

    settings = start_settings(parser, args)
    if args.request_data is not None and args.request is None:
        parser.error("--request-data goes with --request TYPE")
    request_data = parse_json(parser, "--request-data", args.request_data)
    if args.speak and args.say is None:
        parser.error("--speak goes with --say TEXT")
    if args.audio is not None and args.say is not None:
        parser.error("--audio and --say are each a session's turn: give one of them")
    require("load", "load", "hdrh")
    speech = _speech(args)
    if isinstance(speech, int):
        return speech
    scenario: SessionHook | None = None
    if args.scenario is not None:
        hook = _scenario_hook(args.scenario, args)
        if isinstance(hook, int):
            return hook
        scenario = hook
    plan = LoadPlan(
        start=settings.api_request(),
        sessions=args.sessions,
        concurrency=args.concurrency,
        rate=args.rate,
        hold=args.hold,
        request=args.request,
        request_data=request_data,
        say=None if args.speak else args.say,
        speech=speech,
        connect_timeout=settings.connect_timeout,
        request_timeout=args.request_timeout,
    )
    configure_logging(args.verbose)
    return asyncio.run(_load(args, settings, plan, scenario))


def _speech(args: argparse.Namespace) -> tuple[AudioFrame, ...] | int:
    """The audio every session speaks (``--audio``, ``--say --speak``), prepared once.

    Read (or synthesized) once for the whole run and converted to what the transport sends:
    16 kHz mono over WebSocket, 48 kHz mono over SmallWebRTC. A file that cannot be read,
    is empty, or is too long (``lifecycle.testing.audio.read_file``) exits 2.
    """
    if args.audio is None and not args.speak:
        return ()
    what = "load --audio" if args.audio is not None else "load --speak"
    require(what, "testing", "numpy", "soundfile", "soxr")
    from lifecycle.testing import audio
    from transports.webrtc_media import OUT_RATE

    rate = OUT_RATE if args.transport == "webrtc" else audio.WEBSOCKET_RATE
    try:
        if args.audio is not None:
            frames = audio.prepare(args.audio, rate)
        else:
            require(what, "voice", "espeakng_loader")
            from lifecycle.testing import local_voice

            frames = audio.prepare(local_voice()(args.say), rate)
    except ValueError as exc:  # read_file and the voice name the problem (and the file)
        print(f"pipecat-lifecycle: {what}: {describe_exception(exc)}", file=sys.stderr)
        return EXIT_USAGE
    if not frames:
        print(f"pipecat-lifecycle: {what}: no audio to speak", file=sys.stderr)
        return EXIT_USAGE
    return tuple(frames)


def _scenario_hook(path: str, args: argparse.Namespace) -> SessionHook | int:
    """The per-session hook the testing toolkit builds from a scenario file.

    The extension point: ``lifecycle.testing.scenario.load_session_hook(path)`` returns a
    :data:`~lifecycle.load.SessionHook` (``async def hook(session: SessionContext)``, run once
    per READY session, timing its steps with ``session.phase(name)``), and raises
    ``ValueError`` (or ``OSError``) for a file it cannot use: exit 2 with its message.
    """
    require("load --scenario", "testing", "yaml", "numpy", "soundfile", "soxr")
    from lifecycle.testing.scenario import load_session_hook

    try:
        # A file of simulations: one simulated call per session (lifecycle.cli.simulate).
        hook: SessionHook | None = simulation_hook(path, args)
        if hook is None:
            hook = load_session_hook(path)
    except (OSError, ValueError) as exc:
        print(f"pipecat-lifecycle: {exc}", file=sys.stderr)
        return EXIT_USAGE
    return hook


async def _load(
    args: argparse.Namespace, settings: StartSettings, plan: LoadPlan, scenario: SessionHook | None
) -> int:
    from lifecycle.cli.load_view import LiveProgress, print_table
    from lifecycle.load import LoadRun

    factory = partial(make_transport, settings)
    load = LoadRun(plan, factory, scenario=scenario)
    loop = asyncio.get_running_loop()
    interrupted = FirstSigint(loop, partial(_stop, load))
    began = time.monotonic()
    try:
        progress = LiveProgress(load.stats) if not args.json and LiveProgress.wanted() else None
        with progress if progress is not None else contextlib.nullcontext():
            stats = await load.run()
    finally:
        interrupted.remove()
    duration = time.monotonic() - began
    if args.json:
        summary = {
            **stats.summary(),
            "stopped": load.stopped,
            "duration_s": round(duration, 3),
            "transport": args.transport,
            "concurrency": plan.concurrency,
        }
        pass_rate = getattr(scenario, "pass_rate", None)  # a simulation file's
        if pass_rate is not None:
            summary["pass_rate"] = round(pass_rate, 4)
        print(json.dumps(summary, ensure_ascii=False))
    else:
        stopped = "  (stopped by Ctrl-C)" if load.stopped else ""
        title = (
            f"load: {stats.started} sessions over {args.transport}, concurrency "
            f"{plan.concurrency}, {duration:.1f} s{stopped}"
        )
        print_table(stats, title)
        pass_rate = getattr(scenario, "pass_rate", None)
        if pass_rate is not None:
            print(f"simulated calls: pass rate {pass_rate:.1%}")
    if stats.failed:
        return EXIT_FAILURE
    return EXIT_INTERRUPTED if load.stopped else EXIT_OK


def _stop(load: LoadRun) -> None:
    print("Ctrl-C: starting no more sessions, ending the running ones", file=sys.stderr)
    load.stop()
