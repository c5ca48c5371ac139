"""Beta compatibility mode: handshake, client -> GA and server -> beta translation.

Every translated server frame is checked the way a beta client sees it: validated against the
beta SDK's `RealtimeServerEvent` union, and parsed with the beta client's own `parse_event`
path (`construct_type_unchecked`)."""

from __future__ import annotations

import base64
import json
from typing import Any, cast

import pytest
from hypothesis import given
from hypothesis import strategies as st
from openai._models import construct_type_unchecked
from openai.types import realtime as ga
from openai.types.beta import realtime as beta
from pydantic import TypeAdapter

from realtime_proxy.core import compat, events
from realtime_proxy.core.compat import (
    BETA_SUBPROTOCOL,
    CLIENT_TYPES,
    DROP,
    SERVER_BODY_TYPES,
    Translation,
    client_event_to_ga,
    is_beta_handshake,
    server_frame_to_beta,
    server_type_to_beta,
    strip_beta_markers,
)
from realtime_proxy.core.compat import events as compat_events

BETA_EVENTS: TypeAdapter[Any] = TypeAdapter(beta.RealtimeServerEvent)
GA_EVENTS: TypeAdapter[Any] = TypeAdapter(ga.RealtimeServerEvent)


def ga_frame(event: dict[str, Any]) -> str:
    """A GA server frame, after checking the fixture is a valid GA event."""
    GA_EVENTS.validate_python(event)
    return json.dumps(event)  # json keeps key order: "type" leads, as the server sends it


def beta_parse(frame: str) -> Any:
    """Validate strictly against the beta union, then parse the way the beta client does."""
    BETA_EVENTS.validate_json(frame)
    return sdk_parse(frame)


def sdk_parse(frame: str) -> Any:
    # Same call as openai.resources.beta.realtime.realtime.AsyncRealtimeConnection.parse_event.
    return construct_type_unchecked(value=json.loads(frame), type_=cast(Any, beta.RealtimeServerEvent))


def translate(frame: str) -> str:
    out = server_frame_to_beta(events.sniff_type(frame), frame)
    assert out  # neither None (unchanged) nor DROP
    return out


# --- handshake ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("headers", "subprotocols", "expected"),
    [
        ({"openai-beta": "realtime=v1"}, [], True),
        ({"openai-beta": "Realtime=V1"}, [], True),
        ({"openai-beta": "assistants=v2, realtime=v1"}, [], True),
        ({"openai-beta": "realtime = v1"}, [], True),
        ({"OpenAI-Beta": "realtime=v1"}, [], True),
        ({"openai-beta": "realtime=v2"}, [], False),
        ({"openai-beta": "assistants=v2"}, [], False),
        ({"authorization": "Bearer realtime=v1"}, [], False),
        ({}, ["realtime", BETA_SUBPROTOCOL], True),
        ({}, ["realtime", "OpenAI-Beta.Realtime-V1"], True),
        ({}, ["realtime", "openai-insecure-api-key.sk-x"], False),
        ({}, [], False),
    ],
)
def test_is_beta_handshake(headers: dict[str, str], subprotocols: list[str], expected: bool) -> None:
    assert is_beta_handshake(headers, subprotocols) is expected


def test_strip_beta_markers_returns_copies_without_markers() -> None:
    headers = {"authorization": "Bearer sk", "openai-beta": "realtime=v1", "user-agent": "x"}
    protocols = ["realtime", BETA_SUBPROTOCOL, "openai-insecure-api-key.sk"]
    kept_headers, kept_protocols = strip_beta_markers(headers, protocols)
    assert kept_headers == {"authorization": "Bearer sk", "user-agent": "x"}
    assert kept_protocols == ["realtime", "openai-insecure-api-key.sk"]
    assert "openai-beta" in headers and BETA_SUBPROTOCOL in protocols  # inputs untouched
    assert not is_beta_handshake(kept_headers, kept_protocols)


