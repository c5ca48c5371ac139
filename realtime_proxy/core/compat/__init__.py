"""Beta compatibility mode: keeps clients of the switched-off Realtime beta shape working.

The API refuses a beta handshake (`beta_api_shape_disabled`, close 4000). The proxy detects a
beta client at the handshake (`compat_handshake`), opens upstream without the beta markers,
translates the client's beta-only event *types* to GA here, and translates server events back
to the beta shape (`compat_events`, whose docstring records what happens to GA-only events).

Field-level repairs of beta-shaped client events (modalities, flat audio settings, format
strings, temperature, max_response_output_tokens, content part types, chat-completions tools,
missing session.type) belong to the repair rules (catalogue items 2-9), not to this module.
What this module adds on the client side, because no rule covers it:
- `transcription_session.update` -> `session.update` with `session.type: "transcription"` and
  the beta fields moved into the GA `audio.input` block (format strings become objects here,
  so the event is complete GA whatever the rule order).
- `session.client_secret` (beta `session.update` and `transcription_session.update`) and
  `modalities` of a transcription session: GA has no such socket field and would refuse the
  whole update ("Unknown parameter"), so they are dropped (lossless: neither did anything on a
  socket-level update).
Left to the rules, which must therefore also apply to `response.create`: `response.modalities`,
`response.temperature`, `response.max_response_output_tokens`, `response.voice` and
`response.output_audio_format`. Not translated: beta content part type `item_reference`
inside a message (GA only has item references as whole `response.input` entries).
"""

from __future__ import annotations

from typing import Any, Final

from realtime_proxy.core.compat.events import (
    BETA_DEFAULT_TEMPERATURE,
    DROP,
    SERVER_BODY_TYPES,
    SERVER_DROPPED_TYPES,
    Translation,
    server_frame_to_beta,
    server_type_to_beta,
)
from realtime_proxy.core.compat.handshake import (
    BETA_HEADER,
    BETA_SUBPROTOCOL,
    is_beta_handshake,
    strip_beta_markers,
)

__all__ = [
    "BETA_DEFAULT_TEMPERATURE",
    "BETA_HEADER",
    "BETA_SUBPROTOCOL",
    "CLIENT_TYPES",
    "DROP",
    "SERVER_BODY_TYPES",
    "SERVER_DROPPED_TYPES",
    "Translation",
    "client_event_to_ga",
    "is_beta_handshake",
    "server_frame_to_beta",
    "server_type_to_beta",
    "strip_beta_markers",
]

_TRANSCRIPTION_UPDATE = "transcription_session.update"
CLIENT_TYPES: Final = frozenset({_TRANSCRIPTION_UPDATE, "session.update"})

# beta transcription_session.update field -> key in the GA session's audio.input block
_TRANSCRIPTION_AUDIO_INPUT: Final = (
    ("input_audio_format", "format"),
    ("input_audio_transcription", "transcription"),
    ("turn_detection", "turn_detection"),
    ("input_audio_noise_reduction", "noise_reduction"),
)
_FORMAT_OBJECTS: Final[dict[str, dict[str, Any]]] = {
    "pcm16": {"type": "audio/pcm", "rate": 24000},
    "g711_ulaw": {"type": "audio/pcmu"},
    "g711_alaw": {"type": "audio/pcma"},
}
_DROPPED = "(dropped)"


def _to_ga(before: str, after: str) -> Translation:
    return Translation("client_to_ga", before, after)


def client_event_to_ga(event: dict[str, Any]) -> list[Translation]:
    """Translate a (copied) beta client event to GA in place; what changed, for logs/metrics."""
    event_type = event.get("type")
    if event_type == _TRANSCRIPTION_UPDATE:
        return _transcription_update_to_ga(event)
    if event_type == "session.update":
        return _drop_fields(_session_of(event), ("client_secret",))
    return []


def _session_of(event: dict[str, Any]) -> dict[str, Any]:
    session = event.get("session")
    return session if isinstance(session, dict) else {}


def _drop_fields(session: dict[str, Any], names: tuple[str, ...]) -> list[Translation]:
    dropped = [name for name in names if name in session]
    for name in dropped:
        del session[name]
    return [_to_ga(f"session.{name}", _DROPPED) for name in dropped]


def _transcription_update_to_ga(event: dict[str, Any]) -> list[Translation]:
    beta = dict(_session_of(event))
    done = [_to_ga(_TRANSCRIPTION_UPDATE, "session.update")]
    done += _drop_fields(beta, ("client_secret", "modalities"))
    audio_input: dict[str, Any] = {}
    for beta_key, ga_key in _TRANSCRIPTION_AUDIO_INPUT:
        if beta_key in beta:
            audio_input[ga_key] = beta.pop(beta_key)
            done.append(_to_ga(f"session.{beta_key}", f"session.audio.input.{ga_key}"))
    fmt = audio_input.get("format")
    if isinstance(fmt, str) and fmt in _FORMAT_OBJECTS:
        audio_input["format"] = dict(_FORMAT_OBJECTS[fmt])
    # What is left (include, unknown fields) passes through for GA to judge.
    session: dict[str, Any] = {**beta, "type": "transcription"}
    if audio_input:
        session["audio"] = {"input": audio_input}
    event["type"] = "session.update"
    event["session"] = session
    return done
