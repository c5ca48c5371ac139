"""HttpRoute classes of plain HTTP requests: a bounded metrics label, and which bodies carry a session
config to repair. Matched on the path's tail so OpenAI (`/v1/...`) and Azure (`/openai/v1/...`)
paths classify alike."""

from __future__ import annotations

import re
from dataclasses import dataclass
from enum import Enum


class BodyKind(Enum):
    NONE = "none"  # streamed through untouched
    SECRET_REQUEST = "secret_request"  # JSON {"session": {...}, ...}
    SESSION = "session"  # JSON: the body is the session config itself (calls/{id}/accept)
    OFFER = "offer"  # multipart with `sdp` and `session` parts, or a bare application/sdp offer


@dataclass(frozen=True, slots=True)
class HttpRoute:
    name: str  # metrics label: one of realtime_proxy.settings.HTTP_ROUTE_CLASSES
    body: BodyKind = BodyKind.NONE
    translation: bool = False  # a translation session: only rules that fit it apply


OTHER = HttpRoute("other")
_CALL_ID = r"[A-Za-z0-9_\-]+"
_SECRETS = HttpRoute("realtime_client_secrets", BodyKind.SECRET_REQUEST)
_TRANSLATION_SECRETS = HttpRoute("translations_client_secrets", BodyKind.SECRET_REQUEST, translation=True)
_LIVE_SESSIONS = HttpRoute("live_sessions")  # Live: relayed untouched (no Realtime repair applies)
_LIVE_ACTION = HttpRoute("live_session_action")
_TABLE: tuple[tuple[str, re.Pattern[str], HttpRoute], ...] = (
    ("*", re.compile(r".*/live/sessions/?"), _LIVE_SESSIONS),
    ("*", re.compile(rf".*/live/sessions/{_CALL_ID}(/[a-z_]+)?/?"), _LIVE_ACTION),
    ("POST", re.compile(r".*/realtime/client_secrets/?"), _SECRETS),
    ("POST", re.compile(r".*/realtime/translations/client_secrets/?"), _TRANSLATION_SECRETS),
    ("POST", re.compile(r".*/realtime/calls/?"), HttpRoute("realtime_calls", BodyKind.OFFER)),
    (
        "POST",
        re.compile(rf".*/realtime/calls/{_CALL_ID}/accept/?"),
        HttpRoute("realtime_call_action", BodyKind.SESSION),
    ),
    ("*", re.compile(rf".*/realtime/calls/{_CALL_ID}(/[a-z_]+)?/?"), HttpRoute("realtime_call_action")),
    ("*", re.compile(r".*/realtime/client_secrets/?"), HttpRoute("realtime_client_secrets")),
    ("*", re.compile(r".*/realtime/translations/client_secrets/?"), HttpRoute("translations_client_secrets")),
    ("*", re.compile(r".*/realtime/calls/?"), HttpRoute("realtime_calls")),
)


def classify(method: str, path: str) -> HttpRoute:
    for want, pattern, route in _TABLE:
        if (want == "*" or want == method) and pattern.fullmatch(path):
            return route
    return OTHER