def test_strip_beta_markers_keeps_other_beta_flags() -> None:
    kept, _ = strip_beta_markers({"OpenAI-Beta": "assistants=v2, realtime=v1"}, [])
    assert kept == {"OpenAI-Beta": "assistants=v2"}


# --- pure renames --------------------------------------------------------------------------------

IDS = {"event_id": "event_1", "response_id": "resp_1", "item_id": "item_1", "output_index": 0}


@pytest.mark.parametrize(
    ("ga_type", "beta_type", "body", "model"),
    [
        ("response.output_text.delta", "response.text.delta", {"delta": "Hi"}, beta.ResponseTextDeltaEvent),
        ("response.output_text.done", "response.text.done", {"text": "Hi"}, beta.ResponseTextDoneEvent),
        (
            "response.output_audio.delta",
            "response.audio.delta",
            {"delta": "AAAA"},
            beta.ResponseAudioDeltaEvent,
        ),
        ("response.output_audio.done", "response.audio.done", {}, beta.ResponseAudioDoneEvent),
        (
            "response.output_audio_transcript.delta",
            "response.audio_transcript.delta",
            {"delta": "He"},
            beta.ResponseAudioTranscriptDeltaEvent,
        ),
        (
            "response.output_audio_transcript.done",
            "response.audio_transcript.done",
            {"transcript": "Hello"},
            beta.ResponseAudioTranscriptDoneEvent,
        ),
    ],
)
@pytest.mark.parametrize("event_id_first", [False, True])
def test_renamed_server_events_parse_as_beta(
    ga_type: str, beta_type: str, body: dict[str, Any], model: type[Any], event_id_first: bool
) -> None:
    head = {"event_id": "event_1", "type": ga_type} if event_id_first else {"type": ga_type}
    frame = ga_frame({**head, **IDS, "content_index": 0, **body})
    assert server_type_to_beta(ga_type) == beta_type
    out = translate(frame)
    assert out == frame.replace(ga_type, beta_type, 1)  # only the type string changed
    parsed = beta_parse(out)
    assert isinstance(parsed, model)
    assert parsed.type == beta_type


def test_audio_delta_is_renamed_without_parsing(monkeypatch: pytest.MonkeyPatch) -> None:
    def refuse(frame: Any) -> None:
        raise AssertionError("audio frames must not be parsed")

    monkeypatch.setattr(events, "parse_object", refuse)
    payload = base64.b64encode(bytes(range(256)) * 60).decode()  # 20 KB of base64
    assert len(payload) >= 20_000
    frame = (
        '{"type":"response.output_audio.delta","event_id":"event_9","response_id":"resp_1",'
        f'"item_id":"item_1","output_index":0,"content_index":0,"delta":"{payload}"}}'
    )
    out = translate(frame)
    assert out.startswith('{"type":"response.audio.delta",')
    assert out.endswith(f'"delta":"{payload}"}}')
    monkeypatch.undo()
    parsed = beta_parse(out)
    assert isinstance(parsed, beta.ResponseAudioDeltaEvent)
    assert parsed.delta == payload


def test_rename_when_type_does_not_lead_the_frame() -> None:
    frame = json.dumps(
        {
            "response_id": "resp_1",
            "type": "response.output_text.delta",
            **IDS,
            "content_index": 0,
            "delta": "x",
        }
    )
    assert events.sniff_type(frame) is None
    out = server_frame_to_beta(None, frame)
    assert out is not None
    assert isinstance(beta_parse(out), beta.ResponseTextDeltaEvent)


# --- sessions ----------------------------------------------------------------------------------

