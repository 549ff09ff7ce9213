"""A real Pipecat (1.14) bot for Pipecat's own eval files, its LLM a local OpenAI stand-in.

Run with the interop venv's python (pipecat-ai is never a dependency of the project itself)::

    .venv-interop/bin/python tests/interop/eval_bot.py --port 0 --llm-url http://127.0.0.1:N/v1

Once listening it prints ``BOT-SERVER-READY http://127.0.0.1:N``. The pipeline is a text bot's,
from Pipecat's own classes::

    [RTVIProcessor] -> transport.input() -> DTMFAggregator -> user aggregator
      -> OpenAILLMService (base_url: the stand-in) -> transport.output() -> assistant aggregator

with ``RTVIObserver`` reporting function calls FULL (names and arguments). The bot greets
once the client is ready (an LLM run on its system prompt), answers every tool call the
LLM makes with a catch-all handler (``{"ok": true, "function": name}``), and acts on
pipecat.evals' ``eval-context`` client message as its eval transport does (the messages
replace the context, no LLM run) and answers it with a ``server-response``. What it says and
which tools it calls is the stand-in's choice (tests/interop/test_evals_interop.py).

The turn-completion bot (``/tc/...`` routes) is Pipecat's ``evals/turn-completion/bot.py``
on this pipeline: ``FilterIncompleteUserTurnStrategies`` (the LLM starts each reply with a
turn-completion marker), ``bot_llm_marker_enabled`` (the markers reach the client as
``bot-llm-marker``), the two tools its files expect, and no greeting.

Routes: ``POST /start`` -> ``{"wsUrl", "sessionId"}``; ``WS /ws``; ``POST|PATCH
/sessions/{id}/api/offer`` (SmallWebRTC: the client posts its offer there with the sessionId);
``POST /tc/start`` and ``WS /tc/ws`` for the turn-completion bot (its session ids start
with ``tc-``).
"""

from __future__ import annotations

import asyncio
import uuid
from typing import Any

from bot_serving import HOST, app_with_webrtc, offer_request, patch_request, run_worker
from fastapi import FastAPI, Request, WebSocket
from loguru import logger
from pipecat.adapters.llm.schemas.function_schema import FunctionSchema
from pipecat.adapters.llm.schemas.tools_schema import ToolsSchema
from pipecat.frames.frames import LLMMessagesUpdateFrame, LLMRunFrame
from pipecat.pipeline.pipeline import Pipeline
from pipecat.pipeline.worker import PipelineParams, PipelineWorker
from pipecat.processors.aggregators.dtmf_aggregator import DTMFAggregator
from pipecat.processors.aggregators.llm_context import LLMContext
from pipecat.processors.aggregators.llm_response_universal import (
    LLMContextAggregatorPair,
    LLMUserAggregatorParams,
)
from pipecat.processors.frameworks.rtvi import RTVIObserverParams
from pipecat.processors.frameworks.rtvi.observer import RTVIFunctionCallReportLevel
from pipecat.serializers.protobuf import ProtobufFrameSerializer
from pipecat.services.llm_service import FunctionCallParams
from pipecat.services.openai.llm import OpenAILLMService
from pipecat.transports.base_transport import BaseTransport, TransportParams
from pipecat.transports.smallwebrtc.connection import SmallWebRTCConnection
from pipecat.transports.smallwebrtc.transport import SmallWebRTCTransport
from pipecat.transports.websocket.fastapi import (
    FastAPIWebsocketParams,
    FastAPIWebsocketTransport,
)
from pipecat.turns.user_turn_strategies import FilterIncompleteUserTurnStrategies

SYSTEM_PROMPT = "You are a helpful voice assistant. Greet the user and offer to help."
_BOT_TASKS: set[asyncio.Task[None]] = set()


async def answer_any_call(params: FunctionCallParams) -> None:
    """Every tool the LLM calls succeeds at once."""
    logger.info(f"function call {params.function_name}({params.arguments})")
    await params.result_callback({"ok": True, "function": params.function_name})


def _tools() -> ToolsSchema:
    """The two tools Pipecat's turn-completion files expect."""
    weather = FunctionSchema(
        name="get_current_weather",
        description="Get the current weather for a location.",
        properties={"location": {"type": "string"}},
        required=["location"],
    )
    booking = FunctionSchema(
        name="book_appointment",
        description="Book an appointment on a given day and time.",
        properties={"day": {"type": "string"}, "time": {"type": "string"}},
        required=["day", "time"],
    )
    return ToolsSchema(standard_tools=[weather, booking])


