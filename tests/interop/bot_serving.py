"""Serving an interop bot app on 127.0.0.1: loopback-only ICE, bind, announce, run uvicorn.

Every bot script in tests/interop serves its FastAPI app through :func:`main`, which parses
``--port``/``--log-level`` (and ``--llm-url`` for the bots whose LLM is an OpenAI stand-in) and
serves ``create_app(port_ref[, llm_url])``; once listening it prints exactly one line
``BOT-SERVER-READY http://127.0.0.1:N`` to stdout. ``kill -USR1 <pid>`` dumps asyncio task
stacks to stderr. The SmallWebRTC helpers below are the routes' shared parts.
"""

from __future__ import annotations

import argparse
import asyncio
import signal
import socket
import sys
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from typing import Any

# Loopback-only ICE. This must happen before aiortc creates any connection: aioice skips
# 127.0.0.1 when it gathers host candidates, and this machine has nothing but loopback.
import aioice.ice
from aiortc import RTCIceGatherer, RTCIceServer


def _loopback_host_addresses(use_ipv4: bool, use_ipv6: bool) -> list[str]:
    return ["127.0.0.1"] if use_ipv4 else []


def _no_default_ice_servers(cls: type[RTCIceGatherer]) -> list[RTCIceServer]:
    return []


aioice.ice.get_host_addresses = _loopback_host_addresses
RTCIceGatherer.getDefaultIceServers = classmethod(_no_default_ice_servers)  # type: ignore[assignment,method-assign]

import uvicorn  # noqa: E402
from fastapi import FastAPI  # noqa: E402
from loguru import logger  # noqa: E402
from pipecat.pipeline.worker import PipelineWorker  # noqa: E402
from pipecat.transports.base_transport import BaseTransport  # noqa: E402
from pipecat.transports.smallwebrtc.request_handler import (  # noqa: E402
    IceCandidate,
    SmallWebRTCPatchRequest,
    SmallWebRTCRequest,
    SmallWebRTCRequestHandler,
)
from pipecat.workers.runner import WorkerRunner  # noqa: E402

HOST = "127.0.0.1"
AppFactory = Callable[[list[int]], FastAPI]
"""``create_app(port_ref)``: the app; ``port_ref[0]`` is the listening port (known after bind)."""


def _dump_tasks() -> None:
    for task in asyncio.all_tasks():
        sys.stderr.write(f"--- {task.get_name()} {task.get_coro()!r}\n")
        task.print_stack(limit=8, file=sys.stderr)
    sys.stderr.flush()


async def serve(create_app: AppFactory, port: int) -> None:
    """Bind ``port`` (0: any free), then serve the app until the process ends."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    # Accepted sockets inherit this: small writes go out at once (no Nagle delay).
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    sock.bind((HOST, port))
    sock.listen(128)
    port_ref = [sock.getsockname()[1]]
    config = uvicorn.Config(create_app(port_ref), log_level="warning", lifespan="on")
    server = uvicorn.Server(config)

    async def announce() -> None:
        while not server.started:  # noqa: ASYNC110 - uvicorn exposes only a flag
            await asyncio.sleep(0.01)
        sys.stdout.write(f"BOT-SERVER-READY http://{HOST}:{port_ref[0]}\n")
        sys.stdout.flush()

    announcer = asyncio.create_task(announce())
    # Debug aid: `kill -USR1 <pid>` prints every asyncio task's stack to stderr.
    asyncio.get_running_loop().add_signal_handler(signal.SIGUSR1, _dump_tasks)
    try:
        await server.serve(sockets=[sock])
    finally:
        announcer.cancel()


def main(
    create_app: Callable[..., FastAPI],
    description: str,
    *,
    llm_url: bool = True,
    log_level: str = "INFO",
) -> None:
    """The bot script's command line: ``--port``, ``--log-level`` and (``llm_url``) ``--llm-url``.

    With ``llm_url`` the app is ``create_app(port_ref, llm_url)``, else ``create_app(port_ref)``.
    """
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("--port", type=int, default=0, help="port on 127.0.0.1 (0: any free)")
    if llm_url:
        parser.add_argument("--llm-url", required=True, help="the bot LLM's OpenAI base URL")
    parser.add_argument("--log-level", default=log_level, help="loguru level for stderr")
    args = parser.parse_args()
    logger.remove()
    logger.add(sys.stderr, level=args.log_level)
    url = args.llm_url if llm_url else None

    def app(port_ref: list[int]) -> FastAPI:
        return create_app(port_ref, url) if llm_url else create_app(port_ref)

    asyncio.run(serve(app, args.port))


def offer_request(data: dict[str, Any]) -> SmallWebRTCRequest:
    """A SmallWebRTC offer as the client POSTs it (both spellings of the request data)."""
    return SmallWebRTCRequest(
        sdp=data["sdp"],
        type=data["type"],
        pc_id=data.get("pc_id"),
        restart_pc=data.get("restart_pc"),
        request_data=data.get("requestData") or data.get("request_data"),
    )


def patch_request(data: dict[str, Any]) -> SmallWebRTCPatchRequest:
    """The client's ICE trickle (PATCH of the offer URL)."""
    return SmallWebRTCPatchRequest(
        pc_id=data["pc_id"], candidates=[IceCandidate(**c) for c in data.get("candidates", [])]
    )


def app_with_webrtc() -> tuple[FastAPI, SmallWebRTCRequestHandler]:
    """A FastAPI app and the SmallWebRTC handler it closes when it stops."""
    webrtc = SmallWebRTCRequestHandler(ice_servers=[])

    @asynccontextmanager
    async def lifespan(_app: FastAPI) -> AsyncIterator[None]:
        yield
        await webrtc.close()  # type: ignore[no-untyped-call]

    return FastAPI(lifespan=lifespan), webrtc


async def run_worker(transport: BaseTransport, worker: PipelineWorker, label: str) -> None:
    """Run one session's worker until it ends or the client leaves."""

    @transport.event_handler("on_client_disconnected")  # type: ignore[untyped-decorator]
    async def on_client_disconnected(_transport: BaseTransport, _client: Any) -> None:
        logger.info(f"{label}: client disconnected")
        await worker.cancel(reason="client disconnected")

    runner = WorkerRunner(handle_sigint=False, handle_sigterm=False)
    await runner.add_workers(worker)
    await runner.run()
    logger.info(f"{label}: pipeline finished")
