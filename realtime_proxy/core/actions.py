"""What the pure core asks an edge to do, and what it reports for logs, metrics and traces.

The core never touches sockets, clocks or loggers: it returns these values and the relay carries
them out in order. Observations are one frozen dataclass per kind, consumed by the observer by
class, so mypy checks every field. They carry JSON-safe details, never audio or secrets.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # the producer owns the vocabulary (it imports this module)
    from realtime_proxy.core.retry_policy import RetryResult

Frame = str | bytes  # str = WebSocket text frame, bytes = binary frame


@dataclass(frozen=True, slots=True)
class ToUpstream:
    frame: Frame


@dataclass(frozen=True, slots=True)
class ToClient:
    frame: Frame


@dataclass(frozen=True, slots=True)
class StartTimer:
    """Call the core's `on_timer(token, now)` after `delay` seconds (e.g. a retry backoff)."""

    delay: float
    token: str


@dataclass(frozen=True, slots=True)
class CancelTimer:
    token: str


class Observation:
    """Base of every observation: something worth a log line, a metric or a span event."""

    __slots__ = ()


# -- observations, one class per kind -------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class FrameSeen(Observation):
    """One per frame when `log_event_types` is on (type and size only)."""

    direction: str
    event_type: str | None
    bytes: int


@dataclass(frozen=True, slots=True)
class BetaTranslated(Observation):
    direction: str
    before: str
    after: str


@dataclass(frozen=True, slots=True)
class Rewrite(Observation):
    client_event_id: str | None
    event_type: str | None
    rule: str
    path: str
    before: Any
    after: Any
    lossless: bool
    applied: bool
    via: str = "rules"  # "rules", or "retry_escalation" for a re-send's repair
    count: int = 1  # changes this rule made to this event (one observation per rule and event)


@dataclass(frozen=True, slots=True)
class Refusal(Observation):
    client_event_id: str | None
    event_type: str | None
    rule: str
    code: str
    message: str
    applied: bool


@dataclass(frozen=True, slots=True)
class RuleError(Observation):
    client_event_id: str | None
    event_type: str | None
    rule: str
    error: str


@dataclass(frozen=True, slots=True)
class RepairSkipped(Observation):
    """The event was forwarded without running the rules (too large or too deeply nested)."""

    client_event_id: str | None
    event_type: str | None
    reason: str
    bytes: int


@dataclass(frozen=True, slots=True)
class UpstreamError(Observation):
    error_type: Any
    code: Any
    message: Any
    param: Any
    client_event_id: Any
    rules: list[str] | None


@dataclass(frozen=True, slots=True)
class RateLimits(Observation):
    rate_limits: Any


@dataclass(frozen=True, slots=True)
class FirstDelta(Observation):
    response_id: str | None
    modality: str
    seconds: float


@dataclass(frozen=True, slots=True)
class ResponseDone(Observation):
    response_id: str | None
    status: str | None
    error_type: Any
    error_code: Any
    seconds: float | None
    out_of_band: bool
    tokens: list[tuple[str, str, bool, int]] = field(default_factory=list)
    client_event_id: str | None = None  # of the response.create it answers, when matched
    reason: str | None = None  # status_details.reason, e.g. client_cancelled, turn_detected


@dataclass(frozen=True, slots=True)
class RetryAttempt(Observation):
    attempt: int
    delay: float
    response_id: str | None
    error_type: Any
    error_code: Any
    client_event_id: str | None = None  # the request's, as on its rewrite and retry_outcome lines


@dataclass(frozen=True, slots=True)
class RetryOutcome(Observation):
    outcome: RetryResult
    attempts: int
    added_seconds: float
    response_id: str | None
    client_event_id: str | None
    reason: str | None


Action = ToUpstream | ToClient | StartTimer | CancelTimer | Observation