def build_worker(
    transport: BaseTransport, llm_url: str, *, turn_completion: bool = False
) -> PipelineWorker:
    """The bot's pipeline in a worker with RTVI (function calls reported FULL)."""
    if turn_completion:
        context = LLMContext(tools=_tools())
        user_params = LLMUserAggregatorParams(
            user_turn_strategies=FilterIncompleteUserTurnStrategies()
        )
        aggregators = LLMContextAggregatorPair(context, user_params=user_params)
    else:
        context = LLMContext(messages=[{"role": "system", "content": SYSTEM_PROMPT}])
        aggregators = LLMContextAggregatorPair(context)
    llm = OpenAILLMService(
        api_key="stand-in",
        base_url=llm_url,
        settings=OpenAILLMService.Settings(model="stand-in"),
    )
    llm.register_function(None, answer_any_call)
    pipeline = Pipeline(
        [
            transport.input(),
            DTMFAggregator(timeout=0.5),
            aggregators.user(),
            llm,
            transport.output(),
            aggregators.assistant(),
        ]
    )
    worker = PipelineWorker(
        pipeline,
        params=PipelineParams(enable_metrics=True),
        rtvi_observer_params=RTVIObserverParams(
            function_call_report_level={"*": RTVIFunctionCallReportLevel.FULL},
            bot_llm_marker_enabled=turn_completion,
        ),
        idle_timeout_secs=None,
    )

    if not turn_completion:

        @worker.rtvi.event_handler("on_client_ready")  # type: ignore[untyped-decorator]
        async def greet(_rtvi: Any) -> None:
            await worker.queue_frames([LLMRunFrame()])

    @worker.rtvi.event_handler("on_client_message")  # type: ignore[untyped-decorator]
    async def on_client_message(rtvi: Any, message: Any) -> None:
        if message.type != "eval-context":
            await rtvi.send_error_response(message, f"unknown message {message.type!r}")
            return
        messages = list((message.data or {}).get("messages") or [])
        await worker.queue_frames([LLMMessagesUpdateFrame(messages=messages, run_llm=False)])
        await rtvi.send_server_response(message, {"messages": len(messages)})

    return worker


async def run_bot(
    transport: BaseTransport, llm_url: str, label: str, *, turn_completion: bool = False
) -> None:
    """Run one session's pipeline until the client leaves."""
    worker = build_worker(transport, llm_url, turn_completion=turn_completion)
    await run_worker(transport, worker, label)


def _params() -> dict[str, Any]:
    return {"audio_in_enabled": True, "audio_out_enabled": False}


def create_app(port_ref: list[int], llm_url: str) -> FastAPI:
    """The bot's routes. ``port_ref[0]`` is the listening port (known after bind)."""
    app, webrtc = app_with_webrtc()

    @app.post("/start")
    async def start() -> dict[str, str]:
        return {"wsUrl": f"ws://{HOST}:{port_ref[0]}/ws", "sessionId": uuid.uuid4().hex}

    @app.post("/tc/start")
    async def tc_start() -> dict[str, str]:
        return {"wsUrl": f"ws://{HOST}:{port_ref[0]}/tc/ws", "sessionId": f"tc-{uuid.uuid4().hex}"}

    async def websocket_bot(websocket: WebSocket, *, turn_completion: bool) -> None:
        await websocket.accept()
        params = FastAPIWebsocketParams(serializer=ProtobufFrameSerializer(), **_params())
        transport = FastAPIWebsocketTransport(websocket, params)
        await run_bot(transport, llm_url, "ws", turn_completion=turn_completion)

    @app.websocket("/ws")
    async def ws_endpoint(websocket: WebSocket) -> None:
        await websocket_bot(websocket, turn_completion=False)

    @app.websocket("/tc/ws")
    async def tc_ws_endpoint(websocket: WebSocket) -> None:
        await websocket_bot(websocket, turn_completion=True)

    @app.post("/sessions/{session_id}/api/offer")
    async def offer(session_id: str, request: Request) -> Any:
        req = offer_request(await request.json())

        async def on_connection(connection: SmallWebRTCConnection) -> None:
            transport = SmallWebRTCTransport(connection, TransportParams(**_params()))
            task = asyncio.create_task(
                run_bot(
                    transport,
                    llm_url,
                    f"webrtc {session_id}",
                    turn_completion=session_id.startswith("tc-"),
                )
            )
            _BOT_TASKS.add(task)
            task.add_done_callback(_BOT_TASKS.discard)

        return await webrtc.handle_web_request(req, on_connection)

    @app.patch("/sessions/{session_id}/api/offer")
    async def patch(session_id: str, request: Request) -> dict[str, str]:
        await webrtc.handle_patch_request(patch_request(await request.json()))
        return {"status": "success"}

    return app


if __name__ == "__main__":
    from bot_serving import main

    main(create_app, __doc__.splitlines()[0])
