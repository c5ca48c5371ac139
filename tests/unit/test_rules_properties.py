"""Property tests: the chain never mutates input, never crashes, and is idempotent."""

from __future__ import annotations

import copy
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from realtime_proxy.core.context import ROUTES, SessionContext, SessionRoute
from realtime_proxy.core.rules import build_chain
from realtime_proxy.core.session_state import SessionState

CHAIN = build_chain()
SETTINGS = settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])

scalars = st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=8)
json_values = st.recursive(
    scalars,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=6), inner, max_size=4),
    max_leaves=12,
)

# Every key some rule inspects, so random structures actually reach the rules' branches.
VOCAB = [
    "type", "session", "response", "item", "input", "content", "role", "output", "tools", "tool_choice",
    "function", "name", "modalities", "output_modalities", "audio", "voice", "format", "speed",
    "input_audio_format", "output_audio_format", "turn_detection", "input_audio_transcription",
    "transcription", "temperature", "max_response_output_tokens", "max_output_tokens", "item_id",
    "audio_end_ms", "rate", "text",
]  # fmt: skip
TYPES = sorted(CHAIN.event_types)
shaped = st.recursive(
    scalars | st.sampled_from(["audio", "text", "pcm16", "function", "user", "assistant", "audio/pcm"]),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.sampled_from(VOCAB), inner, max_size=5),
    max_leaves=20,
)

function_tool = st.builds(
    lambda name, chat: (
        {"type": "function", "function": {"name": name, "parameters": {}}}
        if chat
        else {"type": "function", "name": name, "parameters": {}}
    ),
    st.sampled_from(["f", "g"]),
    st.booleans(),
)
tool_choice = st.sampled_from([None, "auto", "required"]) | st.builds(
    lambda name, chat: (
        {"type": "function", "function": {"name": name}} if chat else {"type": "function", "name": name}
    ),
    st.sampled_from(["f", "g", "h"]),
    st.booleans(),
)
fmt = st.sampled_from(["pcm16", "g711_ulaw", "g711_alaw", {"type": "audio/pcm"}, {"type": "audio/pcmu"}])
beta_config = st.fixed_dictionaries(
    {},
    optional={
        "modalities": st.sampled_from([["text"], ["audio"], ["audio", "text"], ["text", "audio"]]),
        "output_modalities": st.sampled_from([["text"], ["audio", "text"]]),
        "voice": st.sampled_from(["alloy", "marin", {"id": "voice_1"}]),
        "input_audio_format": fmt,
        "output_audio_format": fmt,
        "turn_detection": st.none() | st.just({"type": "server_vad"}),
        "input_audio_transcription": st.just({"model": "whisper-1"}),
        "speed": st.just(1.1),
        "temperature": st.floats(0, 2),
        "max_response_output_tokens": st.sampled_from([10, "inf"]),
        "max_output_tokens": st.just(20),
        "tools": st.lists(function_tool, max_size=3),
        "tool_choice": tool_choice,
        "audio": st.fixed_dictionaries(
            {}, optional={"input": st.fixed_dictionaries({}, optional={"format": fmt}), "output": st.just({})}
        ),
        "type": st.sampled_from(["realtime", "transcription"]),
    },
)
part = st.builds(
    lambda t: {"type": t, "text": "x"}, st.sampled_from(["text", "input_text", "audio", "output_text"])
)
message = st.builds(
    lambda role, parts: {"type": "message", "role": role, "content": parts},
    st.sampled_from(["user", "system", "assistant"]),
    st.lists(part, max_size=3),
)
fc_output = st.builds(
    lambda out: {"type": "function_call_output", "call_id": "c", "output": out}, json_values
)
item = message | fc_output
beta_events = st.one_of(
    st.builds(lambda s: {"type": "session.update", "session": s}, beta_config),
    st.builds(
        lambda r, inp: {"type": "response.create", "response": {**r, **({"input": inp} if inp else {})}},
        beta_config,
        st.lists(item, max_size=3),
    ),
    st.builds(lambda i: {"type": "conversation.item.create", "item": i}, item),
    st.builds(
        lambda end: {
            "type": "conversation.item.truncate",
            "item_id": "i1",
            "content_index": 0,
            "audio_end_ms": end,
        },
        st.integers(0, 10_000),
    ),
    st.just({"type": "input_audio_buffer.commit"}),
)
random_events = st.builds(
    lambda t, body: {**body, "type": t},
    st.sampled_from(TYPES),
    st.dictionaries(st.sampled_from(VOCAB), shaped, max_size=6),
)


@st.composite
def states(draw: st.DrawFn) -> SessionState:
    route = draw(st.sampled_from(ROUTES))
    model = draw(st.sampled_from([None, "gpt-realtime", "whisper-1"]))
    transcription_model = model if route == "transcription" else None
    state = SessionState(SessionContext(route=route, model=model, transcription_model=transcription_model))
    state.session_tools = draw(st.lists(function_tool, max_size=3))
    state.tools_source = draw(st.sampled_from([None, "client", "server"]))
    state.session_type = draw(st.sampled_from([None, "realtime", "transcription"]))
    state.voice = draw(st.sampled_from([None, "alloy", "marin"]))
    state.assistant_audio_produced = draw(st.booleans())
    state.appended_audio_ms_upper_bound = draw(st.floats(0, 500))
    state.delivered_audio_ms = draw(st.dictionaries(st.sampled_from(["i1", "i2"]), st.floats(0, 5000)))
    return state


def check(event: dict[str, Any], state: SessionState) -> None:
    snapshot = copy.deepcopy(event)
    first = CHAIN.apply(event, state)
    assert event == snapshot, "the chain mutated its input"
    assert first.failures == []
    assert first.changed == (first.event is not event)
    second = CHAIN.apply(first.event, state)
    assert second.rewrites == [], "the chain is not idempotent"
    assert second.failures == []


@SETTINGS
@given(beta_events, states())
def test_beta_events_no_mutation_and_idempotent(event: dict[str, Any], state: SessionState) -> None:
    check(event, state)


@SETTINGS
@given(random_events, states())
def test_random_shapes_never_crash(event: dict[str, Any], state: SessionState) -> None:
    check(event, state)


@SETTINGS
@given(
    st.dictionaries(st.text(max_size=6), json_values, max_size=5), st.sampled_from([*TYPES, None]), states()
)
def test_random_json_never_crashes(body: dict[str, Any], etype: str | None, state: SessionState) -> None:
    if etype is not None:
        body = {**body, "type": etype}
    check(body, state)


@SETTINGS
@given(random_events, states(), st.sampled_from(["translation", "azure_preview"]))
def test_nothing_changes_on_translation_and_azure_preview_routes(
    event: dict[str, Any], state: SessionState, route: SessionRoute
) -> None:
    """Routes whose shape is not GA (translation sessions, the beta-shaped Azure preview)."""
    state.context = SessionContext(route=route)
    result = CHAIN.apply(event, state)
    assert result.event is event and result.rewrites == [] and result.failures == []
    if route == "translation":
        assert result.refusal is None


@SETTINGS
@given(st.dictionaries(st.text(max_size=6), json_values, max_size=5))
def test_unmatched_events_are_returned_untouched(body: dict[str, Any]) -> None:
    if isinstance(body.get("type"), str) and body["type"] in CHAIN.event_types:
        body = {**body, "type": "input_audio_buffer.append"}
    snapshot = copy.deepcopy(body)
    result = CHAIN.apply(body, SessionState())
    assert result.event is body and body == snapshot
    assert (result.rewrites, result.refusal, result.failures) == ([], None, [])
