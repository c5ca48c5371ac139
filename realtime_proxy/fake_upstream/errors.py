"""API errors with the Realtime API's own wording (see shared/PROTOCOL.md)."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any


class ApiError(Exception):
    """An `error` event's payload; raising it leaves the session untouched and open."""

    def __init__(
        self,
        message: str,
        *,
        code: str | None,
        param: str | None = None,
        type: str = "invalid_request_error",
    ) -> None:
        super().__init__(message)
        self.message = message
        self.code = code
        self.param = param
        self.type = type

    def payload(self, client_event_id: str | None) -> dict[str, Any]:
        return {
            "type": self.type,
            "code": self.code,
            "message": self.message,
            "param": self.param,
            "event_id": client_event_id,
        }


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
