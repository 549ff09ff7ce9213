"""A real Pipecat (1.14) text bot for the simulation interop tests: the flows Pipecat's six
published simulation files expect, its LLM Pipecat's own ``OpenAILLMService``.

Run with the interop venv's python (pipecat-ai is never a dependency of the project itself)::

    .venv-interop/bin/python tests/interop/sim_bot.py --port 0 --llm-url http://127.0.0.1:N/v1

Once listening it prints exactly one line ``BOT-SERVER-READY http://127.0.0.1:N`` to stdout.

The LLM is ``OpenAILLMService`` pointed at ``--llm-url`` (the tests' OpenAI stand-in, which
plays each flow by rules: tests/support/sim_flows.py); the system prompt names the flow
(``FLOW: restaurant``). The tools are the ones the published files' judges and
``function_calls`` metrics look for; their handlers run here, in the bot, as a Pipecat flow's
would, with deterministic results (7 PM and 8 PM are taken at the restaurant). The bot greets
on client-ready. A function named in :data:`ENDS_CALL` ends the session after its reply
(``EndWorkerFrame``), as pipecat-flows' ``end_conversation`` does.

Routes, one set per flow (``restaurant``, ``pizza``, ``sushi``, ``insurance``):
``POST /{flow}/start`` -> ``{"wsUrl", "sessionId"}``; ``WS /{flow}/ws`` (protobuf);
``POST|PATCH /{flow}/sessions/{sid}/api/offer`` (SmallWebRTC).
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Awaitable, Callable
from typing import Any

from bot_serving import HOST, app_with_webrtc, offer_request, patch_request, run_worker
from fastapi import FastAPI, HTTPException, Request, WebSocket
from pipecat.adapters.llm.schemas.function_schema import FunctionSchema
from pipecat.adapters.llm.schemas.tools_schema import ToolsSchema
from pipecat.frames.frames import EndWorkerFrame, FunctionCallResultProperties, LLMRunFrame
from pipecat.pipeline.pipeline import Pipeline
from pipecat.pipeline.worker import PipelineParams, PipelineWorker
from pipecat.processors.aggregators.llm_context import LLMContext
from pipecat.processors.aggregators.llm_response_universal import LLMContextAggregatorPair
from pipecat.processors.frame_processor import FrameDirection
from pipecat.processors.frameworks.rtvi import RTVIObserverParams
from pipecat.processors.frameworks.rtvi.observer import RTVIFunctionCallReportLevel
from pipecat.serializers.protobuf import ProtobufFrameSerializer
from pipecat.services.llm_service import FunctionCallParams
from pipecat.services.openai.llm import OpenAILLMService
from pipecat.transports.base_transport import BaseTransport, TransportParams
from pipecat.transports.smallwebrtc.connection import SmallWebRTCConnection
from pipecat.transports.smallwebrtc.transport import SmallWebRTCTransport
from pipecat.transports.websocket.fastapi import FastAPIWebsocketParams, FastAPIWebsocketTransport

TAKEN = ("7 PM", "8 PM")
OFFERED = ["5 PM", "6 PM", "9 PM"]
ENDS_CALL = frozenset({"end_conversation"})
_TASKS: set[asyncio.Task[None]] = set()


def _tool(name: str, description: str, **properties: str) -> FunctionSchema:
    return FunctionSchema(
        name=name,
        description=description,
        properties={k: {"type": v} for k, v in properties.items()},
        required=list(properties),
    )


def _check_availability(args: dict[str, Any]) -> dict[str, Any]:
    time = str(args.get("time", "")).upper()
    if time in TAKEN:
        return {"available": False, "time": time, "alternatives": OFFERED}
    return {"available": True, "time": time, "party_size": args.get("party_size")}


Result = Callable[[dict[str, Any]], dict[str, Any]]
FLOWS: dict[str, list[tuple[FunctionSchema, Result]]] = {
    "restaurant": [
        (
            _tool("collect_party_size", "Record the party size", size="integer"),
            lambda a: {"party_size": a.get("size")},
        ),
        (
            _tool("check_availability", "Check a time", time="string", party_size="integer"),
            _check_availability,
        ),
        (_tool("end_conversation", "End the call"), lambda a: {"status": "ended"}),
    ],
    "pizza": [
        (_tool("choose_pizza", "The caller wants pizza"), lambda a: {"menu": "pizza"}),
        (
            _tool("select_pizza_order", "Record a pizza", size="string", type="string"),
            lambda a: {"size": a.get("size"), "type": a.get("type"), "price": 18},
        ),
        (_tool("get_delivery_estimate", "Delivery time"), lambda a: {"minutes": 30}),
        (_tool("complete_order", "Place the order"), lambda a: {"status": "placed"}),
    ],
    "sushi": [
        (_tool("choose_sushi", "The caller wants sushi"), lambda a: {"menu": "sushi"}),
        (
            _tool("select_sushi_order", "Record rolls", count="integer", roll="string"),
            lambda a: {"count": a.get("count"), "roll": a.get("roll"), "price": 24},
        ),
        (_tool("complete_order", "Place the order"), lambda a: {"status": "placed"}),
    ],
    "insurance": [
        (_tool("collect_age", "Record the age", age="integer"), lambda a: {"age": a.get("age")}),
        (
            _tool("collect_marital_status", "Record marital status", status="string"),
            lambda a: {"status": a.get("status")},
        ),
        (
            _tool("calculate_quote", "Quote"),
            lambda a: {"monthly_premium": 42, "coverage": 250000, "deductible": 1000},
        ),
        (
            _tool("update_coverage", "Change coverage", coverage="integer", deductible="integer"),
            lambda a: {"monthly_premium": 55, **a},
        ),
        (_tool("end_quote", "Finish"), lambda a: {"status": "done"}),
    ],
}


def _handler(name: str, result: Result) -> Callable[[FunctionCallParams], Awaitable[None]]:
    async def handle(params: FunctionCallParams) -> None:
        arguments = dict(params.arguments or {})
        if name in ENDS_CALL:
            # The goodbye came with the call; the session ends once it is out.
            await params.result_callback(
                result(arguments), properties=FunctionCallResultProperties(run_llm=False)
            )
            await params.llm.push_frame(
                EndWorkerFrame(reason=f"{name} called"), FrameDirection.UPSTREAM
            )
            return
        await params.result_callback(result(arguments))

    return handle


def build_worker(transport: BaseTransport, flow: str, llm_url: str) -> PipelineWorker:
    """One session's pipeline: aggregators around OpenAILLMService, RTVI with FULL calls."""
    tools = FLOWS[flow]
    context = LLMContext(
        messages=[{"role": "system", "content": f"FLOW: {flow}. You are a phone assistant."}],
        tools=ToolsSchema(standard_tools=[schema for schema, _ in tools]),
    )
    aggregators = LLMContextAggregatorPair(context)
    llm = OpenAILLMService(
        api_key="stand-in-key",
        base_url=llm_url,
        settings=OpenAILLMService.Settings(model="stand-in-bot"),
    )
    for schema, result in tools:
        llm.register_function(schema.name, _handler(schema.name, result))
    pipeline = Pipeline(
        [transport.input(), aggregators.user(), llm, transport.output(), aggregators.assistant()]
    )
    worker = PipelineWorker(
        pipeline,
        params=PipelineParams(enable_metrics=True),
        rtvi_observer_params=RTVIObserverParams(
            function_call_report_level={"*": RTVIFunctionCallReportLevel.FULL}
        ),
        idle_timeout_secs=None,
    )

    @worker.rtvi.event_handler("on_client_ready")  # type: ignore[untyped-decorator]
    async def greet(_rtvi: Any) -> None:
        await worker.queue_frames([LLMRunFrame()])

    return worker


