"""One failing client event per rule: what `realtime-proxy probe` sends to the API, and what the
end-to-end tests send to the fake (directly, where it must fail, and through the proxy).

Chosen to cost next to nothing: session updates, conversation items, out-of-band text
responses capped at a few tokens. Rules whose failure needs assistant audio first (a paid
audio response) are listed in `NOT_PROBED` with the reason.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

TEXT_ONLY: dict[str, Any] = {"conversation": "none", "output_modalities": ["text"], "max_output_tokens": 16}
RETURN_RESPONSE: dict[str, Any] = {
    "type": "function",
    "name": "return_response",
    "description": "Return the response to the agent",
    "parameters": {
        "type": "object",
        "properties": {"response": {"type": "string"}},
        "required": ["response"],
        "additionalProperties": False,
    },
}


@dataclass(frozen=True)
class Probe:
    rule: str
    event: dict[str, Any]  # the failing client event (sent with event_id "probe")
    accepted: tuple[str, ...]  # server event types that mean the API took it
    setup: tuple[dict[str, Any], ...] = ()  # sent first, answers ignored
    query: str = ""  # extra handshake query (the model is added per probed model)
    path: str = "/v1/realtime"
    model_in_query: bool = True
    fixed_model: str | None = None  # e.g. a transcription model, whatever model is probed
    live_start: dict[str, Any] | None = None  # Live: sent first, then session.started is awaited
    quiet_is_accepted: float = 0.0  # seconds of silence that mean "accepted" (Live acks no item)

    def target(self, model: str) -> str:
        parts = [f"model={self.fixed_model or model}"] if self.model_in_query else []
        parts += [self.query] if self.query else []
        return f"{self.path}?{'&'.join(parts)}" if parts else self.path


def _update(**session: Any) -> dict[str, Any]:
    return {"type": "session.update", "session": session}


def _response(**response: Any) -> dict[str, Any]:
    return {"type": "response.create", "response": {**TEXT_ONLY, **response}}


_UPDATED = ("session.updated",)
_ITEM = ("conversation.item.added", "conversation.item.created")
_DONE = ("response.done",)
_TRANSCRIPTION_FORMAT = {"format": {"type": "audio/pcm", "rate": 24000}}

PROBES: tuple[Probe, ...] = (
    Probe("tool_choice_null", _update(type="realtime", tool_choice=None), _UPDATED),
    Probe(
        "tool_choice_object",
        _response(
            instructions="Call return_response with the word OK.",
            tools=[RETURN_RESPONSE],
            tool_choice={"type": "function", "name": "return_response"},
            max_output_tokens=64,
            metadata={"response_type": "out-of-band"},
        ),
        _DONE,
    ),
    Probe(
        "chat_completions_tools",
        _update(type="realtime", tools=[{"type": "function", "function": {"name": "f", "parameters": {}}}]),
        _UPDATED,
    ),
    Probe(
        "function_tool_fields",
        _update(type="realtime", tools=[{**RETURN_RESPONSE, "strict": True}]),
        _UPDATED,
    ),
    Probe(
        "chat_completions_tool_choice",
        _update(
            type="realtime",
            tools=[RETURN_RESPONSE],
            tool_choice={"type": "function", "function": {"name": "return_response"}},
        ),
        _UPDATED,
    ),
    Probe(
        "modalities_to_output_modalities", _update(type="realtime", modalities=["audio", "text"]), _UPDATED
    ),
    Probe("session_type_missing", _update(instructions="Be brief."), _UPDATED),
    Probe(
        "read_only_session_fields",
        _update(type="realtime", id="sess_probe", object="realtime.session", expires_at=1),
        _UPDATED,
    ),
    Probe("flat_audio_settings", _update(type="realtime", voice="marin"), _UPDATED),
    Probe("null_speed", _update(type="realtime", audio={"output": {"speed": None}}), _UPDATED),
    Probe("audio_format_strings", _update(type="realtime", audio={"input": {"format": "pcm16"}}), _UPDATED),
    Probe(
        "transcription_handshake_model",
        _update(type="transcription", audio={"input": dict(_TRANSCRIPTION_FORMAT)}),
        _UPDATED,
        query="intent=transcription",
        fixed_model="gpt-4o-transcribe",
    ),
    Probe(
        "transcription_session_update",
        {"type": "transcription_session.update", "session": {"input_audio_format": "pcm16"}},
        _UPDATED,
        query="intent=transcription",
        model_in_query=False,
    ),
    Probe("drop_temperature", _update(type="realtime", temperature=0.8), _UPDATED),
    Probe("max_response_output_tokens", _update(type="realtime", max_response_output_tokens=100), _UPDATED),
    Probe("max_output_tokens_bounds", _response(instructions="Reply with OK.", max_output_tokens=0), _DONE),
    Probe(
        "content_part_types",
        {
            "type": "conversation.item.create",
            "item": {
                "type": "message",
                "role": "assistant",
                "content": [{"type": "output_audio", "transcript": "Hello."}],
            },
        },
        _ITEM,
    ),
    Probe(
        "function_call_output_string",
        {
            "type": "conversation.item.create",
            "item": {"type": "function_call_output", "call_id": "call_probe", "output": {"ok": True}},
        },
        _ITEM,
        setup=(
            {
                "type": "conversation.item.create",
                "item": {"type": "function_call", "call_id": "call_probe", "name": "f", "arguments": "{}"},
            },
        ),
    ),
    Probe(
        "empty_commit",
        {"type": "input_audio_buffer.commit"},
        ("input_audio_buffer.committed",),
        setup=({"type": "input_audio_buffer.append", "audio": "AAAA" * 240},),  # 720 bytes: 15 ms
    ),
)
LIVE_PROBES: tuple[Probe, ...] = (
    Probe(
        "live_function_output_item",
        {
            "type": "conversation.item.create",
            "item": {"type": "function_call_output", "call_id": "call_probe", "output": "{}"},
        },
        (),
        path="/v1/live/sessions",
        model_in_query=False,
        live_start={"type": "session.start", "session": {"model": "gpt-live-1"}},
        quiet_is_accepted=2.0,
    ),
)
PROBES = (*PROBES, *LIVE_PROBES)

NOT_PROBED: dict[str, str] = {
    "voice_after_audio": "needs assistant audio first (a paid audio response)",
    "truncate_past_audio": "needs assistant audio first (a paid audio response)",
    "tool_choice_object_in_band": "no failure evidenced in-band (a switch, off by default)",
    "live_model_on_realtime": "a handshake refusal by the proxy (HTTP 400 before any upstream contact)",
    "live_hold_until_started": "holds commands in time (a gate, not an event rewrite)",
}
