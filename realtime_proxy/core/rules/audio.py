"""Audio configuration repairs: flat beta settings and format strings (catalogue items 4, 5)."""

from __future__ import annotations

from typing import Any

from realtime_proxy.core.rules._util import brief, child, targets
from realtime_proxy.core.rules.model import Rule, RuleRewrite
from realtime_proxy.core.session_state import SessionState

_CONFIG_TYPES = frozenset({"session.update", "response.create"})

# flat beta key -> (audio section, GA key)
_SESSION_MOVES = (
    ("voice", "output", "voice"),
    ("input_audio_format", "input", "format"),
    ("output_audio_format", "output", "format"),
    ("turn_detection", "input", "turn_detection"),
    ("input_audio_transcription", "input", "transcription"),
    ("input_audio_noise_reduction", "input", "noise_reduction"),
    ("speed", "output", "speed"),
)
_RESPONSE_MOVES = (("voice", "output", "voice"), ("output_audio_format", "output", "format"))


def _move(
    prefix: str, obj: dict[str, Any], flat: str, section: str, key: str, out: list[RuleRewrite]
) -> None:
    audio = child(obj, "audio", create=True)
    target = child(audio, section, create=True) if audio is not None else None
    if target is None:
        return  # `audio` or its section has a wrong type: moving would destroy what was sent
    value = obj.pop(flat)
    dest = f"{prefix}.audio.{section}.{key}"
    if key in target:  # an explicit nested value wins over the flat one
        out.append(RuleRewrite("flat_audio_settings", f"{prefix}.{flat}", brief(value), None, True))
    else:
        target[key] = value
        out.append(
            RuleRewrite("flat_audio_settings", f"{prefix}.{flat}", brief(value), {dest: brief(value)}, True)
        )


def _flat_audio(event: dict[str, Any], state: SessionState, out: list[RuleRewrite]) -> None:
    for prefix, obj in targets(event):
        moves = _SESSION_MOVES if prefix == "session" else _RESPONSE_MOVES
        for flat, section, key in moves:
            if flat in obj:
                _move(prefix, obj, flat, section, key, out)


FLAT_AUDIO = Rule(
    name="flat_audio_settings",
    description="Flat beta audio settings (voice, *_audio_format, turn_detection, ...) -> nested `audio`.",
    lossless=True,
    default_enabled=True,
    event_types=_CONFIG_TYPES,
    prevents="Unknown parameter: '{path}'.",  # the flat field moved (voice, input_audio_format, ...)
    apply=_flat_audio,
    evidence="openai/types/realtime/realtime_audio_config_param.py; "
    "https://github.com/openai/openai-python/issues/2638",
)

_FORMATS: dict[str, dict[str, Any]] = {
    "pcm16": {"type": "audio/pcm", "rate": 24000},
    "audio/pcm": {"type": "audio/pcm"},  # `rate` is optional in the SDK's types: none is added
    "g711_ulaw": {"type": "audio/pcmu"},
    "audio/pcmu": {"type": "audio/pcmu"},
    "g711_alaw": {"type": "audio/pcma"},
    "audio/pcma": {"type": "audio/pcma"},
}


def _fix_format(path: str, section: dict[str, Any], out: list[RuleRewrite]) -> None:
    fmt = section.get("format")
    # `{"type": "audio/pcm"}` without `rate` is valid (the SDK makes `rate` optional and no report
    # shows the API refusing it): no default is added without evidence.
    if isinstance(fmt, str) and fmt in _FORMATS:
        section["format"] = dict(_FORMATS[fmt])
        out.append(RuleRewrite("audio_format_strings", path, fmt, dict(_FORMATS[fmt]), True))


def _format_strings(event: dict[str, Any], state: SessionState, out: list[RuleRewrite]) -> None:
    for prefix, obj in targets(event):
        audio = child(obj, "audio", create=False)
        if audio is None:
            continue
        for section_name in ("input", "output") if prefix == "session" else ("output",):
            section = child(audio, section_name, create=False)
            if section is not None:
                _fix_format(f"{prefix}.audio.{section_name}.format", section, out)


AUDIO_FORMAT_STRINGS = Rule(
    name="audio_format_strings",
    description='Format strings ("pcm16", "g711_ulaw", "g711_alaw") -> GA format objects.',
    lossless=True,
    default_enabled=True,
    event_types=_CONFIG_TYPES,
    prevents="Invalid type for 'session.audio.input.format': expected an object, but got a string instead.",
    apply=_format_strings,
    evidence="openai/types/realtime/realtime_audio_formats_param.py",
)


def _null_speed(event: dict[str, Any], state: SessionState, out: list[RuleRewrite]) -> None:
    session = event.get("session")
    audio = child(session, "audio", create=False) if isinstance(session, dict) else None
    output = child(audio, "output", create=False) if audio is not None else None
    for path, holder in (("session.audio.output.speed", output), ("session.speed", session)):
        if isinstance(holder, dict) and "speed" in holder and holder["speed"] is None:
            del holder["speed"]
            out.append(RuleRewrite("null_speed", path, None, None, False))


NULL_SPEED = Rule(
    name="null_speed",
    description='Drop `speed: null` (clients mean "not set"; the API wants a number, 0.25-1.5).',
    lossless=False,  # a client that meant "back to the default 1.0" keeps the current speed instead
    default_enabled=True,
    event_types=frozenset({"session.update"}),
    prevents="Invalid type for 'session.speed': expected a decimal, but got null instead.",
    apply=_null_speed,
    session_types=frozenset({"realtime"}),
    evidence="https://github.com/livekit/agents/issues/2577; "
    "openai/types/realtime/realtime_audio_config_output_param.py (speed: float)",
)
