"""Small, type-defensive helpers shared by the rule modules (hot path: isinstance only)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import orjson

_MAX_BRIEF = 256  # bytes of JSON kept verbatim in a RuleRewrite's before/after


def brief(value: Any) -> Any:
    """A JSON-safe, small stand-in for `value` for RuleRewrite records (never audio, never big schemas).

    Returns an independent copy, so later mutation of the working event cannot alter a record."""
    if value is None or isinstance(value, bool | int | float):
        return value
    if isinstance(value, str):
        return value if len(value) <= _MAX_BRIEF else f"<str {len(value)} chars>"
    try:
        raw = orjson.dumps(value)
    except (TypeError, orjson.JSONEncodeError):
        return f"<{type(value).__name__}>"
    if len(raw) <= _MAX_BRIEF:
        return orjson.loads(raw)
    size = f"{len(value)} keys" if isinstance(value, dict) else f"{len(value)} items"
    return f"<{type(value).__name__} {size}>"


def targets(event: dict[str, Any]) -> Iterator[tuple[str, dict[str, Any]]]:
    """(path prefix, object) for the configurable object of session.update / response.create."""
    etype = event.get("type")
    key = "session" if etype == "session.update" else "response" if etype == "response.create" else None
    if key is not None:
        obj = event.get(key)
        if isinstance(obj, dict):
            yield key, obj


def child(parent: dict[str, Any], key: str, *, create: bool) -> dict[str, Any] | None:
    """parent[key] when it is a dict; created when absent (or None) and `create`; else None.

    A present value of the wrong type is never overwritten: the API will report it as sent."""
    value = parent.get(key)
    if isinstance(value, dict):
        return value
    if create and value is None:
        value = parent[key] = {}
        return value
    return None


def items(event: dict[str, Any]) -> Iterator[tuple[str, dict[str, Any]]]:
    """(path, item) for conversation.item.create's item and response.create's response.input[]."""
    etype = event.get("type")
    if etype == "conversation.item.create":
        item = event.get("item")
        if isinstance(item, dict):
            yield "item", item
    elif etype == "response.create":
        response = event.get("response")
        inputs = response.get("input") if isinstance(response, dict) else None
        if isinstance(inputs, list):
            for i, item in enumerate(inputs):
                if isinstance(item, dict):
                    yield f"response.input[{i}]", item
