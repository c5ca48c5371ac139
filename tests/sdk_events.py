"""Hypothesis strategies built from the `openai` SDK's request TypedDicts: the SDK is the schema.

Every value drawn is accepted by the SDK's types (`Required`/`NotRequired`, `Literal`, `Union`,
`Iterable`, nested TypedDicts, `Dict`), with bounded sizes so a run stays fast. Free-form strings come
from a small realistic alphabet; `model`-like unions of `str` and literals draw the literals too."""

from __future__ import annotations

import base64
import collections.abc
import types
import typing
from typing import Any

import typing_extensions
from hypothesis import strategies as st
from openai.types.realtime import (
    client_secret_create_params,
    realtime_client_event_param,
    realtime_session_create_request_param,
    realtime_transcription_session_create_request_param,
    realtime_translation_client_event_param,
)

MAX_LIST = 3
MAX_DEPTH = 7
_TEXT = st.sampled_from(["", "hi", "lookup", "Summarize", "item_1", "call_1", "x" * 40, "héllo"])
_AUDIO = st.sampled_from([base64.b64encode(bytes(n)).decode() for n in (0, 160, 480, 4800, 9600)])
# Fields whose values the types leave free but the API reads structurally.
_FIELD_STRATEGIES: dict[str, st.SearchStrategy[Any]] = {
    "audio": _AUDIO,
    "delta": _AUDIO,
    "arguments": st.sampled_from(["{}", '{"q": "x"}']),
    "event_id": st.sampled_from(["evt_1", "evt_2", "c1"]),
}


def _is_typeddict(tp: Any) -> bool:
    return isinstance(tp, type) and typing_extensions.is_typeddict(tp)


def strategy_for(tp: Any, depth: int = 0, field: str | None = None) -> st.SearchStrategy[Any]:
    """A strategy producing JSON values valid for the annotation `tp`."""
    origin, args = typing_extensions.get_origin(tp), typing_extensions.get_args(tp)
    if origin in (
        typing.Required,
        typing.NotRequired,
        typing.Annotated,
        typing_extensions.Required,
        typing_extensions.NotRequired,
    ):
        return strategy_for(args[0], depth, field)
    if field in _FIELD_STRATEGIES and tp is str:
        return _FIELD_STRATEGIES[field]
    if _is_typeddict(tp):
        return typeddict_strategy(tp, depth + 1)
    if origin in (typing.Literal, typing_extensions.Literal):
        return st.sampled_from(args)
    if origin in (typing.Union, types.UnionType):
        options = [a for a in args if a is not type(None)]
        if depth >= MAX_DEPTH:  # prefer the simplest member deep down
            simple = [a for a in options if not _is_typeddict(a) and typing.get_origin(a) is None]
            options = simple or options
        drawn = [strategy_for(a, depth, field) for a in options]
        if type(None) in args:
            drawn.append(st.none())
        return st.one_of(drawn)
    if origin in (list, collections.abc.Iterable, collections.abc.Sequence, typing.List):  # noqa: UP006
        size = 0 if depth >= MAX_DEPTH else MAX_LIST
        return st.lists(strategy_for(args[0], depth + 1, field), max_size=size)
    if origin in (dict, collections.abc.Mapping, typing.Dict):  # noqa: UP006
        return st.dictionaries(_TEXT.filter(bool), strategy_for(args[1], depth + 1), max_size=2)
    if tp is str:
        return _TEXT
    if tp is bool:
        return st.booleans()
    if tp is int:
        return st.integers(0, 5000)
    if tp is float:
        return st.floats(0, 2, allow_nan=False).map(lambda f: round(f, 2))
    if tp in (object, Any):
        return st.one_of(st.none(), st.booleans(), _TEXT, st.integers(0, 9))
    if tp is type(None):
        return st.none()
    raise TypeError(f"no strategy for {tp!r}")


def typeddict_strategy(td: type, depth: int = 0) -> st.SearchStrategy[dict[str, Any]]:
    hints = typing_extensions.get_type_hints(td, include_extras=True)
    # The SDK's modules use `from __future__ import annotations`, so `__required_keys__` cannot see
    # `Required[...]`: read the wrappers from the resolved hints instead.
    total = getattr(td, "__total__", True)
    required = {k for k, v in hints.items() if _wrapper(v) == "required" or (total and _wrapper(v) is None)}
    fixed = {k: strategy_for(v, depth, k) for k, v in hints.items() if k in required}
    optional = {k: strategy_for(v, depth, k) for k, v in hints.items() if k not in required}
    if depth >= MAX_DEPTH:
        optional = {}
    return st.fixed_dictionaries(fixed, optional=optional)


def _wrapper(hint: Any) -> str | None:
    origin = typing_extensions.get_origin(hint)
    if origin in (typing.Required, typing_extensions.Required):
        return "required"
    if origin in (typing.NotRequired, typing_extensions.NotRequired):
        return "not_required"
    return None


def _members(alias: Any) -> list[type]:
    return [a for a in typing.get_args(alias) if _is_typeddict(a)]


# Every client event type of the Realtime sockets, and of the translation socket.
REALTIME_EVENTS: list[type] = _members(realtime_client_event_param.RealtimeClientEventParam)
TRANSLATION_EVENTS: list[type] = _members(
    realtime_translation_client_event_param.RealtimeTranslationClientEventParam
)
# HTTP session bodies: POST /v1/realtime/client_secrets's `session`, and the session configs.
SESSION_BODIES: list[type] = [
    realtime_session_create_request_param.RealtimeSessionCreateRequestParam,
    realtime_transcription_session_create_request_param.RealtimeTranscriptionSessionCreateRequestParam,
]
CLIENT_SECRET_BODY: type = client_secret_create_params.ClientSecretCreateParams


def event_type_of(td: type) -> str:
    hint = typing_extensions.get_type_hints(td, include_extras=True)["type"]
    while typing_extensions.get_origin(hint) in (typing_extensions.Required, typing_extensions.NotRequired):
        hint = typing_extensions.get_args(hint)[0]
    literal: str = typing_extensions.get_args(hint)[0]
    return literal
