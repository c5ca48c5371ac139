"""Stateful guards: requests the API would refuse given what already happened (items 12-14)."""

from __future__ import annotations

import math
from typing import Any

from proxy.core.rules._util import brief
from proxy.core.rules.model import Refuse, Rewrite, Rule
from proxy.core.session_state import SessionState

MIN_COMMIT_MS = 100.0


def _voice_after_audio(event: dict[str, Any], state: SessionState, out: list[Rewrite]) -> None:
    session = event.get("session")
    if not state.assistant_audio_produced or state.voice is None or not isinstance(session, dict):
        return
    audio = session.get("audio")
    output = audio.get("output") if isinstance(audio, dict) else None
    # Both places, in case flat_audio_settings is disabled.
    for path, holder in (("session.audio.output.voice", output), ("session.voice", session)):
        if isinstance(holder, dict) and "voice" in holder and holder["voice"] != state.voice:
            out.append(Rewrite("voice_after_audio", path, brief(holder.pop("voice")), None, False))


VOICE_AFTER_AUDIO = Rule(
    name="voice_after_audio",
    description="Drop a voice change from session.update once assistant audio exists; keep the rest.",
    lossless=False,
    default_enabled=True,
    event_types=frozenset({"session.update"}),
    prevents="cannot_update_voice: Cannot update a conversation's voice if assistant audio is present.",
    apply=_voice_after_audio,
)


def _empty_commit(event: dict[str, Any], state: SessionState, out: list[Rewrite]) -> None:
    ms = state.appended_audio_ms_upper_bound
    if ms < MIN_COMMIT_MS and not state.external_audio_input:
        raise Refuse(
            code="input_audio_buffer_commit_empty",
            message="Error committing input audio buffer: buffer too small. Expected at least 100ms of "
            f"audio, but buffer only has {ms:.2f}ms of audio.",
        )


EMPTY_COMMIT = Rule(
    name="empty_commit",
    description="Answer a commit of <100ms of buffered audio (an upper bound) with the API's own error.",
    lossless=True,  # the API would have refused it identically
    default_enabled=True,
    event_types=frozenset({"input_audio_buffer.commit"}),
    prevents="input_audio_buffer_commit_empty: buffer too small. Expected at least 100ms of audio",
    apply=_empty_commit,
)


def _truncate(event: dict[str, Any], state: SessionState, out: list[Rewrite]) -> None:
    item_id, end = event.get("item_id"), event.get("audio_end_ms")
    if not isinstance(item_id, str) or not isinstance(end, int | float) or isinstance(end, bool):
        return
    delivered = state.delivered_audio_ms.get(item_id)
    if delivered is None or end <= delivered:
        return
    clamped = math.floor(delivered)
    event["audio_end_ms"] = clamped
    out.append(Rewrite("truncate_past_audio", "audio_end_ms", end, clamped, False))


TRUNCATE_PAST_AUDIO = Rule(
    name="truncate_past_audio",
    description="Clamp conversation.item.truncate audio_end_ms to the audio actually delivered for the item.",
    lossless=False,
    default_enabled=True,
    event_types=frozenset({"conversation.item.truncate"}),
    prevents="item_truncate_invalid_audio_end_ms",
    apply=_truncate,
)