async def run_bot(transport: BaseTransport, flow: str, llm_url: str, label: str) -> None:
    """Run one session until the client leaves or the flow ends the call."""
    await run_worker(transport, build_worker(transport, flow, llm_url), label)


def _params() -> dict[str, Any]:
    return {"audio_in_enabled": False, "audio_out_enabled": False}


def create_app(port_ref: list[int], llm_url: str) -> FastAPI:
    """The routes of every flow (``port_ref[0]``: the listening port, known after bind)."""
    app, webrtc = app_with_webrtc()

    def known(flow: str) -> str:
        if flow not in FLOWS:
            raise HTTPException(404, f"no flow {flow!r}")
        return flow

    @app.post("/{flow}/start")
    async def start(flow: str) -> dict[str, str]:
        known(flow)
        sid = uuid.uuid4().hex
        return {"wsUrl": f"ws://{HOST}:{port_ref[0]}/{flow}/ws", "sessionId": sid}

    @app.websocket("/{flow}/ws")
    async def ws_endpoint(websocket: WebSocket, flow: str) -> None:
        await websocket.accept()
        params = FastAPIWebsocketParams(serializer=ProtobufFrameSerializer(), **_params())
        transport = FastAPIWebsocketTransport(websocket, params)
        await run_bot(transport, known(flow), llm_url, f"ws:{flow}")

    @app.post("/{flow}/sessions/{sid}/api/offer")
    async def offer(flow: str, sid: str, request: Request) -> Any:
        known(flow)
        req = offer_request(await request.json())

        async def on_connection(connection: SmallWebRTCConnection) -> None:
            transport = SmallWebRTCTransport(connection, TransportParams(**_params()))
            task = asyncio.create_task(run_bot(transport, flow, llm_url, f"webrtc:{flow}"))
            _TASKS.add(task)
            task.add_done_callback(_TASKS.discard)

        return await webrtc.handle_web_request(req, on_connection)

    @app.patch("/{flow}/sessions/{sid}/api/offer")
    async def patch(flow: str, sid: str, request: Request) -> dict[str, str]:
        await webrtc.handle_patch_request(patch_request(await request.json()))
        return {"status": "success"}

    return app


if __name__ == "__main__":
    from bot_serving import main

    main(create_app, __doc__.splitlines()[0])
