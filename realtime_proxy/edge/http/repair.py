"""The session configs of the Realtime HTTP routes through the same rule chain as `session.update`.

Pure: bytes in, bytes out. Each config is run as the `session.update` of a session in the right
context (route, session type, model), so rules keep to their scope: nothing GA-shaped touches a
translation session, and `session_type_missing` knows that a WebRTC offer or a SIP accept configures
a realtime session. Nothing is re-serialised unless a rule changed something, so a valid request is
forwarded byte for byte; a multipart offer has only its `session` part replaced."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import orjson

from realtime_proxy.core.context import SessionContext, SessionRoute
from realtime_proxy.core.events import parse_guarded
from realtime_proxy.core.rules import ChainResult, RuleChain
from realtime_proxy.core.session_state import SessionState
from realtime_proxy.edge.http.multipart import boundary_of, named_part
from realtime_proxy.edge.http.routes import BodyKind, HttpRoute

_TYPES = ("realtime", "transcription")


@dataclass(frozen=True, slots=True)
class Repaired:
    body: bytes  # what to forward
    result: ChainResult | None = None  # None: no session config found, nothing was run


def session_route(route: HttpRoute, path: str) -> SessionRoute:
    """The WebSocket route whose sessions this config is for (Azure GA paths start /openai/v1/)."""
    if route.translation:
        return SessionRoute.TRANSLATION
    return SessionRoute.AZURE if path.startswith("/openai/v1/") else SessionRoute.REALTIME


def _run(chain: RuleChain, session: dict[str, Any], route: SessionRoute, kind: BodyKind) -> ChainResult:
    model = session.get("model")
    state = SessionState(SessionContext(route=route, model=model if isinstance(model, str) else None))
    declared = session.get("type")
    if kind in (BodyKind.OFFER, BodyKind.SESSION):
        state.session_type = "realtime"  # calls and accept configure realtime sessions only (SDK types)
    elif route != "translation" and declared in _TYPES:
        state.session_type = declared
    return chain.apply({"type": "session.update", "session": session}, state)


def _json_object(raw: bytes) -> dict[str, Any] | None:
    # The WebSocket path's guard: a config nested past MAX_REPAIR_DEPTH is forwarded untouched
    # (the rules recurse, orjson cannot serialise past 254 levels: it was a 500 and a traceback).
    return parse_guarded(raw)


def repair_body(
    kind: BodyKind,
    content_type: str,
    body: bytes,
    chain: RuleChain,
    route: SessionRoute = SessionRoute.REALTIME,
) -> Repaired:
    if kind is BodyKind.SECRET_REQUEST:
        request = _json_object(body)
        if request is None or not isinstance(request.get("session"), dict):
            return Repaired(body)
        result = _run(chain, request["session"], route, kind)
        if not result.changed:
            return Repaired(body, result)
        return Repaired(orjson.dumps({**request, "session": result.event["session"]}), result)
    if kind is BodyKind.SESSION:
        session = _json_object(body)
        if session is None:
            return Repaired(body)
        result = _run(chain, session, route, kind)
        return Repaired(orjson.dumps(result.event["session"]) if result.changed else body, result)
    if kind is BodyKind.OFFER:
        return _repair_offer(content_type, body, chain, route)
    return Repaired(body)


def _repair_offer(content_type: str, body: bytes, chain: RuleChain, route: SessionRoute) -> Repaired:
    boundary = boundary_of(content_type)  # a bare application/sdp offer has no session to repair
    span = named_part(body, boundary, "session") if boundary else None
    if span is None:
        return Repaired(body)
    start, end = span
    session = _json_object(body[start:end])
    if session is None:
        return Repaired(body)
    result = _run(chain, session, route, BodyKind.OFFER)
    if not result.changed:
        return Repaired(body, result)
    return Repaired(body[:start] + orjson.dumps(result.event["session"]) + body[end:], result)