TOOL = {"type": "function", "name": "get_weather", "description": "Weather", "parameters": {"type": "object"}}
GA_SESSION: dict[str, Any] = {
    "type": "realtime",
    "object": "realtime.session",
    "id": "sess_1",
    "model": "gpt-realtime",
    "output_modalities": ["audio"],
    "instructions": "Be brief.",
    "tools": [TOOL],
    "tool_choice": "auto",
    "max_output_tokens": "inf",
    "tracing": None,
    "prompt": None,
    "expires_at": 1_760_000_000,
    "audio": {
        "input": {
            "format": {"type": "audio/pcm", "rate": 24000},
            "transcription": {"model": "whisper-1", "language": "en"},
            "noise_reduction": {"type": "near_field"},
            "turn_detection": {
                "type": "server_vad",
                "threshold": 0.5,
                "prefix_padding_ms": 300,
                "silence_duration_ms": 500,
                "create_response": True,
                "interrupt_response": True,
            },
        },
        "output": {"format": {"type": "audio/pcm", "rate": 24000}, "voice": "alloy", "speed": 1.1},
    },
}


@pytest.mark.parametrize(
    ("ga_type", "model"),
    [("session.created", beta.SessionCreatedEvent), ("session.updated", beta.SessionUpdatedEvent)],
)
def test_session_events_become_beta_sessions(ga_type: str, model: type[Any]) -> None:
    out = translate(ga_frame({"type": ga_type, "event_id": "event_1", "session": GA_SESSION}))
    parsed = beta_parse(out)
    assert isinstance(parsed, model)
    session = parsed.session
    assert isinstance(session, beta.Session)
    assert session.id == "sess_1"
    assert session.object == "realtime.session"  # type: ignore[attr-defined]
    assert session.modalities == ["text", "audio"]
    assert session.voice == "alloy"
    assert session.speed == 1.1
    assert session.input_audio_format == "pcm16"
    assert session.output_audio_format == "pcm16"
    assert session.max_response_output_tokens == "inf"
    assert session.temperature == 0.8
    assert session.instructions == "Be brief."
    assert session.tool_choice == "auto"
    assert session.tools is not None and session.tools[0].name == "get_weather"
    assert session.input_audio_transcription is not None
    assert session.input_audio_transcription.model == "whisper-1"
    assert session.input_audio_noise_reduction is not None
    assert session.input_audio_noise_reduction.type == "near_field"
    assert session.turn_detection is not None and session.turn_detection.silence_duration_ms == 500
    raw = json.loads(out)["session"]
    assert not {"audio", "output_modalities", "max_output_tokens", "type"} & raw.keys()


def test_text_only_g711_session() -> None:
    session = {
        **GA_SESSION,
        "output_modalities": ["text"],
        "max_output_tokens": 512,
        "audio": {"input": {"format": {"type": "audio/pcmu"}}, "output": {"format": {"type": "audio/pcma"}}},
    }
    parsed = beta_parse(translate(ga_frame({"type": "session.updated", "event_id": "e", "session": session})))
    assert parsed.session.modalities == ["text"]
    assert parsed.session.input_audio_format == "g711_ulaw"
    assert parsed.session.output_audio_format == "g711_alaw"
    assert parsed.session.max_response_output_tokens == 512


def test_transcription_session_updated_becomes_beta_transcription_event() -> None:
    session = {
        "type": "transcription",
        "object": "realtime.transcription_session",
        "id": "sess_t",
        "audio": {
            "input": {
                "format": {"type": "audio/pcm", "rate": 24000},
                "transcription": {"model": "gpt-4o-transcribe", "language": "en"},
                "turn_detection": {"type": "server_vad", "threshold": 0.5},
                "noise_reduction": None,
            }
        },
    }
    out = translate(ga_frame({"type": "session.updated", "event_id": "e", "session": session}))
    parsed = sdk_parse(out)  # strict validation would demand a REST-only client_secret
    assert isinstance(parsed, beta.TranscriptionSessionUpdatedEvent)
    assert parsed.type == "transcription_session.updated"
    raw = json.loads(out)["session"]
    assert raw["input_audio_format"] == "pcm16"
    assert raw["input_audio_transcription"] == {"model": "gpt-4o-transcribe", "language": "en"}
    assert raw["turn_detection"]["type"] == "server_vad"
    assert "audio" not in raw
    created = json.loads(
        translate(ga_frame({"type": "session.created", "event_id": "e", "session": session}))
    )
    assert created["type"] == "transcription_session.created"


