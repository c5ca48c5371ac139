"""Beta -> GA field renames on session.update and response.create (catalogue items 2, 3, 6, 7)."""

from __future__ import annotations

from typing import Any

from realtime_proxy.core.rules._util import brief, targets
from realtime_proxy.core.rules.model import REALTIME, Rule, RuleRewrite
from realtime_proxy.core.session_state import SessionState

_CONFIG_TYPES = frozenset({"session.update", "response.create"})
SDK = "openai/types/realtime/"


def _rename(rule: str, prefix: str, obj: dict[str, Any], old: str, new: str, out: list[RuleRewrite]) -> None:
    """Move obj[old] to obj[new]; when both are present the GA name wins and the old is dropped."""
    if old not in obj:
        return
    value = obj.pop(old)
    if new in obj:
        out.append(RuleRewrite(rule, f"{prefix}.{old}", brief(value), None, True))
    else:
        obj[new] = value
        out.append(
            RuleRewrite(rule, f"{prefix}.{old}", brief(value), {f"{prefix}.{new}": brief(value)}, True)
        )


def _single_modality(value: Any) -> Any:
    # GA allows ["text"] or ["audio"] only; audio output always carries a transcript.
    if isinstance(value, list) and len(value) > 1 and "audio" in value:
        return ["audio"]
    return value


def _modalities(event: dict[str, Any], state: SessionState, out: list[RuleRewrite]) -> None:
    for prefix, obj in targets(event):
        _rename("modalities_to_output_modalities", prefix, obj, "modalities", "output_modalities", out)
        value = obj.get("output_modalities")
        fixed = _single_modality(value)
        if fixed is not value:
            obj["output_modalities"] = fixed
            path = f"{prefix}.output_modalities"
            out.append(RuleRewrite("modalities_to_output_modalities", path, brief(value), fixed, True))


MODALITIES = Rule(
    name="modalities_to_output_modalities",
    description='Beta `modalities` -> `output_modalities`; ["audio","text"] -> ["audio"].',
    lossless=True,
    default_enabled=True,
    event_types=_CONFIG_TYPES,
    prevents="Unknown parameter: 'session.modalities'. / Invalid modalities: ['text', 'audio'].",
    apply=_modalities,
    session_types=REALTIME,
    evidence=f"{SDK}realtime_session_create_request_param.py (output_modalities); "
    "https://github.com/TanStack/ai/pull/699",
)

# Fields only a realtime (speech-to-speech) session has; their absence plus a transcription
# config marks a beta transcription-only session.
_REALTIME_ONLY = frozenset(
    {"voice", "output_audio_format", "instructions", "tools", "tool_choice", "modalities",
     "output_modalities", "temperature", "max_response_output_tokens", "max_output_tokens",
     "speed", "model", "prompt", "tracing", "truncation"}
)  # fmt: skip


def _realtime_only(session: dict[str, Any]) -> bool:
    audio = session.get("audio")
    return any(key in session for key in _REALTIME_ONLY) or (isinstance(audio, dict) and "output" in audio)


def _session_type(event: dict[str, Any], state: SessionState, out: list[RuleRewrite]) -> None:
    session = event.get("session")
    if not isinstance(session, dict) or "type" in session:
        return
    # The type of a live session cannot change: the server's word (or the route's) decides.
    # Unknown (session.created not seen yet on a route that does not fix it): "realtime" only
    # when the update configures something only a realtime session has, since a transcription
    # session would refuse it anyway; never a guessed "transcription".
    kind = state.known_session_type or ("realtime" if _realtime_only(session) else None)
    if kind is None:
        return
    session["type"] = kind
    out.append(RuleRewrite("session_type_missing", "session.type", None, kind, True))


SESSION_TYPE = Rule(
    name="session_type_missing",
    description=(
        "Add session.type: the live session's type (session.created, or the transcription route); "
        'before it is known, "realtime" only for realtime-only fields, else unchanged.'
    ),
    lossless=True,
    default_enabled=True,
    event_types=frozenset({"session.update"}),
    prevents="Missing required parameter: 'session.type'.",
    apply=_session_type,
    evidence=f"{SDK}session_update_event_param.py (session.type required); "
    "https://github.com/TanStack/ai/pull/699",
)


def _drop_temperature(event: dict[str, Any], state: SessionState, out: list[RuleRewrite]) -> None:
    for prefix, obj in targets(event):
        if "temperature" in obj:
            value = obj.pop("temperature")
            out.append(RuleRewrite("drop_temperature", f"{prefix}.temperature", brief(value), None, False))


DROP_TEMPERATURE = Rule(
    name="drop_temperature",
    description="Remove `temperature` (GA has no such parameter; the sampling setting is lost).",
    lossless=False,
    default_enabled=True,
    event_types=_CONFIG_TYPES,
    prevents="Unknown parameter: 'session.temperature'.",
    apply=_drop_temperature,
    session_types=REALTIME,
    evidence=f"{SDK}realtime_session_create_request_param.py (no temperature); "
    "https://github.com/TanStack/ai/pull/699",
)


def _max_tokens(event: dict[str, Any], state: SessionState, out: list[RuleRewrite]) -> None:
    for prefix, obj in targets(event):
        _rename(
            "max_response_output_tokens", prefix, obj, "max_response_output_tokens", "max_output_tokens", out
        )


MAX_TOKENS = Rule(
    name="max_response_output_tokens",
    description="Beta `max_response_output_tokens` -> `max_output_tokens`.",
    lossless=True,
    default_enabled=True,
    event_types=_CONFIG_TYPES,
    prevents="Unknown parameter: 'session.max_response_output_tokens'.",
    apply=_max_tokens,
    session_types=REALTIME,
    evidence=f"{SDK}realtime_session_create_request_param.py (max_output_tokens)",
)
