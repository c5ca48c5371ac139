"""The observer turns every turn-taking observation into its log line, its metric action and a
count in the session summary; observe mode counts the `would_*` actions instead."""

from __future__ import annotations

from typing import Any

import orjson
from prometheus_client import CollectorRegistry

from realtime_proxy.core.actions import RetryOutcome
from realtime_proxy.core.orchestration_observations import (
    ORCHESTRATION_OBSERVATIONS,
    CancelAbsorbed,
    CancelHeld,
    CancelReleased,
    CreateCoalesced,
    CreateDropped,
    HoldOverflow,
    HoldReason,
    ResponseHeld,
    ResponseReleased,
)
from realtime_proxy.core.retry_policy import RetryResult
from realtime_proxy.observe.metrics import Metrics
from realtime_proxy.observe.observe import SessionObserver


class Log:
    def __init__(self) -> None:
        self.lines: list[tuple[str, str, dict[str, Any]]] = []

    def __getattr__(self, level: str) -> Any:
        return lambda event, **fields: self.lines.append((level, event, fields))


def test_every_turn_taking_observation_is_logged_counted_and_summarised() -> None:
    metrics, log = Metrics(CollectorRegistry()), Log()
    observer = SessionObserver(metrics, log)
    observed = [
        ResponseHeld("b", "active_response", 1),
        ResponseReleased("b", "response_done", 1.5),
        CreateCoalesced("c", "b", 2),
        HoldOverflow("d", 8),
        CreateDropped("e", "closed", 0.5),
        CancelHeld("x", "b"),
        CancelReleased("x", "r1", 0.25),
        CancelAbsorbed("y", "response_done"),
        ResponseHeld("f", "tool_outputs", 1, applied=False),
        CreateCoalesced("g", "f", 2, applied=False),
        CancelHeld("z", None, applied=False),
        CancelAbsorbed("w", "response_done", applied=False),
    ]
    assert {type(o) for o in observed} == set(ORCHESTRATION_OBSERVATIONS)
    for item in observed:
        observer.observe(item)
    assert [(level, event) for level, event, _ in log.lines] == [
        ("info", "response_held"),
        ("info", "response_released"),
        ("info", "create_coalesced"),
        ("warning", "hold_overflow"),
        ("info", "create_dropped"),
        ("info", "cancel_held"),
        ("info", "cancel_released"),
        ("info", "cancel_absorbed"),
        ("info", "response_held"),
        ("info", "create_coalesced"),
        ("info", "cancel_held"),
        ("info", "cancel_absorbed"),
    ]
    assert log.lines[0][2] == {
        "client_event_id": "b",
        "reason": "active_response",
        "held": 1,
        "applied": True,
    }
    counts = {
        action: metrics.registry.get_sample_value("realtime_proxy_orchestration_total", {"action": action})
        for action in ("held", "released", "coalesced", "overflow", "dropped", "cancel_held")
    }
    assert counts == dict.fromkeys(counts, 1.0)
    assert metrics.registry.get_sample_value("realtime_proxy_orchestration_held_seconds_sum") == 1.5
    assert observer.summary()["orchestration"] == {
        "held": 1,
        "released": 1,
        "coalesced": 1,
        "overflow": 1,
        "dropped": 1,
        "cancel_held": 1,
        "cancel_released": 1,
        "cancel_absorbed": 1,
        "would_hold": 1,
        "would_coalesce": 1,
        "would_hold_cancel": 1,
        "would_absorb_cancel": 1,
    }


def test_the_summary_of_enum_valued_observations_renders_as_json() -> None:
    """Counts are keyed by the plain label string: orjson (the JSON log renderer) refuses str-subclass
    keys, which would end the session's `session_closed` line with an error."""
    observer = SessionObserver(Metrics(CollectorRegistry()), Log())
    observer.observe(ResponseHeld("b", HoldReason.ACTIVE_RESPONSE, 1))
    observer.observe(HoldOverflow("d", 8))
    observer.observe(RetryOutcome(RetryResult.NOT_RETRYABLE, 1, 0.0, None, None, "invalid_value"))
    summary = observer.summary()
    assert orjson.loads(orjson.dumps(summary))["orchestration"] == {"held": 1, "overflow": 1}
    assert orjson.loads(orjson.dumps(summary))["retries"] == {"not_retryable": 1}
    assert all(type(key) is str for key in (*summary["orchestration"], *summary["retries"]))
