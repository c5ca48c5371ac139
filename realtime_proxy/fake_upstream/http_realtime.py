"""The fake's Realtime HTTP routes: client secrets (realtime, transcription, translation) and WebRTC
call offers, validated GA-strictly like `session.update` and refused with the API's own errors."""

from __future__ import annotations

import re
import time
from typing import Any

import orjson

from realtime_proxy.api.errors import ApiError, http_error_body, missing_parameter, unknown_parameter
from realtime_proxy.api.validation import check_session_update
from realtime_proxy.core.events import too_deep

from .ids import new_id
from .session import deep_merge, default_session, transcription_session

SDP_ANSWER = b"v=0\r\no=- 4611731400430051336 2 IN IP4 127.0.0.1\r\ns=-\r\nt=0 0\r\na=fake-answer\r\n"
_TRANSLATION_KEYS = {"session": {"model", "audio"}, "session.audio": {"input", "output"},
                     "session.audio.input": {"noise_reduction", "transcription"},
                     "session.audio.output": {"language"}}  # fmt: skip


class Reply(Exception):
    """The answer to a request, raised from wherever it is decided."""

    def __init__(
        self, status: int, body: bytes = b"", content_type: str = "application/json", location: str = ""
    ) -> None:
        super().__init__(status)
        self.status, self.body, self.content_type = status, body, content_type
        self.headers = [(b"location", location.encode())] if location else []


def error(status: int, message: str, *, code: str | None, param: str | None = None) -> Reply:
    return Reply(status, http_error_body(message, code=code, param=param))


def api_error(exc: ApiError) -> Reply:
    return error(400, exc.message, code=exc.code, param=exc.param)


def json_reply(value: Any, status: int = 200) -> Reply:
    return Reply(status, orjson.dumps(value))


def json_object(raw: bytes, what: str = "the JSON body of your request") -> dict[str, Any]:
    # Past 64 levels the simulator refuses the body as unreadable (its replies echo the session,
    # and orjson cannot write past 254). An assumption: the API's own limit is not documented.
    if too_deep(raw):
        raise error(400, f"We could not parse {what}.", code="invalid_json")
    try:
        value = orjson.loads(raw)
    except orjson.JSONDecodeError:
        raise error(400, f"We could not parse {what}.", code="invalid_json") from None
    if not isinstance(value, dict):
        raise error(400, f"Expected {what} to be a JSON object.", code="invalid_type")
    return value


def validated(session: object, default_type: str) -> dict[str, Any]:
    kind = session.get("type") if isinstance(session, dict) else None
    try:
        return check_session_update(session, kind if kind in ("realtime", "transcription") else default_type)
    except ApiError as exc:
        raise api_error(exc) from None


def mint(secrets: set[str], session: dict[str, Any]) -> dict[str, Any]:
    """A `ClientSecretCreateResponse`; the value is accepted as a key afterwards."""
    value = new_id("ek")
    secrets.add(value)
    return {"value": value, "expires_at": int(time.time()) + 600, "session": session}


def client_secret(secrets: set[str], session: object) -> dict[str, Any]:
    update = validated(session, "realtime")
    model = str(update.get("model", "gpt-realtime"))
    base = transcription_session(model) if update["type"] == "transcription" else default_session(model)
    deep_merge(base, update)
    return mint(secrets, base)


def translation_secret(secrets: set[str], session: object) -> dict[str, Any]:
    if not isinstance(session, dict):
        raise api_error(missing_parameter("session"))
    _check_translation_keys(session, "session")
    if "model" not in session:
        raise api_error(missing_parameter("session.model"))
    result = {"id": new_id("sess"), "type": "translation", "model": session["model"],
              "expires_at": int(time.time()) + 600, "audio": session.get("audio", {})}  # fmt: skip
    return mint(secrets, result)


def _check_translation_keys(obj: dict[str, Any], where: str) -> None:
    for key, value in obj.items():
        if key not in _TRANSLATION_KEYS.get(where, set()):
            raise api_error(unknown_parameter(f"{where}.{key}"))
        if isinstance(value, dict) and f"{where}.{key}" in _TRANSLATION_KEYS:
            _check_translation_keys(value, f"{where}.{key}")


def call_offer(content_type: str, body: bytes) -> tuple[dict[str, bytes], Reply]:
    """The offer's fields as received, and the answer: 201 with the SDP answer and the call's URL."""
    if content_type.startswith("application/sdp"):
        parts = {"sdp": body}
    elif match := re.search(r'boundary="?([^";]+)"?', content_type):
        parts = _form_parts(body, match.group(1).encode())
        if "session" in parts:
            validated(json_object(parts["session"], "the session part"), "realtime")
    else:
        raise error(400, "Unsupported content type for a call offer.", code="invalid_request_error")
    if not parts.get("sdp", b"").startswith(b"v=0"):
        raise api_error(missing_parameter("sdp"))
    location = f"/v1/realtime/calls/{new_id('rtc')}"
    return parts, Reply(201, SDP_ANSWER, "application/sdp", location=location)


def _form_parts(body: bytes, boundary: bytes) -> dict[str, bytes]:
    """Fields of a multipart/form-data body (written apart from the proxy's parser on purpose)."""
    parts: dict[str, bytes] = {}
    for chunk in (b"\r\n" + body).split(b"\r\n--" + boundary)[1:]:
        if chunk.startswith(b"--"):
            break
        head, sep, content = chunk.partition(b"\r\n\r\n")
        name = re.search(rb'\bname="([^"]*)"', head)
        if sep and name:
            parts[name.group(1).decode()] = content
    return parts
