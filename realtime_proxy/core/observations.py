"""The closed set of observations the core produces: the observer matches over this union and ends
in `assert_never`, so a new observation without a handler fails mypy (observe/observe.py)."""

from __future__ import annotations

from typing import TypeAlias

from realtime_proxy.core.actions import (
    BetaTranslated,
    FirstDelta,
    FrameSeen,
    RateLimits,
    Refusal,
    RepairSkipped,
    ResponseDone,
    RetryAttempt,
    RetryOutcome,
    Rewrite,
    RuleError,
    UpstreamError,
)
from realtime_proxy.core.orchestration_observations import (
    CancelAbsorbed,
    CancelHeld,
    CancelReleased,
    CreateCoalesced,
    CreateDropped,
    HoldOverflow,
    ResponseHeld,
    ResponseReleased,
)

CoreObservation: TypeAlias = (
    FrameSeen
    | BetaTranslated
    | Rewrite
    | Refusal
    | RuleError
    | RepairSkipped
    | UpstreamError
    | RateLimits
    | FirstDelta
    | ResponseDone
    | RetryAttempt
    | RetryOutcome
    | ResponseHeld
    | ResponseReleased
    | CreateCoalesced
    | HoldOverflow
    | CreateDropped
    | CancelHeld
    | CancelReleased
    | CancelAbsorbed
)