# --- items, parts, responses ---------------------------------------------------------------------

ASSISTANT_ITEM = {
    "id": "item_2",
    "object": "realtime.item",
    "type": "message",
    "role": "assistant",
    "status": "completed",
    "content": [
        {"type": "output_audio", "transcript": "Hello there"},
        {"type": "output_text", "text": "Hello there"},
    ],
}
CALL_ITEM = {
    "id": "item_3",
    "object": "realtime.item",
    "type": "function_call",
    "status": "completed",
    "call_id": "call_1",
    "name": "get_weather",
    "arguments": '{"city":"Paris"}',
}
USER_ITEM = {
    "id": "item_1",
    "object": "realtime.item",
    "type": "message",
    "role": "user",
    "status": "completed",
    "content": [{"type": "input_text", "text": "Hi"}, {"type": "input_audio", "transcript": None}],
}


def test_conversation_item_added_becomes_created() -> None:
    frame = ga_frame(
        {
            "type": "conversation.item.added",
            "event_id": "e",
            "previous_item_id": "item_1",
            "item": ASSISTANT_ITEM,
        }
    )
    assert server_type_to_beta("conversation.item.added") == "conversation.item.created"
    parsed = beta_parse(translate(frame))
    assert isinstance(parsed, beta.ConversationItemCreatedEvent)
    assert parsed.previous_item_id == "item_1"
    assert [part.type for part in parsed.item.content] == ["audio", "text"]
    assert parsed.item.content[0].transcript == "Hello there"


def test_user_item_parts_keep_input_types() -> None:
    frame = ga_frame({"type": "conversation.item.added", "event_id": "e", "item": USER_ITEM})
    parsed = beta_parse(translate(frame))
    assert [part.type for part in parsed.item.content] == ["input_text", "input_audio"]


def test_conversation_item_done_is_dropped() -> None:
    frame = ga_frame({"type": "conversation.item.done", "event_id": "e", "item": ASSISTANT_ITEM})
    assert server_frame_to_beta("conversation.item.done", frame) == DROP
    assert server_frame_to_beta(None, " " + frame.replace('"type"', '"x":1,"type"', 1)) == DROP


@pytest.mark.parametrize(
    ("ga_type", "model"),
    [
        ("response.output_item.added", beta.ResponseOutputItemAddedEvent),
        ("response.output_item.done", beta.ResponseOutputItemDoneEvent),
    ],
)
def test_output_item_events(ga_type: str, model: type[Any]) -> None:
    frame = ga_frame(
        {"type": ga_type, "event_id": "e", "response_id": "resp_1", "output_index": 0, "item": ASSISTANT_ITEM}
    )
    parsed = beta_parse(translate(frame))
    assert isinstance(parsed, model)
    assert [part.type for part in parsed.item.content] == ["audio", "text"]


@pytest.mark.parametrize(
    ("ga_type", "model"),
    [
        ("response.content_part.added", beta.ResponseContentPartAddedEvent),
        ("response.content_part.done", beta.ResponseContentPartDoneEvent),
    ],
)
@pytest.mark.parametrize(
    ("ga_part", "beta_part"), [("output_text", "text"), ("output_audio", "audio"), ("text", "text")]
)
def test_content_part_events(ga_type: str, model: type[Any], ga_part: str, beta_part: str) -> None:
    event = {
        "type": ga_type,
        "event_id": "e",
        **IDS,
        "content_index": 0,
        "part": {"type": ga_part, "text": ""},
    }
    frame = json.dumps(event)  # the GA SDK types only know "text"/"audio" parts; the API sends either
    parsed = beta_parse(translate(frame))
    assert isinstance(parsed, model)
    assert parsed.part.type == beta_part


