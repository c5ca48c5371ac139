from __future__ import annotations

import random
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from realtime_proxy.core.retry_policy import (
    RetryPolicy,
    backoff_delays,
    failure_error,
    final_outcome,
    is_retryable_failure,
    produced_nothing,
)


def failed(error: dict[str, Any] | None, **over: Any) -> dict[str, Any]:
    response: dict[str, Any] = {
        "status": "failed",
        "status_details": {"type": "failed", "error": error},
        "output": [],
        "usage": {"total_tokens": 0, "output_tokens": 0},
    }
    response.update(over)
    return response


def test_delays_are_deterministic_for_a_seed() -> None:
    policy = RetryPolicy(max_attempts=6)
    first = list(backoff_delays(policy, random.Random(7)))
    assert first == list(backoff_delays(policy, random.Random(7)))
    assert first != list(backoff_delays(policy, random.Random(8)))


def test_one_delay_per_retry() -> None:
    assert len(list(backoff_delays(RetryPolicy(), random.Random(1)))) == 2
    assert list(backoff_delays(RetryPolicy(max_attempts=1), random.Random(1))) == []


@given(seed=st.integers(0, 2**32), attempts=st.integers(1, 12))
def test_delays_stay_within_exponential_ceiling_and_cap(seed: int, attempts: int) -> None:
    policy = RetryPolicy(max_attempts=attempts, backoff_base=0.5, backoff_cap=4.0)
    delays = list(backoff_delays(policy, random.Random(seed)))
    for n, delay in enumerate(delays, start=1):
        assert 0.0 <= delay <= min(4.0, 0.5 * 2 ** (n - 1))


def test_full_jitter_draws_uniformly_from_the_ceiling() -> None:
    class Recording(random.Random):
        calls: list[tuple[float, float]] = []

        def uniform(self, a: float, b: float) -> float:
            self.calls.append((a, b))
            return b

    rng = Recording()
    delays = list(backoff_delays(RetryPolicy(max_attempts=6, backoff_base=0.5, backoff_cap=3.0), rng))
    assert rng.calls == [(0.0, 0.5), (0.0, 1.0), (0.0, 2.0), (0.0, 3.0), (0.0, 3.0)]
    assert delays == [0.5, 1.0, 2.0, 3.0, 3.0]


@pytest.mark.parametrize(
    ("settings", "message"),
    [
        ({"max_attempts": 0}, "max_attempts must be >= 1"),
        ({"deadline": -1}, "backoff_base, backoff_cap and deadline must be >= 0"),
        ({"backoff_base": -0.1}, "backoff_base, backoff_cap and deadline must be >= 0"),
        ({"backoff_cap": -0.1}, "backoff_base, backoff_cap and deadline must be >= 0"),
    ],
)
def test_policy_rejects_nonsense(settings: dict[str, Any], message: str) -> None:
    with pytest.raises(ValueError) as info:
        RetryPolicy(**settings)
    assert str(info.value) == message


def test_zero_waits_are_allowed() -> None:
    policy = RetryPolicy(max_attempts=1, backoff_base=0, backoff_cap=0, deadline=0)
    assert list(backoff_delays(policy, random.Random(1))) == []


def test_defaults() -> None:
    policy = RetryPolicy()
    assert (policy.max_attempts, policy.backoff_base, policy.backoff_cap, policy.deadline) == (
        3,
        0.5,
        4.0,
        10.0,
    )
    assert policy.retry_in_band is False
    assert policy.escalate_rules == ("tool_choice_object",)


@pytest.mark.parametrize(
    "response",
    [
        failed({"type": "server_error"}),
        failed({"type": "invalid_request_error", "code": "inference_rate_limit_exceeded"}),
        failed({"type": "server_error"}, usage=None),
        failed({"type": "server_error"}, output=None),
    ],
)
def test_retryable(response: dict[str, Any]) -> None:
    assert is_retryable_failure(response)


@pytest.mark.parametrize(
    "response",
    [
        failed({"type": "invalid_request_error", "code": "invalid_value"}),
        failed(None),
        failed({"type": "server_error"}, output=[{"type": "message"}]),
        failed({"type": "server_error"}, usage={"output_tokens": 3}),
        {"status": "cancelled", "status_details": {"type": "cancelled", "reason": "turn_detected"}},
        {"status": "incomplete", "status_details": {"type": "incomplete", "reason": "max_output_tokens"}},
        {"status": "completed", "output": []},
    ],
)
def test_not_retryable(response: dict[str, Any]) -> None:
    assert not is_retryable_failure(response)


def test_failure_error_tolerates_odd_shapes() -> None:
    assert failure_error({}) == (None, None)
    assert failure_error({"status_details": {"error": {"type": 3, "code": "x"}}}) == (None, "x")
    assert failure_error({"status_details": {"error": {"type": "t", "code": 3}}}) == ("t", None)
    assert produced_nothing({"usage": {}})


CANCELLED = {"status": "cancelled", "status_details": {"type": "cancelled", "reason": "turn_detected"}}


@pytest.mark.parametrize(
    ("response", "attempts", "client_cancelled", "output_began", "expected"),
    [
        ({"status": "completed"}, 1, False, False, ("ok", None)),
        ({"status": "incomplete"}, 2, False, False, ("recovered", None)),
        (CANCELLED, 1, False, False, ("cancelled", "turn_detected")),
        ({"status": "cancelled", "status_details": None}, 1, False, False, ("cancelled", None)),
        ({"status": "cancelled", "status_details": {"reason": 5}}, 1, False, False, ("cancelled", None)),
        (failed({"type": "server_error"}), 1, True, True, ("not_retryable", "client_cancelled")),
        (failed({"type": "server_error"}), 1, False, True, ("not_retryable", "output_began")),
        (
            failed({"type": "server_error"}, output=[{}]),
            1,
            False,
            False,
            ("not_retryable", "produced_output"),
        ),
        (
            failed({"type": "invalid_request_error", "code": "inference_rate_limit_exceeded"}, output=[{}]),
            1,
            False,
            False,
            ("not_retryable", "produced_output"),
        ),
        (failed({"type": "invalid_request_error", "code": "bad"}), 1, False, False, ("not_retryable", "bad")),
        (
            failed({"type": "invalid_request_error"}),
            1,
            False,
            False,
            ("not_retryable", "invalid_request_error"),
        ),
        (failed(None), 3, False, False, ("not_retryable", "failed")),
    ],
)
def test_final_outcome_names_why_a_response_was_released(
    response: dict[str, Any],
    attempts: int,
    client_cancelled: bool,
    output_began: bool,
    expected: tuple[str, str | None],
) -> None:
    assert final_outcome(response, attempts, client_cancelled, output_began) == expected
