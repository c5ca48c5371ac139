"""Metrics of upstream failures and recovery (issue 25): handshake retries, session resumptions,
re-driven responses. Labels are the closed vocabularies below, every series pre-initialised."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Histogram

from realtime_proxy.core.backoff import HandshakeCause

PREFIX = "realtime_proxy"
# Why a session was resumed on a new upstream connection.
RECONNECT_CAUSES = ("dropped", "closed", "expired", "rollover")
RECONNECT_OUTCOMES = ("resumed", "failed", "refused")
REDRIVE_OUTCOMES = ("redriven", "recovered", "exhausted", "superseded")
RETRIED_CAUSES = tuple(c.value for c in HandshakeCause if c is not HandshakeCause.REFUSED)


class UpstreamMetrics:
    def __init__(self, r: CollectorRegistry) -> None:
        p = PREFIX
        self.handshake_retries_total = Counter(
            f"{p}_upstream_handshake_retries_total",
            "Upstream handshakes retried after a transient failure, by cause",
            ["cause"],
            registry=r,
        )
        self.reconnects_total = Counter(
            f"{p}_reconnects_total",
            "Sessions moved to a new upstream connection, by cause and outcome",
            ["cause", "outcome"],
            registry=r,
        )
        self.replayed_items_total = Counter(
            f"{p}_replayed_items_total", "Conversation items replayed into resumed sessions", registry=r
        )
        self.replayed_bytes_total = Counter(
            f"{p}_replayed_bytes_total", "Bytes of events sent to replay resumed sessions", registry=r
        )
        self.resume_seconds = Histogram(
            f"{p}_resume_seconds",
            "Time from losing the upstream to the resumed session taking traffic",
            buckets=(0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2, 5, 10, 30),
            registry=r,
        )
        self.redrives_total = Counter(
            f"{p}_redrives_total",
            "Failed in-band responses hidden from the client and created again, by outcome",
            ["outcome"],
            registry=r,
        )
        for cause in RETRIED_CAUSES:
            self.handshake_retries_total.labels(cause)
        for cause in RECONNECT_CAUSES:
            for outcome in RECONNECT_OUTCOMES:
                self.reconnects_total.labels(cause, outcome)
        for outcome in REDRIVE_OUTCOMES:
            self.redrives_total.labels(outcome)
