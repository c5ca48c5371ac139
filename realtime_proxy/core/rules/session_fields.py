"""Session and response fields the GA API refuses although clients send them in good faith:
echoed read-only fields, out-of-range token limits, and the transcription session's model."""

from __future__ import annotations

import math
from typing import Any

from realtime_proxy.core import compat
from realtime_proxy.core.rules._util import brief, child, targets
from realtime_proxy.core.rules.model import REALTIME, REALTIME_OR_TRANSCRIPTION, Rule, RuleRewrite
from realtime_proxy.core.session_state import SessionState

# What session.created/updated report and some clients send straight back in session.update.
_READ_ONLY = ("id", "object", "expires_at", "client_secret")
MAX_OUTPUT_TOKENS = 4096


def _read_only_fields(event: dict[str, Any], state: SessionState, out: list[RuleRewrite]) -> None:
    session = event.get("session")
    if not isinstance(session, dict):
        return
    for key in _READ_ONLY:
        if key in session:
            value = session.pop(key)
            shown = "<redacted>" if key == "client_secret" else brief(value)  # an ephemeral key
            out.append(RuleRewrite("read_only_session_fields", f"session.{key}", shown, None, True))


READ_ONLY_SESSION_FIELDS = Rule(
    name="read_only_session_fields",
    description="Strip read-only fields echoed back in session.update: id, object, expires_at, "
    "client_secret.",
    lossless=True,  # none of them can be set by an update
    default_enabled=True,
    event_types=frozenset({"session.update"}),
    prevents="Unknown parameter: 'session.client_secret'. (and id, object, expires_at)",
    apply=_read_only_fields,
    session_types=REALTIME_OR_TRANSCRIPTION,
    evidence="https://github.com/RageAgainstThePixel/com.openai.unity/issues/427",
)


def _bounded(value: Any) -> Any:
    """The accepted value nearest to `value`, or `value` itself when it is fine or not a number."""
    if isinstance(value, str):
        if value.strip().lower() in ("inf", "infinity"):
            return "inf"
        try:
            value = float(value.strip())
        except ValueError:
            return value
    if isinstance(value, bool) or not isinstance(value, int | float) or math.isnan(value):
        return value
    if math.isinf(value):
        return "inf" if value > 0 else 1
    return max(1, min(MAX_OUTPUT_TOKENS, math.floor(value)))


def _max_output_tokens(event: dict[str, Any], state: SessionState, out: list[RuleRewrite]) -> None:
    for prefix, obj in targets(event):
        if "max_output_tokens" not in obj:
            continue
        value = obj["max_output_tokens"]
        fixed = _bounded(value)
        if fixed != value or type(fixed) is not type(value):
            obj["max_output_tokens"] = fixed
            path = f"{prefix}.max_output_tokens"
            out.append(RuleRewrite("max_output_tokens_bounds", path, brief(value), fixed, False))


MAX_OUTPUT_TOKENS_BOUNDS = Rule(
    name="max_output_tokens_bounds",
    description='max_output_tokens clamped to 1..4096 (numbers, numeric strings), "inf" spellings -> "inf".',
    lossless=False,  # a limit above 4096 becomes 4096; 0 becomes 1
    default_enabled=True,
    event_types=frozenset({"session.update", "response.create"}),
    prevents="Invalid 'session.max_output_tokens': integer above maximum value. Expected a value <= 4096",
    apply=_max_output_tokens,
    session_types=REALTIME,
    evidence="openai/types/realtime/realtime_session_create_request_param.py (1-4096 or 'inf')",
)


def _transcription_model(event: dict[str, Any], state: SessionState, out: list[RuleRewrite]) -> None:
    model = state.context.transcription_model
    session = event.get("session")
    if model is None or state.transcription_model_set or not isinstance(session, dict):
        return
    audio = child(session, "audio", create=True)
    audio_in = child(audio, "input", create=True) if audio is not None else None
    if audio_in is None or ("transcription" in audio_in and audio_in["transcription"] is None):
        return  # a wrong type, or transcription explicitly switched off: the client's call
    transcription = child(audio_in, "transcription", create=True)
    if transcription is None or "model" in transcription:
        return
    transcription["model"] = model
    out.append(
        RuleRewrite(
            "transcription_handshake_model",
            "?model",
            model,
            {"session.audio.input.transcription.model": model},
            True,
        )
    )


TRANSCRIPTION_HANDSHAKE_MODEL = Rule(
    name="transcription_handshake_model",
    description="?intent=transcription&model=X: X leaves the upstream query and goes into the first "
    "session.update's audio.input.transcription.model.",
    lossless=True,
    default_enabled=True,
    event_types=frozenset({"session.update"}),
    prevents='invalid_model: Model "X" is not supported in transcription mode. (then close 4000)',
    apply=_transcription_model,
    routes=frozenset({"transcription"}),
    session_types=frozenset({"transcription"}),
    evidence="https://github.com/livekit/agents-js/issues/1756",
)


def _transcription_session_update(event: dict[str, Any], state: SessionState, out: list[RuleRewrite]) -> None:
    # Only where the session is known to be a transcription session: a realtime session refuses
    # it either way ("Passing a transcription session update event to a realtime session...").
    if state.known_session_type != "transcription":
        return
    for done in compat.client_event_to_ga(event):
        after = None if done.after == "(dropped)" else done.after
        out.append(RuleRewrite("transcription_session_update", done.before, None, after, True))


TRANSCRIPTION_SESSION_UPDATE = Rule(
    name="transcription_session_update",
    description="transcription_session.update (beta) -> session.update of type transcription, "
    "for GA clients too.",
    lossless=True,
    default_enabled=True,
    event_types=frozenset({"transcription_session.update"}),
    prevents="Invalid value: 'transcription_session.update'.",
    apply=_transcription_session_update,
    session_types=frozenset({"transcription"}),
    evidence="https://github.com/crmitchelmore/justspeaktoit/pull/427",
)
