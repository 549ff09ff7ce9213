"""Hypothesis fuzz of the inbound path: the RTVI decoder, the protobuf frame decoder, and a
live client fed arbitrary messages. No exception may escape beyond the documented ones.
"""

from __future__ import annotations

import asyncio
import json
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from lifecycle import AudioFrame, PipecatClient, SessionClosedError, State
from lifecycle.errors import BotNotReadyError
from lifecycle.rtvi import LABEL, InvalidMessage, decode, encode, parse
from transports._pb import frames_pb2 as pb
from transports.loopback import LoopbackBot, LoopbackTransport
from transports.websocket import decode_frame, encode_message

FUZZ = settings(
    max_examples=150,
    deadline=None,  # a 2-core machine shared with other test runs
    suppress_health_check=[HealthCheck.too_slow],
)

# --------------------------------------------------------------------------- strategies

scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(),
    st.floats(allow_nan=True, allow_infinity=True),
    st.text(max_size=20),
)
json_values = st.recursive(
    scalars,
    lambda children: st.one_of(
        st.lists(children, max_size=5),
        st.dictionaries(st.text(max_size=8), children, max_size=5),
    ),
    max_leaves=25,
)
RTVI_TYPES = [
    "bot-ready",
    "server-response",
    "error-response",
    "server-message",
    "error",
    "client-ready",
    "bot-llm-text",
    "user-transcription",
    "metrics",
    "disconnect-bot",
]
msg_types = st.one_of(st.sampled_from(RTVI_TYPES), st.text(max_size=12), json_values)
msg_ids = st.one_of(st.none(), st.text(max_size=12), st.integers(), json_values)


@st.composite
def rtvi_shaped(draw: st.DrawFn) -> dict[str, Any]:
    """A dict that looks like an RTVI message; any field may be missing or odd."""
    message: dict[str, Any] = {}
    if draw(st.integers(0, 9)):
        message["label"] = LABEL if draw(st.integers(0, 9)) else draw(json_values)
    if draw(st.integers(0, 9)):
        message["type"] = draw(msg_types)
    if draw(st.booleans()):
        message["id"] = draw(msg_ids)
    if draw(st.integers(0, 4)):
        message["data"] = draw(_data_for(message.get("type")))
    return message


def _data_for(msg_type: Any) -> st.SearchStrategy[Any]:
    if msg_type == "error":
        return st.one_of(
            json_values,
            st.fixed_dictionaries(
                {}, optional={"error": json_values, "fatal": st.one_of(st.booleans(), json_values)}
            ),
        )
    if msg_type == "bot-ready":
        return st.one_of(
            json_values,
            st.fixed_dictionaries(
                {},
                optional={
                    "version": st.one_of(st.text(max_size=10), json_values),
                    "about": json_values,
                    "capabilities": json_values,
                },
            ),
        )
    if msg_type in ("server-response", "error-response"):
        return st.one_of(
            json_values,
            st.fixed_dictionaries(
                {}, optional={"t": json_values, "d": json_values, "error": json_values}
            ),
        )
    return json_values


def json_text(value: Any) -> str:
    return json.dumps(value, allow_nan=True)


# ------------------------------------------------------------------- (a) lifecycle.rtvi.decode


def check_decode(raw: Any, max_size: int) -> None:
    try:
        message = parse(raw, max_size)
    except InvalidMessage as exc:
        assert isinstance(exc.reason, str) and exc.reason
        return
    assert isinstance(message, dict)
    assert message["label"] == LABEL and isinstance(message["type"], str)
    assert decode(raw, max_size).type == message["type"]  # typed decode never raises


@FUZZ
@given(raw=st.one_of(st.binary(max_size=300), st.text(max_size=300)), max_size=st.integers(0, 400))
def test_decode_arbitrary_bytes_and_text(raw: str | bytes, max_size: int) -> None:
    check_decode(raw, max_size)


@FUZZ
@given(value=json_values, as_bytes=st.booleans())
def test_decode_arbitrary_json(value: Any, as_bytes: bool) -> None:
    text = json_text(value)
    check_decode(text.encode() if as_bytes else text, 1 << 20)
    if isinstance(value, dict):
        check_decode(value, 1 << 20)


@FUZZ
@given(message=rtvi_shaped(), how=st.sampled_from(["text", "bytes", "mapping"]))
def test_decode_rtvi_shaped(message: dict[str, Any], how: str) -> None:
    raw: Any = message if how == "mapping" else json_text(message)
    check_decode(raw.encode() if how == "bytes" else raw, 1 << 20)
    valid = message.get("label") == LABEL and isinstance(message.get("type"), str)
    if valid and how != "mapping":
        assert parse(encode(message), 1 << 20) == json.loads(json_text(message))


@FUZZ
@given(
    depth=st.integers(1, 200_000),
    opener=st.sampled_from(["[", "{", '{"a":', '{"label":"rtvi-ai","type":"x","data":[']),
)
def test_decode_deep_nesting(depth: int, opener: str) -> None:
    check_decode(opener * depth, 10 << 20)


