"""What the orchestration stage reports, its options, and the one event it writes itself.

Every observation names the client's own `event_id` (None when the client sent none) and whether
the stage acted (`applied`) or only saw what it would have done (observe mode, dry run)."""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from realtime_proxy.core.actions import Observation


class HoldReason(StrEnum):
    """Why a create waits (`response_held.reason`)."""

    ACTIVE_RESPONSE = "active_response"  # an in-band response is upstream
    TOOL_OUTPUTS = "tool_outputs"  # the tool-call turn's outputs are not all in
    REJECTED_AS_ACTIVE = "rejected_as_active"  # the API refused it: a response it had not told of runs


class ReleaseReason(StrEnum):
    """What let a held create go (`response_released.reason`)."""

    RESPONSE_DONE = "response_done"
    CREATE_FAILED = "create_failed"  # the create upstream was refused: the next may go
    TOOL_OUTPUTS = "tool_outputs"
    TOOL_OUTPUT_TIMEOUT = "tool_output_timeout"
    PREVIOUS_CANCELLED = "previous_cancelled"  # the create ahead of it was dropped by a cancel


class AbsorbReason(StrEnum):
    """Why a cancel went no further (`cancel_absorbed.reason`)."""

    RESPONSE_DONE = "response_done"
    ALREADY_CANCELLING = "already_cancelling"
    CREATE_FAILED = "create_failed"


class DropReason(StrEnum):
    """Why a held create never went upstream (`create_dropped.reason`)."""

    CANCELLED = "cancelled"  # the client got a cancelled response.done
    CLOSED = "closed"


class TurnAction(StrEnum):
    """The label of `realtime_proxy_orchestration_total` (published: values never change); observe
    mode (and --dry-run) counts the `would_*` ones instead."""

    HELD = "held"
    RELEASED = "released"
    COALESCED = "coalesced"
    OVERFLOW = "overflow"
    DROPPED = "dropped"
    CANCEL_HELD = "cancel_held"
    CANCEL_RELEASED = "cancel_released"
    CANCEL_ABSORBED = "cancel_absorbed"
    WOULD_HOLD = "would_hold"
    WOULD_COALESCE = "would_coalesce"
    WOULD_HOLD_CANCEL = "would_hold_cancel"
    WOULD_ABSORB_CANCEL = "would_absorb_cancel"


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
    reason: HoldReason
    held: int  # creates held, this one included
    applied: bool = True


@dataclass(frozen=True, slots=True)
class ResponseReleased(Observation):
    client_event_id: str | None
    reason: ReleaseReason
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
    reason: DropReason
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
    reason: AbsorbReason
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
