"""What the orchestration stage reports, its options, and the one event it writes itself.

Every observation names the client's own `event_id` (None when the client sent none) and whether
the stage acted (`applied`) or only saw what it would have done (observe mode, dry run)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from realtime_proxy.core.actions import Observation


@dataclass(frozen=True, slots=True)
class OrchestrationOptions:
    observe_only: bool = False  # count and log what would be held or absorbed, change nothing
    serialise: bool = True  # one in-band response at a time
    coalesce_tool_calls: bool = True  # one answer per tool-call turn, once every output is in
    hold_early_cancels: bool = True  # a cancel before response.created waits for it
    max_held: int = 8  # held creates per session; past it a create goes on and the API answers
    tool_output_timeout: float = 10.0  # seconds a turn's answer waits for missing outputs


@dataclass(frozen=True, slots=True)
class ResponseHeld(Observation):
    client_event_id: str | None
    reason: str  # "active_response" | "tool_outputs" | "rejected_as_active"
    held: int  # creates held, this one included
    applied: bool = True


@dataclass(frozen=True, slots=True)
class ResponseReleased(Observation):
    client_event_id: str | None
    reason: str  # "response_done" | "create_failed" | "tool_outputs" | "tool_output_timeout" | ...
    held_seconds: float


@dataclass(frozen=True, slots=True)
class CreateCoalesced(Observation):
    """A redundant create of a tool-call turn: the turn's one answer answers it too."""

    client_event_id: str | None
    into: str | None  # the client event id of the create that answers the turn
    calls: int
    applied: bool = True


@dataclass(frozen=True, slots=True)
class HoldOverflow(Observation):
    """Too many creates held: this one goes on as sent and the API answers it as it would."""

    client_event_id: str | None
    held: int


@dataclass(frozen=True, slots=True)
class CreateDropped(Observation):
    client_event_id: str | None
    reason: str  # "cancelled" (the client got a cancelled response.done) | "closed"
    held_seconds: float


@dataclass(frozen=True, slots=True)
class CancelHeld(Observation):
    client_event_id: str | None
    target: str | None  # client event id of the create whose response is not created yet
    applied: bool = True


@dataclass(frozen=True, slots=True)
class CancelReleased(Observation):
    client_event_id: str | None
    response_id: str | None
    held_seconds: float


@dataclass(frozen=True, slots=True)
class CancelAbsorbed(Observation):
    """A cancel with nothing left to cancel; the API would only have answered with an error."""

    client_event_id: str | None
    reason: str  # "response_done" | "already_cancelling" | "create_failed"
    applied: bool = True


ORCHESTRATION_OBSERVATIONS = (
    ResponseHeld,
    ResponseReleased,
    CreateCoalesced,
    HoldOverflow,
    CreateDropped,
    CancelHeld,
    CancelReleased,
    CancelAbsorbed,
)


def cancelled_done(event_id: str, response_id: str, conversation_id: Any, request: Any) -> dict[str, Any]:
    """The `response.done` of a held create the client cancelled before it reached the API."""
    request = request if isinstance(request, dict) else {}
    return {
        "type": "response.done",
        "event_id": event_id,
        "response": {
            "object": "realtime.response",
            "id": response_id,
            "status": "cancelled",
            "status_details": {"type": "cancelled", "reason": "client_cancelled"},
            "output": [],
            "conversation_id": conversation_id,
            "usage": None,
            "metadata": request.get("metadata"),
        },
    }
