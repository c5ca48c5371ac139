"""Pure retry timing for reopening the upstream: jittered backoff, `Retry-After`, a total budget.

Shaped like websockets' `backoff()` (a delay generator) but bounded: the caller asks for the next
delay with what it knows (attempt number, time spent, the server's `Retry-After`) and gets either a
delay or None (give up now). No clock, no sleeping; the randomness comes in as `rng`.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from email.utils import parsedate_to_datetime
from enum import StrEnum


class HandshakeCause(StrEnum):
    """Why an upstream handshake attempt failed; the `cause` label of the retry metrics."""

    STATUS_5XX = "status_5xx"
    STATUS_429 = "status_429"
    UNREACHABLE = "unreachable"  # connection refused, reset, DNS, closed during the handshake
    TIMEOUT = "timeout"
    REFUSED = "refused"  # any other status: never retried (auth, quota, bad request)


def cause_of(status: int | None, *, timeout: bool = False) -> HandshakeCause:
    if timeout:
        return HandshakeCause.TIMEOUT
    if status is None:
        return HandshakeCause.UNREACHABLE
    if status == 429:
        return HandshakeCause.STATUS_429
    if status >= 500:
        return HandshakeCause.STATUS_5XX
    return HandshakeCause.REFUSED


@dataclass(frozen=True, slots=True)
class BackoffPolicy:
    max_attempts: int = 3  # attempts in all, the first included
    base: float = 0.25  # seconds: attempt n waits uniform(0, min(cap, base * 2**(n-1))) ("full jitter")
    cap: float = 2.0
    budget: float = 5.0  # every attempt and wait must fit in this many seconds from the first try


def parse_retry_after(value: str | None, now_epoch: float) -> float | None:
    """Seconds to wait from a `Retry-After` value (delay-seconds or an HTTP-date, RFC 9110 §10.2.3);
    None when absent or unreadable."""
    if not value:
        return None
    value = value.strip()
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError):
        return None
    if when.tzinfo is None:
        return None
    return max(0.0, when.timestamp() - now_epoch)


def next_delay(
    policy: BackoffPolicy,
    cause: HandshakeCause,
    attempt: int,
    elapsed: float,
    retry_after: float | None,
    rng: random.Random,
) -> float | None:
    """The wait before attempt `attempt + 1`, or None to give up: the cause is not retryable, the
    attempts are used up, or the wait (at least `Retry-After`) would end past the budget."""
    if cause is HandshakeCause.REFUSED or attempt >= policy.max_attempts:
        return None
    delay = rng.uniform(0.0, min(policy.cap, policy.base * 2 ** (attempt - 1)))
    if retry_after is not None:
        delay = max(delay, retry_after)
    if elapsed + delay >= policy.budget:
        return None
    return delay
