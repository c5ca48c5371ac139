"""API errors with the API's own wording (see shared/PROTOCOL.md), and the two builders of what
carries them: the WebSocket `error` event (`error_event`) and the HTTP error body (`http_error_body`).

Schema: openai/types/realtime/realtime_error_event.py (`error.event_id`) and
openai/types/live/error_event.py (`error.client_event_id`, echoed at the top when supplied).
Key order is part of the bytes a client sees, so each place keeps the order it has always sent.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any, Final

import orjson

from realtime_proxy.api.events import LIVE_CLIENT_EVENTS

INVALID_REQUEST: Final = "invalid_request_error"
SERVER_ERROR: Final = "server_error"

# Key orders of the `error` object. The WebSocket `error` event (and the proxy's own handshake
# refusals) list `type` first; the REST API's bodies list `message` first.
TYPE_FIRST: Final = ("type", "code", "message", "param")
MESSAGE_FIRST: Final = ("message", "type", "param", "code")
# The simulator's handshake refusals (its own historical order; clients read them as JSON).
MESSAGE_TYPE_CODE: Final = ("message", "type", "code", "param")


class ApiError(Exception):
    """An `error` event's payload; raising it leaves the session untouched and open."""

    def __init__(
        self,
        message: str,
        *,
        code: str | None,
        param: str | None = None,
        type: str = INVALID_REQUEST,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.code = code
        self.param = param
        self.type = type

    def fields(self, order: tuple[str, ...] = TYPE_FIRST) -> dict[str, Any]:
        """The `error` object's four fields, in `order`."""
        values = {"type": self.type, "code": self.code, "message": self.message, "param": self.param}
        return {key: values[key] for key in order}

    def payload(self, client_event_id: str | None, *, live: bool = False) -> dict[str, Any]:
        """The `error` object of a WebSocket `error` event (Live names the echo `client_event_id`)."""
        return {**self.fields(), ("client_event_id" if live else "event_id"): client_event_id}


def error_event(
    error: ApiError, client_event_id: str | None, *, event_id: str | None = None, live: bool = False
) -> dict[str, Any]:
    """The WebSocket `error` event (the one builder: the proxy's refusals and both simulators).

    `event_id` is the server event's own id (the simulators prepend theirs); Live also echoes the
    command's id at the top when there is one."""
    event: dict[str, Any] = {"type": "error"}
    if event_id is not None:
        event["event_id"] = event_id
    event["error"] = error.payload(client_event_id, live=live)
    if live and client_event_id:
        event["client_event_id"] = client_event_id
    return event


def http_error_body(
    message: str,
    *,
    code: str | None,
    param: str | None = None,
    type: str = INVALID_REQUEST,
    order: tuple[str, ...] = MESSAGE_FIRST,
) -> bytes:
    """The HTTP error body `{"error": {...}}` (the one builder: edge refusals and the simulator)."""
    error = ApiError(message, code=code, param=param, type=type)
    return orjson.dumps({"error": error.fields(order)})


def type_name(value: object) -> str:
    """The API's phrasing for a JSON value's type ("a string", "an object", ...)."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, int):
        return "an integer"
    if isinstance(value, float):
        return "a decimal"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, list):
        return "an array"
    return "an object"


def quote_list(values: Iterable[object]) -> str:
    """'a', 'b', and 'c' - the API's enumeration style."""
    items = [f"'{v}'" if isinstance(v, str) else str(v) for v in values]
    if len(items) <= 1:
        return "".join(items)
    if len(items) == 2:
        return f"{items[0]} and {items[1]}"
    return ", ".join(items[:-1]) + f", and {items[-1]}"


def unknown_parameter(param: str) -> ApiError:
    return ApiError(f"Unknown parameter: '{param}'.", code="unknown_parameter", param=param)


def missing_parameter(param: str) -> ApiError:
    return ApiError(f"Missing required parameter: '{param}'.", code="missing_required_parameter", param=param)


def invalid_type(param: str, expected: str, value: object) -> ApiError:
    return ApiError(
        f"Invalid type for '{param}': expected {expected}, but got {type_name(value)} instead.",
        code="invalid_type",
        param=param,
    )


def invalid_value(param: str, value: object, supported: Iterable[object]) -> ApiError:
    shown = f"'{value}'" if isinstance(value, str) else repr(value)
    options = list(supported)
    if len(options) == 1:
        tail = f"Value must be {quote_list(options)}."
    else:
        tail = f"Supported values are: {quote_list(options)}."
    return ApiError(f"Invalid value: {shown}. {tail}", code="invalid_value", param=param)


# Live: a command before `session.started` (the API's wording, code `session_not_started`).
LIVE_NOT_STARTED: Final = "Send session.start and wait for session.started before sending other commands."


def live_unsupported(event_type: str, supported: tuple[str, ...] = LIVE_CLIENT_EVENTS) -> ApiError:
    """A Live command the socket does not accept (the API lists the supported types)."""
    message = f"Invalid value: '{event_type}'. Supported values are: {quote_list(supported)}."
    return ApiError(message, code="invalid_value", param="type")
