"""The rules added from field reports: function tool fields, Chat-Completions tool_choice,
read-only session fields, max_output_tokens bounds, and the transcription session's model."""

from __future__ import annotations

import copy
from typing import Any

import pytest

from realtime_proxy.core.context import SessionContext
from realtime_proxy.core.rules import ChainResult, RuleChain, RuleRewrite, build_chain, rule_by_name
from realtime_proxy.core.session_state import SessionState

LOOKUP = {"type": "function", "name": "lookup", "description": "d", "parameters": {"type": "object"}}


def run(name: str, event: dict[str, Any], state: SessionState | None = None) -> ChainResult:
    snapshot = copy.deepcopy(event)
    result = RuleChain([rule_by_name(name)]).apply(event, state or SessionState())
    assert event == snapshot
    return result


@pytest.mark.parametrize(("etype", "key"), [("session.update", "session"), ("response.create", "response")])
def test_function_tool_fields_stripped(etype: str, key: str) -> None:
    mcp = {"type": "mcp", "server_label": "s", "require_approval": "never"}
    tools = [
        {**LOOKUP, "strict": True, "meta": {"x": 1}},
        mcp,
        {"type": "function", "function": {"name": "f"}},
    ]
    result = run("function_tool_fields", {"type": etype, key: {"tools": tools}})
    assert result.event[key]["tools"] == [LOOKUP, mcp, tools[2]]
    assert result.rewrites == [
        RuleRewrite("function_tool_fields", f"{key}.tools[0].strict", True, None, False),
        RuleRewrite("function_tool_fields", f"{key}.tools[0].meta", {"x": 1}, None, False),
    ]


def test_function_tool_fields_leave_valid_and_wrong_types_alone() -> None:
    for tools in ([LOOKUP], "x", [5, None]):
        event = {"type": "session.update", "session": {"type": "realtime", "tools": tools}}
        assert run("function_tool_fields", event).event is event


def test_chat_completions_tool_choice_in_session_update() -> None:
    choice = {"type": "function", "function": {"name": "lookup"}}
    event = {"type": "session.update", "session": {"type": "realtime", "tool_choice": choice}}
    result = run("chat_completions_tool_choice", event)
    assert result.event["session"]["tool_choice"] == {"type": "function", "name": "lookup"}
    assert result.rewrites == [
        RuleRewrite(
            "chat_completions_tool_choice",
            "session.tool_choice",
            choice,
            {"type": "function", "name": "lookup"},
            True,
        )
    ]
    for choice in ({"type": "function", "name": "lookup"}, {"type": "function", "function": 5}, "auto"):
        event = {"type": "session.update", "session": {"tool_choice": choice}}
        assert run("chat_completions_tool_choice", event).event is event


def test_read_only_session_fields_stripped_and_secret_not_recorded() -> None:
    session = {
        "type": "realtime",
        "id": "sess_1",
        "object": "realtime.session",
        "expires_at": 1700000000,
        "client_secret": {"value": "ek_SECRET", "expires_at": 1},
        "instructions": "x",
    }
    result = run("read_only_session_fields", {"type": "session.update", "session": session})
    assert result.event["session"] == {"type": "realtime", "instructions": "x"}
    assert [(r.path, r.before) for r in result.rewrites] == [
        ("session.id", "sess_1"),
        ("session.object", "realtime.session"),
        ("session.expires_at", 1700000000),
        ("session.client_secret", "<redacted>"),
    ]
    assert "ek_SECRET" not in repr(result.rewrites)


@pytest.mark.parametrize(
    ("given", "expected"),
    [
        (0, 1),
        (-5, 1),
        (5000, 4096),
        (300.7, 300),
        ("300", 300),
        ("INF", "inf"),
        ("Infinity", "inf"),
        (1e999, "inf"),
    ],
)
def test_max_output_tokens_clamped(given: Any, expected: Any) -> None:
    result = run(
        "max_output_tokens_bounds", {"type": "response.create", "response": {"max_output_tokens": given}}
    )
    assert result.event["response"]["max_output_tokens"] == expected
    assert type(result.event["response"]["max_output_tokens"]) is type(expected)
    assert result.rewrites == [
        RuleRewrite("max_output_tokens_bounds", "response.max_output_tokens", given, expected, False)
    ]


