"""SmallWebRTC transport: RTVI over a WebRTC data channel to a Pipecat SmallWebRTC bot (aiortc).

Speaks the same protocol as the JS client's ``SmallWebRTCTransport``:

* Signalling over HTTP (httpx): ``POST <offer url>`` with ``{sdp, type: "offer", pc_id,
  restart_pc, requestData}`` answers ``{sdp, type: "answer", pc_id}``. ICE trickle is
  ``PATCH <offer url>`` with ``{pc_id, candidates: [{candidate, sdp_mid, sdp_mline_index}]}``.
  aiortc gathers every local candidate before it produces the offer, so the offer carries them
  all and the trickle queue stays empty; candidates that would be queued before the answer
  named a ``pc_id`` are sent once it did (as the JS client does), and a failed PATCH is logged,
  never fatal.
* The offer URL: ``webrtcUrl`` / ``webrtc_url`` in the connect params; else, for a start_bot
  response carrying ``sessionId``, ``<start endpoint's base>/sessions/<sessionId>/api/offer``
  where the base is the start URL without its last path segment (``http://h/api/start`` ->
  ``http://h/api``; the start request's headers go along, as credentials often must); else the
  constructor's ``webrtc_url``.
* ICE servers: the params' ``iceConfig.iceServers`` when present (as the JS client, they
  replace the constructor's), else the constructor's ``ice_servers``. The peer connection is
  always given an explicit list, so aiortc never falls back to its default public STUN server.
* Media as the JS client offers it: audio sendrecv, camera video sendrecv, screen video
  sendonly (no video is ever sent). :meth:`SmallWebRTCTransport.send_audio` feeds the
  outgoing audio track (silence when nothing is queued), unless the constructor got an
  ``audio_source`` track, which is then sent instead. The bot's audio is decoded and reported
  as ``events.audio_received(AudioFrame(...))`` at its real rate (48 kHz stereo from aiortc).
* Data channel ``"chat"`` (ordered), created by the client: RTVI JSON as text both ways, and
  the keepalive text ``ping: <ms epoch>`` every second from the moment it opens (a Pipecat bot
  that saw one ping holds the client's messages once pings stop for 3 s).
* Signalling on the data channel, ``{"type": "signalling", "message": {"type": ...}}``, is
  handled here and never reaches the client: ``renegotiate`` -> a new offer on the same peer
  connection (``restart_pc: false``, the current ``pc_id``; the answer's ``pc_id`` is kept);
  ``peerLeft`` -> ``transport_closed(clean=True)``; ``trackStatus`` is ignored.
* Ends: the data channel closing, or the connection state becoming ``closed``/``failed``,
  without a ``peerLeft`` first -> ``transport_closed(clean=False)``. During connect the same
  failures, an HTTP error from the offer endpoint, or no connection within
  ``connect_timeout`` raise instead.
* Dead peers: a live Pipecat 1.14 bot never answers the data channel ``ping``, but it sends
  audio from connect on (~50 RTP packets/s, silence included) and RTCP receiver reports for
  the audio this client sends; ICE consent alone notices a killed bot only after ~30 s. Every
  inbound RTP packet (any track, at its arrival time, not when it is decoded: the jitter
  buffer and a busy reader delay that), RTCP receiver report and data channel message counts
  as a sign of life; a peer from which nothing arrives is reported lost within
  ``dead_peer_timeout`` seconds (default 5; None: off): ``transport_closed(clean=False,
  reason="peer silent for N s")``, after which the session ends as any lost link does.
  The check runs 10 times per timeout and fires after 0.8-0.9 of it (a tick is left for a
  loaded machine); a stall of this process's own event loop is not counted as the peer's
  silence.
* Event loops: a session left up by an event loop that ended (``asyncio.run()`` returned) is
  dropped, not awaited, by the next :meth:`SmallWebRTCTransport.connect` on a new loop.

aiortc is an optional extra: it is imported only by this module, and only when a transport
is constructed. Without it the constructor raises :class:`WebRTCUnavailableError`.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime
import json
import time
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any, Final

from lifecycle.errors import TransportError
from lifecycle.http import send_json
from lifecycle.logs import describe_exception, get_logger
from lifecycle.media import AudioFrame
from lifecycle.redact import redact_url
from lifecycle.rtvi import encode
from lifecycle.timeouts import check_seconds
from lifecycle.transport import ConnectRequest, Transport, TransportSink, first_param
from transports._errors import transport_error
from transports._liveness import PeerLiveness
from transports._tasks import TaskSet
from transports.webrtc_config import offer_url, parse_ice_servers, start_base_url
from transports.webrtc_media import (
    INSTALL_HINT,
    OutgoingAudio,
    WebRTCUnavailableError,
    require_aiortc,
    to_audio_frame,
)

if TYPE_CHECKING:
    from aiortc import MediaStreamTrack, RTCDataChannel, RTCPeerConnection

__all__ = [
    "INSTALL_HINT",
    "SmallWebRTCTransport",
    "WebRTCUnavailableError",
    "offer_url",
    "parse_ice_servers",
    "start_base_url",
]

DATA_CHANNEL_LABEL: Final = "chat"
KEEPALIVE_INTERVAL: Final = 1.0
_CLOSE_TIMEOUT: Final = 3.0
_HTTP_TIMEOUT: Final = 15.0
_MAX_SIGNALLING_BODY: Final = 1024 * 1024
_SIGNALLING: Final = "signalling"
DEFAULT_DEAD_PEER_TIMEOUT: Final = 5.0
"""Seconds of silence after which a peer is reported lost."""


class _PeerSession:
    """One peer connection and everything it owns."""

    def __init__(
        self,
        events: TransportSink,
        url: str,
        headers: Mapping[str, str],
        request_data: Any,
        pc: RTCPeerConnection,
        log: Any,
    ) -> None:
        self.events = events
        self.url = url
        self.headers = dict(headers)
        self.request_data = request_data
        self.pc = pc
        self.log = log
        self.channel: RTCDataChannel | None = None
        self.pc_id: str | None = None
        self.tasks = TaskSet()
        self.pending_candidates: list[dict[str, Any]] = []
        self.connected = False  # transport_connected was reported
        self.ending = False  # disconnect() started: report nothing any more
        self.closed_reported = False
        self.peer_left = False
        self.link_up: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self.renegotiating: asyncio.Lock = asyncio.Lock()
        self.close_task: asyncio.Task[None] | None = None
        self.liveness: PeerLiveness | None = None  # set once connected

    def heard(self) -> None:
        """A sign of life from the peer."""
        if self.liveness is not None:
            self.liveness.heard(time.monotonic())

    def spawn(self, coro: Any, name: str) -> None:
        self.tasks.spawn(coro, name=name)

    def lost(self, *, clean: bool, reason: str) -> None:
        """The link ended by itself: fail the connect in flight, or report it once."""
        if self.ending:
            return
        if not self.link_up.done():
            self.link_up.set_exception(TransportError(f"WebRTC connection ended: {reason}"))
            return
        if not self.connected or self.closed_reported:
            return
        self.closed_reported = True
        self.log.info("webrtc connection ended", clean=clean, reason=reason)
        self.events.transport_closed(clean=clean, reason=reason)
        # Release the peer connection now. Never cancelled: aiortc's close() cannot be
        # resumed once interrupted, so disconnect() awaits this task instead.
        self.close_task = asyncio.get_running_loop().create_task(
            self.close_pc(), name="webrtc-close"
        )

    def check_up(self) -> None:
        channel = self.channel
        if (
            not self.link_up.done()
            and channel is not None
            and channel.readyState == "open"
            and self.pc.connectionState == "connected"
        ):
            self.link_up.set_result(None)

    async def close_pc(self) -> None:
        channel = self.channel
        if channel is not None and channel.readyState not in ("closing", "closed"):
            with contextlib.suppress(Exception):
                channel.close()
        try:
            await asyncio.wait_for(self.pc.close(), _CLOSE_TIMEOUT)
        except (TimeoutError, Exception) as exc:
            self.log.warning("webrtc peer connection close failed", error=describe_exception(exc))


class SmallWebRTCTransport(Transport):
    """RTVI over WebRTC to a Pipecat SmallWebRTC bot (aiortc); see the module docstring.

    ``webrtc_url``: the offer endpoint used when the connect params name none.
    ``ice_servers``: URL strings, aiortc ``RTCIceServer`` objects or browser-style dicts;
    ``None`` or ``[]``: no ICE server (host candidates only; never a default public STUN).
    ``audio_source``: an aiortc audio ``MediaStreamTrack`` to send instead of the PCM fed
    through :meth:`send_audio`.
    ``connect_timeout``: seconds from the offer until the data channel must be open.
    ``dead_peer_timeout``: a peer from which nothing (RTP, RTCP, data channel) arrives for this
    many seconds is reported lost (None: rely on ICE consent alone, ~30 s).
    """

    carries_audio = True

    def __init__(
        self,
        webrtc_url: str | None = None,
        *,
        ice_servers: Sequence[Any] | None = None,
        audio_source: MediaStreamTrack | None = None,
        connect_timeout: float = 30.0,
        dead_peer_timeout: float | None = DEFAULT_DEAD_PEER_TIMEOUT,
        logger: Any = None,
    ) -> None:
        require_aiortc()
        self._connect_timeout = check_seconds(connect_timeout, "connect_timeout")
        self._dead_peer_timeout = (
            None
            if dead_peer_timeout is None
            else check_seconds(dead_peer_timeout, "dead_peer_timeout")
        )
        self._webrtc_url = webrtc_url
        self._ice_servers = parse_ice_servers(ice_servers)
        self._audio_source = audio_source
        self._loop: asyncio.AbstractEventLoop | None = None
        self._log = get_logger(logger).bind(transport="small_webrtc")
        self._session: _PeerSession | None = None
        self._audio: OutgoingAudio | None = None

    @property
    def pc_id(self) -> str | None:
        """The server's id for the current peer connection (None when not connected)."""
        return self._session.pc_id if self._session is not None else None

    # ------------------------------------------------------------------ connect

    async def connect(self, request: ConnectRequest, events: TransportSink) -> None:
        """Offer, get the answer, wait for the data channel; then report connected."""
        from aiortc import RTCConfiguration, RTCPeerConnection
        from aiortc.rtcconfiguration import RTCBundlePolicy

        self._bind_loop()
        if self._session is not None:
            await self.disconnect()
        params = request.params
        url, is_session = offer_url(params, request.start_endpoint, self._webrtc_url)
        ice_config = first_param(params, "iceConfig", "ice_config")
        if isinstance(ice_config, Mapping) and "iceServers" in ice_config:
            ice_servers = parse_ice_servers(ice_config["iceServers"])
        else:
            ice_servers = list(self._ice_servers)
        request_data = first_param(params, "requestData", "request_data")
        headers = request.start_headers if is_session else {}

        # An explicit list, even empty: with None aiortc would add a public STUN server.
        pc = RTCPeerConnection(
            RTCConfiguration(iceServers=ice_servers, bundlePolicy=RTCBundlePolicy.MAX_BUNDLE)
        )
        log = self._log.bind(url=redact_url(url), session_id=request.session_id)
        session = _PeerSession(events, url, headers, request_data, pc, log)
        self._session = session
        try:
            self._setup(session)
            log.debug("webrtc offer", ice_servers=len(ice_servers))
            async with asyncio.timeout(self._connect_timeout):
                await self._negotiate(session, restart_pc=False)
                await session.link_up
        except BaseException:
            if self._session is session:
                self._session = None
            await self._teardown(session)
            raise
        session.connected = True
        session.spawn(self._keepalive(session), "webrtc-keepalive")
        if self._dead_peer_timeout is not None:
            session.liveness = PeerLiveness(self._dead_peer_timeout, time.monotonic())
            session.spawn(self._watch_peer(session, session.liveness), "webrtc-liveness")
        log.info("webrtc connected", pc_id=session.pc_id)
        events.transport_connected()

    def _setup(self, session: _PeerSession) -> None:
        pc = session.pc
        if self._audio_source is not None:
            audio_track = self._audio_source
        else:
            self._audio = OutgoingAudio()
            audio_track = self._audio.track
        pc.addTransceiver(audio_track, direction="sendrecv")
        pc.addTransceiver("video", direction="sendrecv")
        pc.addTransceiver("video", direction="sendonly")
        channel = pc.createDataChannel(DATA_CHANNEL_LABEL, ordered=True)
        session.channel = channel

        @channel.on("open")
        def on_open() -> None:
            session.check_up()

        @channel.on("message")
        def on_message(message: str | bytes) -> None:
            self._on_message(session, message)

        @channel.on("close")
        def on_close() -> None:
            session.lost(clean=session.peer_left, reason="data channel closed")

        @pc.on("connectionstatechange")
        def on_state() -> None:
            state = pc.connectionState
            session.log.debug("webrtc connection state", state=state)
            if state == "connected":
                session.check_up()
            elif state in ("failed", "closed"):
                session.lost(clean=session.peer_left, reason=f"connection {state}")

        @pc.on("track")
        def on_track(track: MediaStreamTrack) -> None:
            if track.kind == "audio":
                session.spawn(self._read_audio(session, track), "webrtc-audio-reader")

    async def _negotiate(self, session: _PeerSession, *, restart_pc: bool) -> None:
        from aiortc import RTCSessionDescription

        pc = session.pc
        offer = await pc.createOffer()
        await pc.setLocalDescription(offer)  # gathers every local candidate (no trickle)
        body = {
            "sdp": pc.localDescription.sdp,
            "type": pc.localDescription.type,
            "pc_id": session.pc_id,
            "restart_pc": restart_pc,
            "requestData": session.request_data,
        }
        answer = await self._post(session, "POST", body)
        sdp, kind = answer.get("sdp"), answer.get("type")
        if not isinstance(sdp, str) or kind != "answer":
            raise TransportError("the offer endpoint returned no SDP answer")
        pc_id = answer.get("pc_id")
        if isinstance(pc_id, str) and pc_id:
            session.pc_id = pc_id
        await pc.setRemoteDescription(RTCSessionDescription(sdp=sdp, type="answer"))
        await self._flush_candidates(session)

    async def _post(self, session: _PeerSession, method: str, body: Mapping[str, Any]) -> Any:
        """One signalling request; any failure raises TransportError (URL redacted)."""
        where = redact_url(session.url)
        failure: TransportError | None = None
        try:
            status, raw = await send_json(
                method,
                session.url,
                body,
                headers=session.headers,
                timeout=_HTTP_TIMEOUT,
                max_bytes=_MAX_SIGNALLING_BODY,
            )
        except Exception as exc:  # network errors, timeout, oversize body, unusable URL
            failure = transport_error(f"{method} {where} failed: {describe_exception(exc)}", exc)
        if failure is not None:
            raise failure  # outside the except block: no raw __context__ either
        if status >= 400:
            raise TransportError(f"{method} {where} answered HTTP {status}")
        try:
            return json.loads(raw)
        except ValueError as exc:
            raise TransportError(f"{method} {where} returned a body that is not JSON") from exc

    def queue_candidate(self, candidate: str, sdp_mid: str | None, index: int | None) -> None:
        """Queue a local ICE candidate for trickle (sent by PATCH once a pc_id is known).

        aiortc puts every candidate in the offer, so nothing calls this in a normal session;
        it keeps the JS client's trickle path (batching until the answer) available.
        """
        session = self._session
        if session is None:
            raise TransportError("not connected")
        session.pending_candidates.append(
            {"candidate": candidate, "sdp_mid": sdp_mid, "sdp_mline_index": index}
        )
        if session.pc_id is not None:
            session.spawn(self._flush_candidates(session), "webrtc-trickle")

    async def _flush_candidates(self, session: _PeerSession) -> None:
        if not session.pending_candidates or session.pc_id is None:
            return
        batch, session.pending_candidates = session.pending_candidates, []
        try:
            await self._post(session, "PATCH", {"pc_id": session.pc_id, "candidates": batch})
        except TransportError as exc:
            # Trickle is an optimisation: the offer already carried candidates.
            session.log.warning("ice trickle failed", error=describe_exception(exc))

    # ------------------------------------------------------------------ inbound

    def _on_message(self, session: _PeerSession, message: str | bytes) -> None:
        if session.ending:
            return
        session.heard()
        if isinstance(message, str):
            if message.startswith("ping"):
                return
            if _SIGNALLING in message and len(message) <= self.max_message_size:
                try:
                    parsed = json.loads(message)
                except ValueError:
                    parsed = None
                if isinstance(parsed, dict) and parsed.get("type") == _SIGNALLING:
                    self._on_signalling(session, parsed.get("message"))
                    return
        session.events.message_received(message)

    def _on_signalling(self, session: _PeerSession, message: Any) -> None:
        kind = message.get("type") if isinstance(message, Mapping) else None
        session.log.debug("webrtc signalling", signal=kind)
        if kind == "peerLeft":
            session.peer_left = True
            session.lost(clean=True, reason="peerLeft")
        elif kind == "renegotiate":
            session.spawn(self._renegotiate(session), "webrtc-renegotiate")
        elif kind != "trackStatus":
            session.events.message_dropped(f"unknown signalling message {kind!r}")

    async def _renegotiate(self, session: _PeerSession) -> None:
        async with session.renegotiating:
            if session.ending or session.closed_reported:
                return
            try:
                await self._negotiate(session, restart_pc=False)
                session.log.info("webrtc renegotiated", pc_id=session.pc_id)
            except Exception as exc:
                session.log.warning("webrtc renegotiation failed", error=describe_exception(exc))

    async def _read_audio(self, session: _PeerSession, track: MediaStreamTrack) -> None:
        from aiortc.mediastreams import MediaStreamError

        while True:
            try:
                frame = await track.recv()
            except MediaStreamError:
                return
            audio = to_audio_frame(frame)
            if audio is not None and not session.ending:
                session.events.audio_received(audio)

    async def _keepalive(self, session: _PeerSession) -> None:
        while True:
            channel = session.channel
            if channel is None or channel.readyState != "open":
                return
            channel.send(f"ping: {int(time.time() * 1000)}")
            await asyncio.sleep(KEEPALIVE_INTERVAL)

    async def _watch_peer(self, session: _PeerSession, liveness: PeerLiveness) -> None:
        """End the session as lost once the peer has been silent for ``dead_peer_timeout``."""
        marks: set[tuple[Any, datetime.datetime]] = set()
        while not session.ending and not session.closed_reported:
            await asyncio.sleep(liveness.tick)
            now_marks = await _media_marks(session.pc)
            new = now_marks - marks
            marks = now_marks
            if new:
                # When the newest packet arrived (aiortc stamps them in UTC), not now.
                age = (datetime.datetime.now(datetime.UTC) - max(t for _, t in new)).total_seconds()
                liveness.heard(time.monotonic() - max(0.0, age))
            silence = liveness.check(time.monotonic())
            if silence is not None:
                session.log.warning("webrtc peer silent", seconds=round(silence, 1))
                session.lost(clean=False, reason=f"peer silent for {silence:.1f} s")
                return

    # ------------------------------------------------------------------ outbound

    def send_message(self, message: Mapping[str, Any]) -> None:
        """Send one RTVI message as text on the data channel (in order)."""
        session = self._session
        channel = session.channel if session is not None else None
        if session is None or session.ending or channel is None or channel.readyState != "open":
            raise TransportError("SmallWebRTC data channel is not open")
        channel.send(encode(message))

    def send_audio(self, frame: AudioFrame) -> None:
        """Queue s16le PCM on the outgoing audio track (any rate; resampled to 48 kHz)."""
        if self._audio_source is not None:
            raise TransportError("audio comes from the audio_source track given to the transport")
        if self._session is None or self._audio is None:
            raise TransportError("SmallWebRTC transport is not connected")
        try:
            self._audio.push(frame)
        except ValueError as exc:
            raise TransportError(f"bad audio frame: {exc}") from exc

    # ------------------------------------------------------------------ ending

    async def disconnect(self) -> None:
        """Close the data channel and peer connection (bounded); idempotent; reports nothing."""
        self._bind_loop()
        session = self._session
        if session is None:
            return
        self._session = None
        await self._teardown(session)

    def _bind_loop(self) -> None:
        """Drop a session of an event loop that is not the running one (that loop ended).

        Its tasks were cancelled with that loop and aiortc's objects cannot be awaited on
        another one: the peer connection is left to the garbage collector, not closed.
        """
        loop = asyncio.get_running_loop()
        if self._loop is loop:
            return
        if self._session is not None:
            self._session.ending = True
            self._session.log.debug("webrtc session of an ended event loop dropped")
        self._session = None
        self._audio = None
        self._loop = loop

    async def _teardown(self, session: _PeerSession) -> None:
        session.ending = True
        if not session.link_up.done():
            session.link_up.cancel()
        current = asyncio.current_task()
        tasks = [t for t in session.tasks if t is not current]
        for task in tasks:
            task.cancel()
        try:
            if session.close_task is not None:
                await asyncio.wait([session.close_task], timeout=_CLOSE_TIMEOUT + 0.5)
            await session.close_pc()
            if self._audio is not None and self._audio_source is None:
                self._audio.track.stop()
                self._audio.clear()
        finally:
            late = [t for t in session.tasks if t is not current and not t.done()]
            for task in late:
                task.cancel()
            if tasks or late:
                await asyncio.wait([*tasks, *late], timeout=_CLOSE_TIMEOUT)


async def _media_marks(pc: RTCPeerConnection) -> set[tuple[Any, datetime.datetime]]:
    """When each inbound RTP source and each RTCP receiver report was last seen (UTC).

    A new mark between two calls means the peer sent something. aiortc's public API: RTP via
    ``getSynchronizationSources()``, receiver reports as ``remote-inbound-rtp`` stats.
    """
    marks: set[tuple[Any, datetime.datetime]] = set()
    for transceiver in pc.getTransceivers():
        try:
            sources = transceiver.receiver.getSynchronizationSources()
            marks.update((s.source, s.timestamp) for s in sources)
            stats = await transceiver.sender.getStats()
        except Exception:  # a transceiver not (or no longer) negotiated has nothing to say
            continue
        marks.update(
            (stat.id, stat.timestamp)
            for stat in stats.values()
            if getattr(stat, "type", None) == "remote-inbound-rtp"
        )
    return marks
