"""The fake's Live HTTP routes (`openai/resources/live/`): WebRTC session creation with an SDP
offer, and the session controls (accept, content, fork, hangup, refer, reject)."""

from __future__ import annotations

import re
from typing import Any

from .http_realtime import Reply, error, json_object, json_reply
from .ids import new_id

LIVE_SESSIONS = "/v1/live/sessions"
_ACTION = re.compile(r"/v1/live/sessions/([A-Za-z0-9_\-]+)/(accept|content|fork|hangup|refer|reject)")
SDP_ANSWER = "v=0\r\no=- 0 0 IN IP4 127.0.0.1\r\ns=-\r\nt=0 0\r\n"
_REQUIRED = {"refer": "target_uri", "reject": "status_code"}


def _webrtc_offer(body: dict[str, Any]) -> None:
    transport = body.get("transport")
    if not isinstance(transport, dict) or not isinstance(transport.get("sdp"), str):
        raise error(400, "Missing required parameter: 'transport.sdp'.", code="missing_required_parameter")
    if transport.get("type") != "webrtc":
        raise error(
            400,
            f"Invalid value: '{transport.get('type')}'. Supported values are: 'webrtc'.",
            code="invalid_value",
        )


def live_route(method: str, path: str, body: bytes) -> Reply | None:
    """The reply to a Live HTTP request, or None when the path is not a Live route."""
    if path == LIVE_SESSIONS and method == "POST":
        request = json_object(body)
        session = request.get("session")
        if not isinstance(session, dict) or not isinstance(session.get("model"), str):
            raise error(
                400, "Missing required parameter: 'session.model'.", code="missing_required_parameter"
            )
        _webrtc_offer(request)
        return json_reply({"session": {"id": new_id("live_sess")}, "transport": {"sdp": SDP_ANSWER}})
    match = _ACTION.fullmatch(path)
    if match is None:
        return None
    action = match.group(2)
    if action == "content":
        if method != "GET":
            return None
        return Reply(200, bytes(1024), "application/octet-stream")
    if method != "POST":
        return None
    if action in ("accept", "fork", "refer", "reject"):
        request = json_object(body)
        if action == "accept" and not isinstance(request.get("session"), dict):
            raise error(400, "Missing required parameter: 'session'.", code="missing_required_parameter")
        if action == "fork":
            _webrtc_offer(request)
            return json_reply({"session": {"id": new_id("live_sess")}, "transport": {"sdp": SDP_ANSWER}})
        field = _REQUIRED.get(action)
        if field is not None and field not in request:
            raise error(400, f"Missing required parameter: '{field}'.", code="missing_required_parameter")
    return Reply(200)
