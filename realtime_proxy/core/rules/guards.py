"""Stateful guards: requests the API would refuse given what already happened (items 12-14)."""

from __future__ import annotations

import math
from typing import Any

from realtime_proxy.core.rules._util import brief
from realtime_proxy.core.rules.model import APPEND_ROUTES, REALTIME, Refuse, Rule, RuleRewrite
from realtime_proxy.core.session_state import SessionState

MIN_COMMIT_MS = 100.0
# The server's audio item can be shorter than the audio the client received (by ~85 ms,
# pipecat #2106): a truncate this close to the delivered end may still fail.
TRUNCATE_MARGIN_MS = 100


def _voice_after_audio(event: dict[str, Any], state: SessionState, out: list[RuleRewrite]) -> None:
    session = event.get("session")
    if not state.assistant_audio_produced or state.voice is None or not isinstance(session, dict):
        return
    audio = session.get("audio")
    output = audio.get("output") if isinstance(audio, dict) else None
    # Both places, in case flat_audio_settings is disabled.
    for path, holder in (("session.audio.output.voice", output), ("session.voice", session)):
        if isinstance(holder, dict) and "voice" in holder and holder["voice"] != state.voice:
            out.append(RuleRewrite("voice_after_audio", path, brief(holder.pop("voice")), None, False))


VOICE_AFTER_AUDIO = Rule(
    name="voice_after_audio",
    description="Drop a voice change from session.update once assistant audio exists; keep the rest.",
    lossless=False,
    default_enabled=True,
    event_types=frozenset({"session.update"}),
    prevents="cannot_update_voice: Cannot update a conversation's voice if assistant audio is present.",
    apply=_voice_after_audio,
    session_types=REALTIME,
    evidence="openai/types/realtime/realtime_audio_config_output_param.py (voice docstring)",
)


def _empty_commit(event: dict[str, Any], state: SessionState, out: list[RuleRewrite]) -> None:
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
    routes=APPEND_ROUTES,  # sideband sockets get their audio as media, not as appends
    evidence="openai/types/realtime/input_audio_buffer_commit_event_param.py (docstring)",
)


def _truncate(event: dict[str, Any], state: SessionState, out: list[RuleRewrite]) -> None:
    item_id, end = event.get("item_id"), event.get("audio_end_ms")
    if not isinstance(item_id, str) or not isinstance(end, int | float) or isinstance(end, bool):
        return
    if item_id in state.items_without_audio:
        # It can only fail; the client gets the API's own answer without the round trip.
        raise Refuse(
            code="unsupported_content_type",
            message="Only model output audio messages can be truncated",
            param="item_id",
        )
    delivered = state.delivered_audio_ms.get(item_id)
    if delivered is None:
        return
    limit = max(0, math.floor(delivered) - TRUNCATE_MARGIN_MS)
    if end <= limit:
        return
    event["audio_end_ms"] = limit
    out.append(RuleRewrite("truncate_past_audio", "audio_end_ms", end, limit, False))


TRUNCATE_PAST_AUDIO = Rule(
    name="truncate_past_audio",
    description=f"Clamp truncate audio_end_ms to the delivered audio minus {TRUNCATE_MARGIN_MS} ms; answer a "
    "truncate of an assistant item that delivered no audio with the API's own error.",
    lossless=False,
    default_enabled=True,
    event_types=frozenset({"conversation.item.truncate"}),
    prevents="item_truncate_invalid_audio_end_ms: Audio content of Xms is already shorter than Yms / "
    "unsupported_content_type: Only model output audio messages can be truncated",
    apply=_truncate,
    # GA routes only (beta audio deltas are named differently), and never a sideband socket: its
    # output audio goes to the WebRTC/SIP peer as media, the proxy sees none of it.
    routes=frozenset({"realtime", "transcription", "azure"}),
    session_types=REALTIME,
    evidence="https://github.com/pipecat-ai/pipecat/issues/2106; "
    "https://github.com/livekit/agents/issues/6157; https://github.com/openai/openai-agents-python/pull/2374",
)