def ga_response(status: str, output: list[dict[str, Any]]) -> dict[str, Any]:
    return {
        "id": "resp_1",
        "object": "realtime.response",
        "status": status,
        "status_details": None,
        "conversation_id": "conv_1",
        "output_modalities": ["audio"],
        "max_output_tokens": "inf",
        "audio": {"output": {"format": {"type": "audio/pcm", "rate": 24000}, "voice": "alloy"}},
        "metadata": {"topic": "weather"},
        "output": output,
        "usage": {"total_tokens": 30, "input_tokens": 10, "output_tokens": 20},
    }


def test_response_done_with_function_call_and_message() -> None:
    frame = ga_frame(
        {
            "type": "response.done",
            "event_id": "e",
            "response": ga_response("completed", [ASSISTANT_ITEM, CALL_ITEM]),
        }
    )
    parsed = beta_parse(translate(frame))
    assert isinstance(parsed, beta.ResponseDoneEvent)
    response = parsed.response
    assert response.modalities == ["text", "audio"]
    assert response.output_audio_format == "pcm16"
    assert response.voice == "alloy"
    assert response.max_output_tokens == "inf"  # the beta response used this name too
    assert response.metadata == {"topic": "weather"}
    message, call = response.output
    assert [part.type for part in message.content] == ["audio", "text"]
    assert (call.type, call.name, call.call_id, call.arguments) == (
        "function_call",
        "get_weather",
        "call_1",
        '{"city":"Paris"}',
    )
    assert not {"audio", "output_modalities"} & json.loads(translate(frame))["response"].keys()


def test_response_created_text_only() -> None:
    response = {**ga_response("in_progress", []), "output_modalities": ["text"]}
    parsed = beta_parse(
        translate(ga_frame({"type": "response.created", "event_id": "e", "response": response}))
    )
    assert isinstance(parsed, beta.ResponseCreatedEvent)
    assert parsed.response.modalities == ["text"]


def test_body_types_cover_every_item_bearing_event() -> None:
    assert {"session.created", "conversation.item.added", "response.done", "response.content_part.added"} <= (
        SERVER_BODY_TYPES
    )
    assert "response.output_audio.delta" not in SERVER_BODY_TYPES


# --- unchanged frames ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("event_type", "frame"),
    [
        (None, "not json"),
        (None, "[1, 2]"),
        (None, '{"no_type": 1}'),
        ("session.created", '{"type":"session.created", broken'),
        ("input_audio_buffer.speech_started", '{"type":"input_audio_buffer.speech_started","event_id":"e"}'),
        ("error", '{"type":"error","event_id":"e","error":{"type":"invalid_request_error"}}'),
        ("mcp_list_tools.completed", '{"type":"mcp_list_tools.completed","event_id":"e","item_id":"i"}'),
        ("some.future_event", '{"type":"some.future_event"}'),
        (None, '{"event_id":"e","x":1,"type":"rate_limits.updated","rate_limits":[]}'),
    ],
)
def test_frames_left_unchanged(event_type: str | None, frame: str) -> None:
    assert server_frame_to_beta(event_type, frame) is None


def test_unchanged_types_have_no_beta_name() -> None:
    assert server_type_to_beta("response.function_call_arguments.delta") is None
    assert server_type_to_beta("session.created") is None


@given(st.text(max_size=200))
def test_arbitrary_text_never_raises(frame: str) -> None:
    for event_type in (None, events.sniff_type(frame), "response.done", "response.output_text.delta"):
        server_frame_to_beta(event_type, frame)


@given(
    st.recursive(
        st.none() | st.booleans() | st.integers() | st.text(max_size=5),
        lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=8), inner, max_size=3),
        max_leaves=12,
    ),
    st.sampled_from(sorted(SERVER_BODY_TYPES)),
)
def test_malformed_bodies_never_raise(body: Any, event_type: str) -> None:
    for key in ("session", "item", "part", "response"):
        server_frame_to_beta(event_type, json.dumps({"type": event_type, key: body}))


