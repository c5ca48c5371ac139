"""The API's event catalogues: every event type the proxy, `lint` and the fake know by name.

Realtime: openai/types/realtime/realtime_client_event.py and realtime_server_event.py (openai 3.63);
translation sessions (/v1/realtime/translations); Live: openai/types/live/client_event.py.
Tuples keep the order the API lists them in its `invalid_value` messages (the simulators quote them).
"""

from __future__ import annotations

from typing import Final

# GA Realtime client events, in the order of the API's list.
REALTIME_CLIENT_EVENTS: Final = (
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
)
# Translation sessions (/v1/realtime/translations).
TRANSLATION_CLIENT_EVENTS: Final = ("session.update", "session.input_audio_buffer.append", "session.close")
# Beta only: the GA API refuses it, the proxy's compat stage translates it.
BETA_CLIENT_EVENTS: Final = ("transcription_session.update",)

# Bounded label values: anything else is counted as "other" so clients cannot blow up metric cardinality.
CLIENT_EVENT_TYPES: Final = frozenset(
    (*REALTIME_CLIENT_EVENTS, *BETA_CLIENT_EVENTS, *TRANSLATION_CLIENT_EVENTS)
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
        "input_audio_buffer.dtmf_event_received",  # SIP calls: a keypad digit
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

# The Live client commands (openai/types/live/client_event.py), in the order of the API's list.
LIVE_CLIENT_EVENTS: Final = (
    "session.start",
    "session.update",
    "session.input_audio.append",
    "session.input_audio.mute",
    "session.input_audio.unmute",
    "session.output_audio.fixture.play",
    "session.instructions.append",
    "session.thinking.append",
    "session.commentary.append",
    "decision.create",
    "decision.item.create",
    "decision.item.delete",
    "response.item.create",
    "response.create",
    "session.close",
)
LIVE_CLIENT_EVENT_TYPES: Final = frozenset(LIVE_CLIENT_EVENTS)
# A sideband socket (/{id}/attach) drives a session it did not open: no start, no audio, plus DTMF.
LIVE_SIDEBAND_CLIENT_EVENTS: Final = (
    *(t for t in LIVE_CLIENT_EVENTS if t not in ("session.start", "session.input_audio.append")),
    "transport.dtmf.send",
)
# Live server events a recording may hold that `lint` feeds to the core instead of reporting.
LIVE_RECORDED_SERVER_EVENTS: Final = frozenset(
    {"session.started", "session.updated", "session.closed", "response.event", "error"}
)
