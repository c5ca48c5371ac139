"""Histogram buckets give true quantiles at the values that occur: the dashboard's
histogram_quantile over the proxy's own exposition, computed the way Prometheus does
(linear interpolation inside the bucket, the first bucket starting at 0)."""

from __future__ import annotations

from prometheus_client import generate_latest
from prometheus_client.parser import text_string_to_metric_families

from realtime_proxy.observe.metrics import Metrics


def histogram_quantile(q: float, metrics: Metrics, family: str) -> float:
    text = generate_latest(metrics.registry).decode()
    (found,) = [f for f in text_string_to_metric_families(text) if f.name == family]
    buckets = sorted((float(s.labels["le"]), s.value) for s in found.samples if s.name.endswith("_bucket"))
    total = buckets[-1][1]
    rank = q * total
    lower, below = 0.0, 0.0
    for upper, count in buckets:
        if count >= rank:
            if upper == float("inf"):
                return lower
            return lower + (upper - lower) * (rank - below) / (count - below)
        lower, below = upper, count
    raise AssertionError("rank beyond the last bucket")


def test_attempt_quantiles_read_whole_attempts() -> None:
    metrics = Metrics()
    for _ in range(20):
        metrics.retry_attempts.observe(1)
    assert round(histogram_quantile(0.5, metrics, "realtime_proxy_oob_retry_attempts"), 2) == 1.0
    assert round(histogram_quantile(0.95, metrics, "realtime_proxy_oob_retry_attempts"), 2) == 1.0
    for _ in range(2):
        metrics.retry_attempts.observe(3)
    assert round(histogram_quantile(0.5, metrics, "realtime_proxy_oob_retry_attempts"), 2) == 1.0
    assert round(histogram_quantile(0.95, metrics, "realtime_proxy_oob_retry_attempts"), 2) == 3.0


def test_sub_second_sessions_do_not_read_as_half_a_second() -> None:
    metrics = Metrics()
    for _ in range(10):
        metrics.session_duration.observe(0.08)
    p50 = histogram_quantile(0.5, metrics, "realtime_proxy_session_duration_seconds")
    assert 0.05 <= p50 <= 0.1
