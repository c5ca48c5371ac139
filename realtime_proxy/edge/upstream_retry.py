"""Opening the upstream with retries: transient refusals (5xx, 429), unreachable hosts and timeouts
are tried again after the pure backoff of `core.backoff`, within a total budget. Used for a session's
first handshake (before the client's 101) and for every resumption."""

from __future__ import annotations

import asyncio
import random
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass

from realtime_proxy.core.backoff import BackoffPolicy, HandshakeCause, cause_of, next_delay, parse_retry_after
from realtime_proxy.core.interned import interned
from realtime_proxy.edge.upstream import UpstreamFailure, UpstreamOptions, UpstreamRefused, UpstreamTimeout
from realtime_proxy.edge.upstream_leg import UpstreamLeg, open_upstream
from realtime_proxy.settings import HandshakeRetrySettings

NO_RETRIES = BackoffPolicy(max_attempts=1)


@dataclass(frozen=True, slots=True)
class Attempt:
    """One failed attempt, reported before the wait (delay None: the last one)."""

    number: int
    cause: HandshakeCause
    status: int | None
    delay: float | None


def backoff_policy(settings: HandshakeRetrySettings, max_attempts: int | None = None) -> BackoffPolicy:
    if not settings.enabled:
        return NO_RETRIES
    return interned(  # one per combination, not one per session (issue 26)
        BackoffPolicy(
            max_attempts=max_attempts or settings.max_attempts,
            base=settings.backoff_base,
            cap=settings.backoff_cap,
            budget=settings.budget,
        )
    )


def describe(failure: UpstreamFailure) -> tuple[HandshakeCause, int | None, float | None]:
    """The failure's cause, HTTP status (None without one) and `Retry-After` in seconds."""
    if isinstance(failure, UpstreamRefused):
        retry_after = parse_retry_after(failure.headers.get("Retry-After"), time.time())
        return cause_of(failure.status), failure.status, retry_after
    if isinstance(failure, UpstreamTimeout):
        return HandshakeCause.TIMEOUT, None, None
    return HandshakeCause.UNREACHABLE, None, None


async def open_with_retries(
    url: str,
    headers: Iterable[tuple[str, str]],
    subprotocols: list[str],
    options: UpstreamOptions,
    policy: BackoffPolicy,
    rng: random.Random,
    report: Callable[[Attempt], None],
) -> tuple[UpstreamLeg, int]:
    """The open leg and the attempts it took, or the last attempt's UpstreamFailure."""
    headers = list(headers)
    loop = asyncio.get_running_loop()
    started = loop.time()
    number = 0
    while True:
        number += 1
        try:
            return await open_upstream(url, headers, subprotocols, options), number
        except UpstreamFailure as failure:
            cause, status, retry_after = describe(failure)
            delay = next_delay(policy, cause, number, loop.time() - started, retry_after, rng)
            report(Attempt(number, cause, status, delay))
            if delay is None:
                raise
        await asyncio.sleep(delay)
