"""Where a SmallWebRTC connection goes and through which ICE servers (no I/O).

The offer URL the JS client's ``SmallWebRTCTransport`` would use for a set of connect params
and a start endpoint, and the ICE server list in aiortc's form. aiortc is imported only when
:func:`parse_ice_servers` runs.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit, urlunsplit

from lifecycle.transport import first_param

if TYPE_CHECKING:
    from aiortc import RTCIceServer

__all__ = ["offer_url", "parse_ice_servers", "start_base_url"]


def start_base_url(start_endpoint: str) -> str:
    """The start URL without its last path segment, query and fragment.

    ``http://h/api/start`` -> ``http://h/api``; ``http://h/start`` -> ``http://h``.
    """
    parts = urlsplit(start_endpoint)
    path = parts.path.rstrip("/")
    base_path = path.rsplit("/", 1)[0] if "/" in path else ""
    return urlunsplit((parts.scheme, parts.netloc, base_path, "", ""))


def offer_url(
    params: Mapping[str, Any] | None, start_endpoint: str | None, default: str | None
) -> tuple[str, bool]:
    """Where to POST the offer, and whether it is a start_bot session URL.

    An explicit ``webrtcUrl``/``webrtc_url`` param wins; then a ``sessionId`` with the start
    endpoint; then ``default`` (the constructor's URL). Raises ValueError when none applies.
    """
    explicit = first_param(params, "webrtcUrl", "webrtc_url")
    if explicit is not None:
        if not isinstance(explicit, str) or not explicit:
            raise ValueError("webrtcUrl must be a non-empty string")
        return explicit, False
    session_id = first_param(params, "sessionId", "session_id")
    if session_id is not None:
        if start_endpoint is None:
            if default is not None:
                return default, False
            raise ValueError("a sessionId needs the start endpoint (use start_bot first)")
        return f"{start_base_url(start_endpoint)}/sessions/{session_id}/api/offer", True
    if default is not None:
        return default, False
    raise ValueError(
        "no offer URL: pass webrtc_url to SmallWebRTCTransport, or connect params "
        "with webrtcUrl, or a start_bot response with sessionId"
    )


def parse_ice_servers(servers: Any) -> list[RTCIceServer]:
    """aiortc ``RTCIceServer`` objects from URL strings, ``RTCIceServer``s or dicts.

    Dicts are the browser form ``{"urls": str | [str], "username"?, "credential"?}``.
    ``None`` and ``[]`` both mean no ICE server at all. Raises ValueError on anything else.
    """
    from aiortc import RTCIceServer

    if servers is None:
        return []
    if isinstance(servers, str | Mapping | RTCIceServer):
        servers = [servers]
    if not isinstance(servers, Sequence):
        raise ValueError(f"ice servers must be a list, not {type(servers).__name__}")
    result: list[RTCIceServer] = []
    for server in servers:
        if isinstance(server, RTCIceServer):
            result.append(server)
        elif isinstance(server, str) and server:
            result.append(RTCIceServer(urls=server))
        elif isinstance(server, Mapping) and server.get("urls"):
            urls = server["urls"]
            if not (isinstance(urls, str) or all(isinstance(u, str) for u in urls)):
                raise ValueError("ice server urls must be strings")
            result.append(
                RTCIceServer(
                    urls=urls if isinstance(urls, str) else list(urls),
                    username=server.get("username"),
                    credential=server.get("credential"),
                )
            )
        else:
            raise ValueError(f"invalid ice server: {type(server).__name__}")
    return result
