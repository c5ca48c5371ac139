"""When a failed response may be re-sent, and how long to wait before each re-send.

Pure functions over `response.done`'s `response` object and a seeded `random.Random`:
no clock, no state, so the retry state machine and its tests stay deterministic.
"""

from __future__ import annotations

import random
from collections.abc import Iterator
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from realtime_proxy.core.actions import RetryOutcome


class RetryResult(StrEnum):
    """How a tracked request ended: the `outcome` of `retry_outcome` lines and the label of
    `realtime_proxy_oob_retries_total` (published: values never change)."""

    OK = "ok"  # delivered at the first attempt
    RECOVERED = "recovered"  # delivered after a re-send
    EXHAUSTED = "exhausted"  # out of attempts or past the deadline: the failure delivered
    NOT_RETRYABLE = "not_retryable"  # failed in a way a re-send would not fix
    CANCELLED = "cancelled"  # by the client, or the session closed
    UNTRACKED = "untracked"  # its metadata left no room for the correlation key


# The only failures the API itself calls transient ("We recommend you retry your request.").
RETRYABLE_ERROR_TYPES = frozenset({"server_error"})
RETRYABLE_ERROR_CODES = frozenset({"inference_rate_limit_exceeded"})


@dataclass(frozen=True)
class RetryPolicy:
    max_attempts: int = 3  # total attempts, the first included; < 2 disables retrying
    backoff_base: float = 0.5
    backoff_cap: float = 4.0
    deadline: float = 10.0  # seconds from the first send to the last re-send
    retry_in_band: bool = False
    escalate_rules: tuple[str, ...] = ("tool_choice_object",)

    def __post_init__(self) -> None:
        if self.max_attempts < 1:
            raise ValueError("max_attempts must be >= 1")
        if min(self.backoff_base, self.backoff_cap, self.deadline) < 0:
            raise ValueError("backoff_base, backoff_cap and deadline must be >= 0")


def backoff_delays(policy: RetryPolicy, rng: random.Random) -> Iterator[float]:
    """One delay per re-send (max_attempts - 1 of them): exponential backoff with full jitter."""
    for retry in range(1, policy.max_attempts):
        ceiling = min(policy.backoff_cap, policy.backoff_base * 2.0 ** (retry - 1))
        yield rng.uniform(0.0, ceiling)


def failure_error(response: dict[str, Any]) -> tuple[str | None, str | None]:
    """`(type, code)` of `status_details.error`, each None when absent."""
    details = response.get("status_details")
    error = details.get("error") if isinstance(details, dict) else None
    if not isinstance(error, dict):
        return None, None
    error_type, code = error.get("type"), error.get("code")
    return (
        error_type if isinstance(error_type, str) else None,
        code if isinstance(code, str) else None,
    )


def produced_nothing(response: dict[str, Any]) -> bool:
    """No output items and no output tokens: the server changed nothing, a re-send is safe."""
    if response.get("output"):
        return False
    usage = response.get("usage")
    if not isinstance(usage, dict):
        return True
    return not usage.get("output_tokens")


def is_transient_error(error_type: str | None, code: str | None) -> bool:
    return error_type in RETRYABLE_ERROR_TYPES or code in RETRYABLE_ERROR_CODES


def is_retryable_failure(response: dict[str, Any]) -> bool:
    """A transient failure that produced nothing (the response's own evidence only)."""
    if response.get("status") != "failed":
        return False
    return is_transient_error(*failure_error(response)) and produced_nothing(response)


def final_outcome(
    response: dict[str, Any], attempts: int, client_cancelled: bool, output_began: bool
) -> tuple[RetryResult, str | None]:
    """`(outcome, reason)` for a response released as the server ended it (not retried).

    completed/incomplete are deliveries ("ok", or "recovered" after a re-send); only a
    failure is "not_retryable", with the reason it was not."""
    status = response.get("status")
    if status == "cancelled":
        details = response.get("status_details")
        reason = details.get("reason") if isinstance(details, dict) else None
        return RetryResult.CANCELLED, reason if isinstance(reason, str) else None
    if status != "failed":
        return (RetryResult.RECOVERED if attempts > 1 else RetryResult.OK), None
    if client_cancelled:
        return RetryResult.NOT_RETRYABLE, "client_cancelled"
    if output_began:
        return RetryResult.NOT_RETRYABLE, "output_began"
    error_type, code = failure_error(response)
    if is_transient_error(error_type, code):  # transient, but something was produced
        return RetryResult.NOT_RETRYABLE, "produced_output"
    return RetryResult.NOT_RETRYABLE, code or error_type or "failed"


def outcome_observation(
    outcome: RetryResult,
    attempts: int,
    added_seconds: float,
    response_id: str | None,
    client_event_id: str | None,
    reason: str | None,
) -> RetryOutcome:
    """The one `retry_outcome` each tracked (or refused) request ends with."""
    return RetryOutcome(outcome, attempts, added_seconds, response_id, client_event_id, reason)