@pytest.mark.parametrize("value", [1, 4096, 300, "inf", None, True, "many", {"x": 1}])
def test_max_output_tokens_left_alone(value: Any) -> None:
    event = {"type": "session.update", "session": {"type": "realtime", "max_output_tokens": value}}
    assert run("max_output_tokens_bounds", event).event is event


def transcription_state(model: str | None = "gpt-4o-transcribe") -> SessionState:
    return SessionState(SessionContext(route="transcription", model=model, transcription_model=model))


def test_transcription_model_goes_into_the_first_update() -> None:
    state = transcription_state()
    event = {
        "type": "session.update",
        "session": {"type": "transcription", "audio": {"input": {"format": {"type": "audio/pcm"}}}},
    }
    result = run("transcription_handshake_model", event, state)
    assert result.event["session"]["audio"]["input"]["transcription"] == {"model": "gpt-4o-transcribe"}
    assert result.rewrites == [
        RuleRewrite(
            "transcription_handshake_model",
            "?model",
            "gpt-4o-transcribe",
            {"session.audio.input.transcription.model": "gpt-4o-transcribe"},
            True,
        )
    ]
    # Once the server reports a transcription model, later updates are the client's own.
    updated = {
        "type": "session.updated",
        "session": {"type": "transcription", "audio": {"input": {"transcription": {"model": "m"}}}},
    }
    state.observe_server("session.updated", updated, "")
    assert run("transcription_handshake_model", event, state).event is event


@pytest.mark.parametrize(
    "audio_input",
    [{"transcription": None}, {"transcription": {"model": "whisper-1"}}, {"transcription": "x"}],
)
def test_transcription_model_respects_the_clients_choice(audio_input: dict[str, Any]) -> None:
    event = {"type": "session.update", "session": {"type": "transcription", "audio": {"input": audio_input}}}
    assert run("transcription_handshake_model", event, transcription_state()).event is event
    assert run("transcription_handshake_model", event, transcription_state(None)).event is event


def test_transcription_session_update_for_ga_clients_then_the_session_rules() -> None:
    event = {
        "type": "transcription_session.update",
        "session": {
            "input_audio_format": "pcm16",
            "input_audio_transcription": {"model": "whisper-1"},
            "client_secret": {},
        },
    }
    result = build_chain().apply(event, SessionState(SessionContext(route="transcription")))
    assert result.event == {
        "type": "session.update",
        "session": {
            "type": "transcription",
            "audio": {
                "input": {
                    "format": {"type": "audio/pcm", "rate": 24000},
                    "transcription": {"model": "whisper-1"},
                }
            },
        },
    }
    assert result.rewrites[0] == RuleRewrite(
        "transcription_session_update", "transcription_session.update", None, "session.update", True
    )


def test_transcription_session_update_left_alone_unless_certain() -> None:
    event = {"type": "transcription_session.update", "session": {"input_audio_format": "pcm16"}}
    assert build_chain().apply(event, SessionState()).event is event  # plain route, type unknown
    realtime = SessionState()
    realtime.observe_server(
        "session.created", {"type": "session.created", "session": {"type": "realtime"}}, ""
    )
    assert build_chain().apply(event, realtime).event is event


def test_null_speed_dropped_flat_or_nested() -> None:
    from realtime_proxy.core.rules import build_chain

    event = {"type": "session.update", "session": {"type": "realtime", "speed": None, "instructions": "x"}}
    result = build_chain().apply(event, SessionState())  # flat_audio_settings nests it first
    assert result.event["session"] == {"type": "realtime", "instructions": "x", "audio": {"output": {}}}
    assert ("null_speed", "session.audio.output.speed") in [(r.rule, r.path) for r in result.rewrites]
    for speed in (1.2, "fast"):
        kept = {
            "type": "session.update",
            "session": {"type": "realtime", "audio": {"output": {"speed": speed}}},
        }
        assert run("null_speed", kept).event is kept
