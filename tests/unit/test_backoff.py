"""core.backoff: which handshake failures are retried, how long each wait is, when to give up. Pure."""

from __future__ import annotations

import random

import pytest
from hypothesis import given
from hypothesis import strategies as st

from realtime_proxy.core.backoff import BackoffPolicy, HandshakeCause, cause_of, next_delay, parse_retry_after

POLICY = BackoffPolicy(max_attempts=4, base=0.25, cap=1.0, budget=5.0)


@pytest.mark.parametrize(
    ("status", "timeout", "cause"),
    [
        (None, False, HandshakeCause.UNREACHABLE),
        (None, True, HandshakeCause.TIMEOUT),
        (429, False, HandshakeCause.STATUS_429),
        (500, False, HandshakeCause.STATUS_5XX),
        (503, False, HandshakeCause.STATUS_5XX),
        (401, False, HandshakeCause.REFUSED),
        (403, False, HandshakeCause.REFUSED),
        (404, False, HandshakeCause.REFUSED),
        (400, False, HandshakeCause.REFUSED),
    ],
)
def test_cause_of(status: int | None, timeout: bool, cause: HandshakeCause) -> None:
    assert cause_of(status, timeout=timeout) is cause


def test_other_4xx_are_never_retried() -> None:
    assert next_delay(POLICY, HandshakeCause.REFUSED, 1, 0.0, None, random.Random(1)) is None


def test_delays_grow_within_the_cap_then_attempts_run_out() -> None:
    rng = random.Random(3)
    ceilings = [0.25, 0.5, 1.0]  # base * 2**(n-1), capped at 1.0
    for attempt, ceiling in enumerate(ceilings, start=1):
        delay = next_delay(POLICY, HandshakeCause.STATUS_5XX, attempt, 0.0, None, rng)
        assert delay is not None and 0.0 <= delay <= ceiling
    assert next_delay(POLICY, HandshakeCause.STATUS_5XX, 4, 0.0, None, rng) is None


def test_retry_after_is_a_floor_and_the_budget_a_ceiling() -> None:
    rng = random.Random(5)
    assert next_delay(POLICY, HandshakeCause.STATUS_429, 1, 0.0, 2.0, rng) == 2.0
    assert next_delay(POLICY, HandshakeCause.STATUS_429, 1, 3.5, 2.0, rng) is None  # 5.5 > 5.0
    assert next_delay(POLICY, HandshakeCause.STATUS_429, 1, 0.0, 60.0, rng) is None  # honour it: give up


@given(
    st.integers(1, 10),
    st.floats(0, 10),
    st.one_of(st.none(), st.floats(0, 10)),
    st.sampled_from([c for c in HandshakeCause if c is not HandshakeCause.REFUSED]),
)
def test_a_delay_always_fits_the_budget(
    attempt: int, elapsed: float, retry_after: float | None, cause: HandshakeCause
) -> None:
    delay = next_delay(POLICY, cause, attempt, elapsed, retry_after, random.Random(attempt))
    if delay is not None:
        assert attempt < POLICY.max_attempts and elapsed + delay < POLICY.budget
        assert retry_after is None or delay >= retry_after


def test_parse_retry_after() -> None:
    now = 1_700_000_000.0
    assert parse_retry_after("3", now) == 3.0
    assert parse_retry_after(" 0.5 ", now) == 0.5
    assert parse_retry_after("-4", now) == 0.0
    assert parse_retry_after(None, now) is None
    assert parse_retry_after("soon", now) is None
    assert parse_retry_after("Tue, 14 Nov 2023 22:13:30 GMT", now) == 10.0
    assert parse_retry_after("Tue, 14 Nov 2023 22:13:00 GMT", now) == 0.0  # in the past
