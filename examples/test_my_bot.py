"""Testing a Pipecat bot with pytest (the ``pipecat`` plugin of pipecat-lifecycle).

Runs against the local testing bot by default; point it at your bot with
``pytest examples/test_my_bot.py --pipecat-start http://localhost:7860/start``
(and ``--pipecat-transport webrtc`` for SmallWebRTC).
"""

from lifecycle import PipecatClient
from lifecycle.testing import Conversation


async def test_bot_answers(pipecat_client: PipecatClient) -> None:
    async with Conversation(pipecat_client) as conv:
        await conv.say("hello there")
        await conv.expect("on_bot_llm_started", within=5)
        await conv.expect("on_bot_output", text_contains="hello there", within=5)
        await conv.expect("on_bot_stopped_speaking", within=10)


async def test_bot_calls_a_function(pipecat_client: PipecatClient) -> None:
    async with Conversation(pipecat_client) as conv:
        await conv.say("what is the weather like?")
        call = await conv.expect("on_llm_function_call_in_progress", within=5)
        assert call.function_name == "get_weather"
