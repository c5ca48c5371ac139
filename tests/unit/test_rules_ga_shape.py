from __future__ import annotations

import copy
from typing import Any

import pytest

from realtime_proxy.core.context import SessionContext
from realtime_proxy.core.rules import ChainResult, RuleChain, RuleRewrite, build_chain, rule_by_name
from realtime_proxy.core.session_state import SessionState

GA_SESSION = {
    "type": "session.update",
    "session": {
        "type": "realtime",
        "output_modalities": ["audio"],
        "instructions": "Be brief.",
        "max_output_tokens": 512,
        "audio": {
            "input": {
                "format": {"type": "audio/pcm", "rate": 24000},
                "turn_detection": {"type": "server_vad"},
            },
            "output": {"format": {"type": "audio/pcmu"}, "voice": "marin"},
        },
    },
}
GA_RESPONSE = {
    "type": "response.create",
    "response": {"output_modalities": ["text"], "max_output_tokens": "inf", "conversation": "none"},
}


def run(name: str, event: dict[str, Any], state: SessionState | None = None) -> ChainResult:
    snapshot = copy.deepcopy(event)
    result = RuleChain([rule_by_name(name)]).apply(event, state or SessionState())
    assert event == snapshot
    assert result.failures == []
    return result


@pytest.mark.parametrize("event", [GA_SESSION, GA_RESPONSE])
def test_full_chain_leaves_ga_events_alone(event: dict[str, Any]) -> None:
    result = build_chain().apply(event, SessionState())
    assert result.event is event and result.rewrites == []


@pytest.mark.parametrize("value", [["audio", "text"], ["text", "audio"]])
def test_modalities_renamed_and_reduced(value: list[str]) -> None:
    event = {"type": "session.update", "session": {"type": "realtime", "modalities": value}}
    result = run("modalities_to_output_modalities", event)
    assert result.event["session"] == {"type": "realtime", "output_modalities": ["audio"]}
    assert [(r.path, r.before, r.after) for r in result.rewrites] == [
        ("session.modalities", value, {"session.output_modalities": value}),
        ("session.output_modalities", value, ["audio"]),
    ]


def test_modalities_text_only_on_response() -> None:
    result = run(
        "modalities_to_output_modalities", {"type": "response.create", "response": {"modalities": ["text"]}}
    )
    assert result.event["response"] == {"output_modalities": ["text"]}


def test_modalities_dropped_when_output_modalities_present() -> None:
    event = {"type": "session.update", "session": {"modalities": ["text"], "output_modalities": ["audio"]}}
    result = run("modalities_to_output_modalities", event)
    assert result.event["session"] == {"output_modalities": ["audio"]}
    assert result.rewrites == [
        RuleRewrite("modalities_to_output_modalities", "session.modalities", ["text"], None, True)
    ]


def test_session_type_added_realtime() -> None:
    event = {"type": "session.update", "session": {"instructions": "hi"}}
    result = run("session_type_missing", event)
    assert result.event["session"] == {"instructions": "hi", "type": "realtime"}
    assert result.rewrites == [RuleRewrite("session_type_missing", "session.type", None, "realtime", True)]


@pytest.mark.parametrize(
    "session",
    [
        {"input_audio_transcription": {"model": "gpt-4o-transcribe"}},
        {"audio": {"input": {"transcription": {"model": "whisper-1"}, "format": {"type": "audio/pcm"}}}},
    ],
)
def test_session_type_never_guesses_transcription(session: dict[str, Any]) -> None:
    """Before session.created, an update that fits either session type is left alone: a guessed
    "transcription" on a realtime session is refused ("Passing a transcription session update
    event to a realtime session is not allowed")."""
    event = {"type": "session.update", "session": session}
    assert run("session_type_missing", event).event is event
    on_route = SessionState(SessionContext(route="transcription"))
    assert run("session_type_missing", event, on_route).event["session"]["type"] == "transcription"
    live = SessionState()
    live.observe_server(
        "session.created", {"type": "session.created", "session": {"type": "transcription"}}, ""
    )
    assert run("session_type_missing", event, live).event["session"]["type"] == "transcription"