# --- client -> GA --------------------------------------------------------------------------------


def test_transcription_session_update_becomes_ga_session_update() -> None:
    event = {
        "type": "transcription_session.update",
        "event_id": "client_1",
        "session": {
            "input_audio_format": "pcm16",
            "input_audio_transcription": {"model": "gpt-4o-transcribe", "language": "en", "prompt": "tech"},
            "turn_detection": {"type": "server_vad", "threshold": 0.5, "silence_duration_ms": 400},
            "input_audio_noise_reduction": {"type": "far_field"},
            "include": ["item.input_audio_transcription.logprobs"],
            "modalities": ["text"],
            "client_secret": {"expires_at": {"anchor": "created_at", "seconds": 600}},
        },
    }
    assert event["type"] in CLIENT_TYPES
    done = client_event_to_ga(event)
    assert event == {
        "type": "session.update",
        "event_id": "client_1",
        "session": {
            "type": "transcription",
            "include": ["item.input_audio_transcription.logprobs"],
            "audio": {
                "input": {
                    "format": {"type": "audio/pcm", "rate": 24000},
                    "transcription": {"model": "gpt-4o-transcribe", "language": "en", "prompt": "tech"},
                    "turn_detection": {"type": "server_vad", "threshold": 0.5, "silence_duration_ms": 400},
                    "noise_reduction": {"type": "far_field"},
                }
            },
        },
    }
    parsed = ga.SessionUpdateEvent.model_validate(event)
    assert isinstance(parsed.session, ga.RealtimeTranscriptionSessionCreateRequest)
    assert Translation("client_to_ga", "transcription_session.update", "session.update") in done
    assert Translation("client_to_ga", "session.input_audio_format", "session.audio.input.format") in done
    assert Translation("client_to_ga", "session.client_secret", "(dropped)") in done


@pytest.mark.parametrize(
    ("beta_format", "ga_format"), [("g711_ulaw", "audio/pcmu"), ("g711_alaw", "audio/pcma")]
)
def test_transcription_update_g711_formats(beta_format: str, ga_format: str) -> None:
    event = {"type": "transcription_session.update", "session": {"input_audio_format": beta_format}}
    client_event_to_ga(event)
    assert event["session"]["audio"]["input"]["format"] == {"type": ga_format}
    ga.SessionUpdateEvent.model_validate(event)


def test_minimal_transcription_update() -> None:
    event: dict[str, Any] = {"type": "transcription_session.update"}
    assert client_event_to_ga(event) == [
        Translation("client_to_ga", "transcription_session.update", "session.update")
    ]
    assert event == {"type": "session.update", "session": {"type": "transcription"}}


def test_session_update_drops_client_secret_only() -> None:
    event = {
        "type": "session.update",
        "session": {"modalities": ["text", "audio"], "voice": "alloy", "client_secret": {}},
    }
    assert client_event_to_ga(event) == [Translation("client_to_ga", "session.client_secret", "(dropped)")]
    assert event == {"type": "session.update", "session": {"modalities": ["text", "audio"], "voice": "alloy"}}


@pytest.mark.parametrize(
    "event",
    [
        {"type": "session.update", "session": {"instructions": "x"}},
        {"type": "response.create", "response": {"modalities": ["text"]}},
        {"type": "input_audio_buffer.append", "audio": "AAAA"},
    ],
)
def test_other_client_events_untouched(event: dict[str, Any]) -> None:
    before = json.loads(json.dumps(event))
    assert client_event_to_ga(event) == []
    assert event == before


def test_compat_reexports_public_api() -> None:
    for name in compat.__all__:
        assert hasattr(compat, name), name
    assert compat.Translation is compat_events.Translation
