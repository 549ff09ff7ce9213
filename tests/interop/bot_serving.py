"""Serving a bot app on 127.0.0.1 for the interop tests: bind, announce, run uvicorn.

The bots whose LLM is an OpenAI stand-in (``--llm-url``) share it: :func:`main` parses
``--port``/``--llm-url``/``--log-level`` and serves ``create_app(port_ref, llm_url)``; once
listening it prints exactly one line ``BOT-SERVER-READY http://127.0.0.1:N`` to stdout.
"""

from __future__ import annotations

import argparse
import asyncio
import socket
import sys
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from typing import Any

import uvicorn
from fastapi import FastAPI
from loguru import logger
from pipecat.pipeline.worker import PipelineWorker
from pipecat.transports.base_transport import BaseTransport
from pipecat.transports.smallwebrtc.request_handler import (
    IceCandidate,
    SmallWebRTCPatchRequest,
    SmallWebRTCRequest,
    SmallWebRTCRequestHandler,
)
from pipecat.workers.runner import WorkerRunner

HOST = "127.0.0.1"
AppFactory = Callable[[list[int], str], FastAPI]


async def serve(create_app: AppFactory, port: int, llm_url: str) -> None:
    """Bind ``port`` (0: any free), then serve the app until the process ends."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind((HOST, port))
    sock.listen(128)
    port_ref = [sock.getsockname()[1]]
    server = uvicorn.Server(uvicorn.Config(create_app(port_ref, llm_url), log_level="warning"))

    async def announce() -> None:
        while not server.started:  # noqa: ASYNC110 - uvicorn exposes only a flag
            await asyncio.sleep(0.01)
        sys.stdout.write(f"BOT-SERVER-READY http://{HOST}:{port_ref[0]}\n")
        sys.stdout.flush()

    announcer = asyncio.create_task(announce())
    try:
        await server.serve(sockets=[sock])
    finally:
        announcer.cancel()


def main(create_app: AppFactory, description: str) -> None:
    """The bot script's command line: ``--port``, ``--llm-url``, ``--log-level``."""
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("--port", type=int, default=0, help="port on 127.0.0.1 (0: any free)")
    parser.add_argument("--llm-url", required=True, help="the bot LLM's OpenAI base URL")
    parser.add_argument("--log-level", default="INFO", help="loguru level for stderr")
    args = parser.parse_args()
    logger.remove()
    logger.add(sys.stderr, level=args.log_level)
    asyncio.run(serve(create_app, args.port, args.llm_url))


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
        await worker.cancel(reason="client disconnected")

    runner = WorkerRunner(handle_sigint=False, handle_sigterm=False)
    await runner.add_workers(worker)
    await runner.run()
    logger.info(f"{label}: pipeline finished")