# ------------------------------------------------------------ (b) transports.websocket.decode_frame


def check_frame(data: bytes) -> None:
    try:
        item = decode_frame(data)
    except ValueError as exc:
        assert str(exc)
        return
    if isinstance(item, AudioFrame):
        assert item.sample_rate > 0 and item.num_channels > 0
        assert len(item.pcm) % (2 * item.num_channels) == 0
    elif isinstance(item, dict):
        assert item["label"] == LABEL and isinstance(item["type"], str)
    else:
        assert isinstance(item, str)


@FUZZ
@given(data=st.binary(max_size=500))
def test_decode_frame_arbitrary_bytes(data: bytes) -> None:
    check_frame(data)


u32 = st.integers(0, 2**32 - 1)
frames = st.one_of(
    st.builds(lambda t: pb.Frame(message=pb.MessageFrame(data=t)), st.text(max_size=50)),
    st.builds(
        lambda a, r, c: pb.Frame(audio=pb.AudioRawFrame(audio=a, sample_rate=r, num_channels=c)),
        st.binary(max_size=64),
        u32,
        u32,
    ),
    st.builds(
        lambda t, u, ts: pb.Frame(
            transcription=pb.TranscriptionFrame(text=t, user_id=u, timestamp=ts)
        ),
        st.text(max_size=20),
        st.text(max_size=8),
        st.text(max_size=8),
    ),
    st.builds(lambda t: pb.Frame(text=pb.TextFrame(text=t)), st.text(max_size=20)),
    st.just(pb.Frame(interruption=pb.InterruptionFrame())),
    st.just(pb.Frame()),
)


@FUZZ
@given(frame=frames, cut=st.integers(0, 200), noise=st.binary(max_size=8))
def test_decode_frame_structured_truncated_and_noisy(frame: Any, cut: int, noise: bytes) -> None:
    whole = frame.SerializeToString()
    check_frame(whole)
    check_frame(whole[:cut])
    check_frame(whole + noise)
    check_frame(noise + whole)


@FUZZ
@given(message=rtvi_shaped())
def test_decode_frame_message_round_trip(message: dict[str, Any]) -> None:
    data = decode_frame(encode_message(message))
    assert isinstance(data, str) and json.loads(data) == json.loads(json_text(message))


# ---------------------------------------------------- (c) a live client fed arbitrary messages

inbound = st.one_of(
    rtvi_shaped().map(lambda m: ("send", m)),
    st.builds(
        lambda t, i, d: ("send", {"label": LABEL, "type": t, "id": i, "data": d}),
        st.sampled_from(["server-response", "error-response", "error", "bot-ready"]),
        msg_ids,
        json_values,
    ),
    st.text(max_size=60).map(lambda t: ("raw", t)),
    st.binary(max_size=60).map(lambda b: ("raw", b)),
    json_values.map(lambda v: ("raw", json_text(v))),
)


async def _session(feed: list[tuple[str, Any]]) -> None:
    loop = asyncio.get_running_loop()
    escaped: list[dict[str, Any]] = []
    loop.set_exception_handler(lambda _loop, context: escaped.append(context))
    bot = LoopbackBot(handlers={"echo": lambda d: d})
    client = PipecatClient(LoopbackTransport(bot), connect_timeout=2.0, request_timeout=2.0)
    ended = asyncio.Event()
    client.add_event_handler("on_disconnected", ended.set)
    await asyncio.wait_for(client.connect(), 5)
    for how, item in feed:
        if not bot.connected:
            break  # a fatal error ended the session; the bot has nobody to talk to
        if how == "send":
            await bot.send(item)
        else:
            await bot.send_raw(item)
    # Every fed message is delivered before the echo's response (in-order delivery).
    try:
        assert await asyncio.wait_for(client.send_client_request("echo", "ok"), 5) == "ok"
        assert client.state is State.READY
    except (BotNotReadyError, SessionClosedError):
        # Only a fatal error may end it, and it ends cleanly.
        await asyncio.wait_for(ended.wait(), 5)
        assert client.state is State.DISCONNECTED
    assert isinstance(client.state, State)
    await asyncio.wait_for(client.disconnect(), 5)
    assert client.state is State.DISCONNECTED
    assert not escaped, escaped
    current = asyncio.current_task()
    assert not [t for t in asyncio.all_tasks() if t is not current and not t.done()]


@settings(FUZZ, max_examples=100)
@given(feed=st.lists(inbound, min_size=1, max_size=8))
def test_live_client_survives_arbitrary_inbound(feed: list[tuple[str, Any]]) -> None:
    asyncio.run(_session(feed))


def test_live_client_fatal_error_ends_cleanly() -> None:
    """The one inbound message that may end the session does so cleanly (a sanity check
    that the fuzz above can tell READY from a clean DISCONNECTED)."""
    asyncio.run(_session([("send", {"label": LABEL, "type": "error", "data": {"fatal": True}})]))
