"""Server -> client translation of GA events into the beta shape, for beta compatibility mode.

Pure renames (the audio/text/transcript deltas, the bulk of the traffic) rewrite only the
leading `"type"` string: those frames are never parsed. Events whose body differs between the
shapes are parsed, transformed and re-serialised (see `SERVER_BODY_TYPES`).

GA-only events (no variant in the beta SDK's `RealtimeServerEvent` union): the beta Python
SDK's `parse_event` (`construct_type_unchecked`) does not raise on them, it silently builds a
mis-typed `ConversationCreatedEvent` that keeps the GA `type` string, so client code that
dispatches on `.type` just ignores them. Hence:
- `conversation.item.added` is renamed `conversation.item.created` (same body in both shapes).
- `conversation.item.done` is dropped (`DROP`): GA sends it for every item, the beta API never
  did, and everything it carries reaches a beta client elsewhere (`response.output_item.done`,
  `conversation.item.input_audio_transcription.completed`); forwarding it would hand the
  client a bogus event twice per item.
- Every other GA-only event (`input_audio_buffer.timeout_triggered` / `.dtmf_event_received`,
  `conversation.item.input_audio_transcription.segment`, `mcp_list_tools.*`,
  `response.mcp_call*`) is forwarded unchanged: each needs a GA-only feature (idle timeout,
  SIP, diarization, MCP tools) that a beta client cannot have asked for, and staying
  transparent costs nothing.
- `session.created` / `session.updated` for a transcription session become the beta
  `transcription_session.created` / `transcription_session.updated` with the beta
  transcription-session layout (`transcription_session.created` is absent from the SDK union
  but is what the beta API sent).
- `response.created` / `response.done` keep `max_output_tokens`: the beta `RealtimeResponse`
  used that name too (only the beta *session* said `max_response_output_tokens`).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any, Final

from realtime_proxy.core import events


@dataclass(frozen=True, slots=True)
class Translation:
    """A record for logs/metrics: what was translated (event types or field paths)."""

    direction: str  # "client_to_ga" | "server_to_beta"
    before: str
    after: str


# Returned by `server_frame_to_beta` for frames a beta client must not see (never a valid frame).
DROP: Final = ""

_RENAMES: Final[dict[str, str]] = {
    "response.output_text.delta": "response.text.delta",
    "response.output_text.done": "response.text.done",
    "response.output_audio.delta": "response.audio.delta",
    "response.output_audio.done": "response.audio.done",
    "response.output_audio_transcript.delta": "response.audio_transcript.delta",
    "response.output_audio_transcript.done": "response.audio_transcript.done",
}
SERVER_DROPPED_TYPES: Final = frozenset({"conversation.item.done"})

_SESSION_TYPES = ("session.created", "session.updated")
_ITEM_TYPES = (
    "conversation.item.added",
    "conversation.item.created",
    "conversation.item.retrieved",
    "response.output_item.added",
    "response.output_item.done",
)
_PART_TYPES = ("response.content_part.added", "response.content_part.done")
_RESPONSE_TYPES = ("response.created", "response.done")
SERVER_BODY_TYPES: Final = frozenset(_SESSION_TYPES + _ITEM_TYPES + _PART_TYPES + _RESPONSE_TYPES)

_BODY_RENAMES: Final[dict[str, str]] = {"conversation.item.added": "conversation.item.created"}
_TRANSCRIPTION_SESSION_RENAMES: Final[dict[str, str]] = {
    "session.created": "transcription_session.created",
    "session.updated": "transcription_session.updated",
}

_FORMAT_NAMES: Final[dict[str, str]] = {
    "audio/pcm": "pcm16",
    "audio/pcmu": "g711_ulaw",
    "audio/pcma": "g711_alaw",
}
_PART_TYPE_NAMES: Final[dict[str, str]] = {"output_text": "text", "output_audio": "audio"}
BETA_DEFAULT_TEMPERATURE: Final = 0.8

# Same leading shape events.sniff_type accepts; group 2 is the type string to replace.
_LEADING_TYPE = re.compile(r'(\s*\{\s*(?:"event_id"\s*:\s*"[^"\\]*"\s*,\s*)?"type"\s*:\s*")([^"\\]{1,128})"')


def server_type_to_beta(event_type: str) -> str | None:
    """The beta name of a GA server event type, or None when the name is unchanged.

    Decided by type alone: a transcription session's `session.*` rename needs the body."""
    return _RENAMES.get(event_type) or _BODY_RENAMES.get(event_type)


def server_frame_to_beta(event_type: str | None, frame: str) -> str | None:
    """The beta-shaped frame, None to forward `frame` unchanged, or `DROP` to withhold it.

    `event_type` is the sniffed leading type; when None (it did not lead) the frame is parsed."""
    if event_type is None:
        return _translate_parsed(frame)
    if event_type in SERVER_DROPPED_TYPES:
        return DROP
    renamed = _RENAMES.get(event_type)
    if renamed is not None:
        return _rename_leading_type(frame, event_type, renamed)
    if event_type in SERVER_BODY_TYPES:
        return _translate_parsed(frame)
    return None


