"""What the Live observer stage reports: one frozen observation per kind (realtime_proxy.core.live).

The Live API (`/v1/live/sessions`, schema `openai/types/live/`) is billed per second of session
(`session.usage.updated`), streams delegated Responses events wrapped in `response.event` with a
`delegation_id`, and never sends `response.done`. These observations carry ids, counts, timings
and codes only: never audio, transcripts or instructions.
"""

from __future__ import annotations

from dataclasses import dataclass

from realtime_proxy.core.actions import Observation

# Output deltas that end a wait for the first output, by modality label.
OUTPUT_DELTAS = {"session.output_audio.delta": "audio", "session.output_transcript.delta": "text"}
LIVE_MODALITIES = ("audio", "text", "delegated")
LIVE_TRIGGERS = ("response_create", "user_speech")
# Nested Responses events that end a delegated response (status from `response.status`).
RESPONSE_ENDS = frozenset(
    {"response.completed", "response.failed", "response.incomplete", "response.cancelled"}
)


@dataclass(frozen=True, slots=True)
class LiveStarted(Observation):
    """`session.started`: the session the server resolved (id and model)."""

    live_session_id: str | None
    model: str | None


@dataclass(frozen=True, slots=True)
class LiveUsage(Observation):
    """`session.usage.updated`: cumulative billable seconds, and what this update added."""

    model: str | None
    seconds: float
    added_active_seconds: float
    added_paused_seconds: float
    context_usage_ratio: float | None


@dataclass(frozen=True, slots=True)
class LiveFirstDelta(Observation):
    """Seconds from a trigger (`response.create`, or the latest user transcript fragment) to the
    first output delta after it."""

    trigger: str
    modality: str
    seconds: float
    client_event_id: str | None = None


@dataclass(frozen=True, slots=True)
class LiveError(Observation):
    error_type: str | None
    code: str | None
    message: str | None
    param: str | None
    client_event_id: str | None


@dataclass(frozen=True, slots=True)
class LiveDelegation(Observation):
    """`session.delegation.created`: the Live model handed work to `target`."""

    delegation_id: str | None
    target: str | None
    response_id: str | None


@dataclass(frozen=True, slots=True)
class LiveDelegatedResponse(Observation):
    """A delegated Responses response ended (its nested `response.completed` / `.failed` / ...)."""

    delegation_id: str | None
    response_id: str | None
    status: str | None
    model: str | None
    input_tokens: int
    output_tokens: int
    seconds: float | None


@dataclass(frozen=True, slots=True)
class LiveEarlyCommand(Observation):
    """A client command sent after `session.start` and before `session.started`: held until the
    session has started (`applied`), or only reported (the rule off or observing)."""

    event_type: str | None
    client_event_id: str | None
    applied: bool
    held: int  # commands held at this moment, this one included when applied
