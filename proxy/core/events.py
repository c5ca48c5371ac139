"""Cheap classification of raw frames, and the only JSON (de)serialisation the proxy does.

Audio frames (`input_audio_buffer.append`, `response.output_audio.delta`) are the bulk of the
traffic: they are classified by a regex on the first bytes and never parsed.
"""

from __future__ import annotations

import re
from typing import Any

import orjson

from proxy.core.actions import Frame

# `{"type":"x"` or `{"event_id":"e","type":"x"` with any JSON whitespace: what every SDK sends.
_LEADING_TYPE = re.compile(r'\s*\{\s*(?:"event_id"\s*:\s*"[^"\\]*"\s*,\s*)?"type"\s*:\s*"([^"\\]{1,128})"')
_LEADING_TYPE_B = re.compile(_LEADING_TYPE.pattern.encode())


_COMPACT_PREFIX = '{"type":"'


def sniff_type(frame: Frame) -> str | None:
    """The event type when it leads the frame, else None (the caller then parses)."""
    if isinstance(frame, str):
        if frame.startswith(_COMPACT_PREFIX):  # the API's own compact form: skip the regex
            end = frame.find('"', 9, 140)
            if end > 9 and "\\" not in frame[9:end]:
                return frame[9:end]
        match = _LEADING_TYPE.match(frame)
        return match.group(1) if match else None
    match_b = _LEADING_TYPE_B.match(frame)
    return match_b.group(1).decode() if match_b else None


_FIELD_CACHE: dict[str, re.Pattern[str]] = {}
_HEAD = 320


def sniff_string_field(frame: str, name: str) -> str | None:
    """First `"name":"value"` string pair anywhere in a text frame, without parsing it.

    Base64 never contains a quote, so audio payloads cannot produce false matches.
    Use only for fields that occur once per event (e.g. `item_id`, `response_id`).
    The API puts ids before the payload, so the head is searched first, then the rest."""
    pattern = _FIELD_CACHE.get(name)
    if pattern is None:
        pattern = _FIELD_CACHE[name] = re.compile(r'"' + re.escape(name) + r'"\s*:\s*"([^"\\]*)"')
    match = pattern.search(frame, 0, _HEAD) or (pattern.search(frame) if len(frame) > _HEAD else None)
    return match.group(1) if match else None


def parse_object(frame: Frame) -> dict[str, Any] | None:
    """The frame as a JSON object, or None when it is not one (malformed JSON, arrays, ...)."""
    try:
        value = orjson.loads(frame)
    except (orjson.JSONDecodeError, RecursionError):
        return None
    return value if isinstance(value, dict) else None


def dump(event: dict[str, Any]) -> str:
    """Serialise an event the proxy changed or made (compact, UTF-8 text frame)."""
    return orjson.dumps(event).decode()


# Bounded label values: anything else is counted as "other" so clients cannot blow up metric cardinality.
CLIENT_EVENT_TYPES = frozenset(
    {
        "session.update",
        "input_audio_buffer.append",
        "input_audio_buffer.commit",
        "input_audio_buffer.clear",
        "output_audio_buffer.clear",
        "conversation.item.create",
        "conversation.item.retrieve",
        "conversation.item.truncate",
        "conversation.item.delete",
        "response.create",
        "response.cancel",
        "transcription_session.update",
        # translation sessions (/v1/realtime/translations)
        "session.input_audio_buffer.append",
        "session.close",
    }
)
SERVER_EVENT_TYPES = frozenset(
    {
        "error",
        "session.created",
        "session.updated",
        # translation sessions (/v1/realtime/translations)
        "session.closed",
        "session.input_transcript.delta",
        "session.output_transcript.delta",
        "session.output_audio.delta",
        "conversation.created",
        "conversation.item.added",
        "conversation.item.done",
        "conversation.item.created",
        "conversation.item.retrieved",
        "conversation.item.deleted",
        "conversation.item.truncated",
        "conversation.item.input_audio_transcription.delta",
        "conversation.item.input_audio_transcription.completed",
        "conversation.item.input_audio_transcription.failed",
        "conversation.item.input_audio_transcription.segment",
        "input_audio_buffer.committed",
        "input_audio_buffer.cleared",
        "input_audio_buffer.speech_started",
        "input_audio_buffer.speech_stopped",
        "input_audio_buffer.timeout_triggered",
        "output_audio_buffer.started",
        "output_audio_buffer.stopped",
        "output_audio_buffer.cleared",
        "response.created",
        "response.done",
        "response.output_item.added",
        "response.output_item.done",
        "response.content_part.added",
        "response.content_part.done",
        "response.output_text.delta",
        "response.output_text.done",
        "response.output_audio.delta",
        "response.output_audio.done",
        "response.output_audio_transcript.delta",
        "response.output_audio_transcript.done",
        "response.function_call_arguments.delta",
        "response.function_call_arguments.done",
        "response.mcp_call_arguments.delta",
        "response.mcp_call_arguments.done",
        "response.mcp_call.in_progress",
        "response.mcp_call.completed",
        "response.mcp_call.failed",
        "mcp_list_tools.in_progress",
        "mcp_list_tools.completed",
        "mcp_list_tools.failed",
        "rate_limits.updated",
    }
)


def label_for(event_type: str | None, known: frozenset[str]) -> str:
    if event_type is None:
        return "invalid"
    return event_type if event_type in known else "other"