def test_session_type_skips_translation_sessions() -> None:
    """A translation session's update has no `type`; adding one is refused."""
    state = SessionState(SessionContext(route="translation"))
    event = {"type": "session.update", "session": {"audio": {"output": {"language": "de"}}}}
    assert build_chain().apply(event, state).event is event


def test_session_type_prefers_known_session_type() -> None:
    state = SessionState()
    state.session_type = "realtime"
    event = {"type": "session.update", "session": {"input_audio_transcription": {"model": "whisper-1"}}}
    assert run("session_type_missing", event, state).event["session"]["type"] == "realtime"


def test_session_type_not_on_response_and_not_when_set() -> None:
    for event in (GA_RESPONSE, {"type": "session.update", "session": {"type": "transcription"}}):
        assert run("session_type_missing", event).event is event


@pytest.mark.parametrize(("etype", "key"), [("session.update", "session"), ("response.create", "response")])
def test_drop_temperature(etype: str, key: str) -> None:
    result = run("drop_temperature", {"type": etype, key: {"temperature": 0.8, "instructions": "x"}})
    assert result.event[key] == {"instructions": "x"}
    assert result.rewrites == [RuleRewrite("drop_temperature", f"{key}.temperature", 0.8, None, False)]
    assert not rule_by_name("drop_temperature").lossless


@pytest.mark.parametrize(("etype", "key"), [("session.update", "session"), ("response.create", "response")])
def test_max_response_output_tokens_renamed(etype: str, key: str) -> None:
    result = run("max_response_output_tokens", {"type": etype, key: {"max_response_output_tokens": "inf"}})
    assert result.event[key] == {"max_output_tokens": "inf"}
    assert result.rewrites[0].after == {f"{key}.max_output_tokens": "inf"}


def test_max_tokens_ga_name_wins() -> None:
    event = {"type": "response.create", "response": {"max_response_output_tokens": 5, "max_output_tokens": 9}}
    assert run("max_response_output_tokens", event).event["response"] == {"max_output_tokens": 9}


@pytest.mark.parametrize(
    "name",
    [
        "modalities_to_output_modalities",
        "session_type_missing",
        "drop_temperature",
        "max_response_output_tokens",
    ],
)
@pytest.mark.parametrize("payload", [None, 5, "x", [], {"modalities": 5, "session": None}])
def test_wrong_types_are_skipped(name: str, payload: Any) -> None:
    for key, etype in (("session", "session.update"), ("response", "response.create")):
        run(name, {"type": etype, key: payload})


def test_full_beta_session_update_becomes_ga() -> None:
    beta = {
        "type": "session.update",
        "event_id": "e1",
        "session": {
            "modalities": ["text", "audio"],
            "voice": "alloy",
            "input_audio_format": "pcm16",
            "output_audio_format": "g711_ulaw",
            "turn_detection": {"type": "server_vad"},
            "input_audio_transcription": {"model": "whisper-1"},
            "temperature": 0.7,
            "max_response_output_tokens": 200,
            "tool_choice": None,
            "tools": [{"type": "function", "function": {"name": "f", "parameters": {}}}],
        },
    }
    result = build_chain().apply(beta, SessionState())
    assert result.event == {
        "type": "session.update",
        "event_id": "e1",
        "session": {
            "type": "realtime",
            "output_modalities": ["audio"],
            "max_output_tokens": 200,
            "tool_choice": "auto",
            "tools": [{"type": "function", "name": "f", "parameters": {}}],
            "audio": {
                "input": {
                    "format": {"type": "audio/pcm", "rate": 24000},
                    "turn_detection": {"type": "server_vad"},
                    "transcription": {"model": "whisper-1"},
                },
                "output": {"voice": "alloy", "format": {"type": "audio/pcmu"}},
            },
        },
    }
    assert build_chain().apply(result.event, SessionState()).rewrites == []