def _rename_leading_type(frame: str, event_type: str, renamed: str) -> str | None:
    match = _LEADING_TYPE.match(frame)
    if match is None or match.group(2) != event_type:
        return _translate_parsed(frame)  # type not leading: rare, small frames only
    return frame[: match.start(2)] + renamed + frame[match.end(2) :]


def _translate_parsed(frame: str) -> str | None:
    event = events.parse_guarded(frame)  # the one depth guard: dump() cannot serialise past 254
    if event is None or not isinstance(event.get("type"), str):
        return None
    event_type: str = event["type"]
    if event_type in SERVER_DROPPED_TYPES:
        return DROP
    if event_type in _RENAMES:
        event["type"] = _RENAMES[event_type]
        return events.dump(event)
    if event_type in SERVER_BODY_TYPES:
        _body_to_beta(event)
        return events.dump(event)
    return None


def _body_to_beta(event: dict[str, Any]) -> None:
    event_type: str = event["type"]
    if event_type in _SESSION_TYPES:
        _session_event_to_beta(event)
    elif event_type in _ITEM_TYPES:
        event["type"] = _BODY_RENAMES.get(event_type, event_type)
        _item_to_beta(event.get("item"))
    elif event_type in _PART_TYPES:
        _part_to_beta(event.get("part"))
    elif event_type in _RESPONSE_TYPES:
        _response_to_beta(event.get("response"))


def _session_event_to_beta(event: dict[str, Any]) -> None:
    session = event.get("session")
    if not isinstance(session, dict):
        return
    if session.get("type") == "transcription":
        event["type"] = _TRANSCRIPTION_SESSION_RENAMES[event["type"]]
        event["session"] = _transcription_session_to_beta(session)
    else:
        event["session"] = _session_to_beta(session)


def _dict_at(parent: Any, key: str) -> dict[str, Any]:
    value = parent.get(key) if isinstance(parent, dict) else None
    return value if isinstance(value, dict) else {}


def _format_name(fmt: Any) -> Any:
    """A GA format object as the beta string; anything unrecognised is passed through."""
    name = fmt.get("type") if isinstance(fmt, dict) else None
    return _FORMAT_NAMES.get(name, fmt) if isinstance(name, str) else fmt


def _modalities(output_modalities: Any) -> Any:
    # Beta audio output always carried a transcript, so its audio modality list was text+audio.
    if isinstance(output_modalities, list) and "audio" in output_modalities:
        return ["text", "audio"]
    return output_modalities


def _audio_input_to_beta(audio_input: dict[str, Any], beta: dict[str, Any]) -> None:
    for ga_key, beta_key in (
        ("transcription", "input_audio_transcription"),
        ("turn_detection", "turn_detection"),
        ("noise_reduction", "input_audio_noise_reduction"),
    ):
        if ga_key in audio_input:
            beta[beta_key] = audio_input[ga_key]
    if "format" in audio_input:
        beta["input_audio_format"] = _format_name(audio_input["format"])


def _session_to_beta(session: dict[str, Any]) -> dict[str, Any]:
    """A GA realtime session object in the beta `Session` layout (unmapped fields kept)."""
    beta = {k: v for k, v in session.items() if k not in ("type", "audio", "output_modalities")}
    beta["object"] = "realtime.session"
    if "output_modalities" in session:
        beta["modalities"] = _modalities(session["output_modalities"])
    if "max_output_tokens" in beta:
        beta["max_response_output_tokens"] = beta.pop("max_output_tokens")
    audio = _dict_at(session, "audio")
    _audio_input_to_beta(_dict_at(audio, "input"), beta)
    audio_output = _dict_at(audio, "output")
    for key in ("voice", "speed"):
        if key in audio_output:
            beta[key] = audio_output[key]
    if "format" in audio_output:
        beta["output_audio_format"] = _format_name(audio_output["format"])
    beta.setdefault("temperature", BETA_DEFAULT_TEMPERATURE)  # GA has none; the beta default
    return beta


def _transcription_session_to_beta(session: dict[str, Any]) -> dict[str, Any]:
    """A GA transcription session in the beta `TranscriptionSession` layout."""
    beta = {k: v for k, v in session.items() if k not in ("type", "audio")}
    beta["object"] = "realtime.transcription_session"
    beta.setdefault("client_secret", None)  # only REST-created sessions had one
    _audio_input_to_beta(_dict_at(_dict_at(session, "audio"), "input"), beta)
    return beta


def _part_to_beta(part: Any) -> None:
    part_type = part.get("type") if isinstance(part, dict) else None
    if isinstance(part_type, str) and part_type in _PART_TYPE_NAMES:
        part["type"] = _PART_TYPE_NAMES[part_type]


def _item_to_beta(item: Any) -> None:
    content = item.get("content") if isinstance(item, dict) else None
    if isinstance(content, list):
        for part in content:
            _part_to_beta(part)


def _response_to_beta(response: Any) -> None:
    if not isinstance(response, dict):
        return
    if "output_modalities" in response:
        response["modalities"] = _modalities(response.pop("output_modalities"))
    audio_output = _dict_at(_dict_at(response, "audio"), "output")
    if "format" in audio_output:
        response["output_audio_format"] = _format_name(audio_output["format"])
    if "voice" in audio_output:
        response["voice"] = audio_output["voice"]
    response.pop("audio", None)
    for item in response.get("output") or ():
        _item_to_beta(item)
