"""Turns the core's Observations and the relay's lifecycle into log lines and metrics.

One instance per session. It also accumulates the canonical summary line logged at close.
"""

from __future__ import annotations

from collections import Counter
from typing import Any

from proxy.core.actions import Observation
from proxy.ops.metrics import KNOWN_ERROR_CODES, KNOWN_ERROR_TYPES, RESPONSE_STATUSES, Metrics, bounded

_RATE_LIMIT_NAMES = ("requests", "tokens")


class SessionObserver:
    def __init__(self, metrics: Metrics, log: Any) -> None:
        self.metrics = metrics
        self.log = log
        self.rewrites: Counter[str] = Counter()
        self.retries: Counter[str] = Counter()
        self.responses: Counter[str] = Counter()
        self.tokens: Counter[str] = Counter()
        self.upstream_errors = 0
        self.refusals = 0
        self.rule_errors = 0

    def observe(self, item: Observation) -> None:
        handler = getattr(self, f"_on_{item.kind}", None)
        if handler is not None:
            handler(item.fields)
        else:
            self.log.info(item.kind, **item.fields)

    def _on_event(self, fields: dict[str, Any]) -> None:
        self.log.debug("event", **fields)

    def _on_rewrite(self, fields: dict[str, Any]) -> None:
        self.rewrites[fields["rule"]] += 1
        self.metrics.rewrites_total.labels(fields["rule"]).inc()
        self.log.info("rewrite", **fields)

    def _on_refusal(self, fields: dict[str, Any]) -> None:
        self.refusals += 1
        self.metrics.refusals_total.labels(fields["rule"]).inc()
        self.log.warning("refusal", **fields)

    def _on_rule_error(self, fields: dict[str, Any]) -> None:
        self.rule_errors += 1
        self.metrics.rule_errors_total.labels(fields["rule"]).inc()
        self.log.error("rule_error", **fields)

    def _on_retry_attempt(self, fields: dict[str, Any]) -> None:
        self.log.warning("retry_attempt", **fields)

    def _on_retry_outcome(self, fields: dict[str, Any]) -> None:
        outcome = fields.get("outcome", "other")
        self.retries[outcome] += 1
        self.metrics.retries_total.labels(outcome).inc()
        if isinstance(fields.get("attempts"), int) and outcome != "untracked":
            self.metrics.retry_attempts.observe(fields["attempts"])
        added = fields.get("added_seconds")
        if isinstance(added, int | float) and added > 0:
            self.metrics.retry_added_seconds.observe(added)
        level = self.log.info if outcome in {"ok", "recovered"} else self.log.warning
        level("retry_outcome", **fields)

    def _on_upstream_error(self, fields: dict[str, Any]) -> None:
        self.upstream_errors += 1
        error_type = bounded(fields.get("error_type"), KNOWN_ERROR_TYPES)
        code = bounded(fields.get("code"), KNOWN_ERROR_CODES)
        self.metrics.upstream_errors_total.labels(error_type, code).inc()
        self.log.warning("upstream_error", **fields)

    def _on_first_delta(self, fields: dict[str, Any]) -> None:
        self.metrics.time_to_first_delta.labels(fields["modality"]).observe(fields["seconds"])

    def _on_response_done(self, fields: dict[str, Any]) -> None:
        status = bounded(fields.get("status"), RESPONSE_STATUSES, none="other")
        error_type = fields.get("error_type")
        self.responses[status] += 1
        self.metrics.responses_total.labels(
            status, bounded(error_type, KNOWN_ERROR_TYPES) if error_type else "none"
        ).inc()
        if fields.get("seconds") is not None:
            self.metrics.response_duration.labels(status).observe(fields["seconds"])
        for direction, modality, cached, count in fields.get("tokens", ()):
            self.metrics.tokens_total.labels(direction, modality, "true" if cached else "false").inc(count)
            self.tokens[f"{direction}_{modality}{'_cached' if cached else ''}"] += count
        if status != "completed":
            self.log.warning("response_not_completed", **{k: v for k, v in fields.items() if k != "tokens"})

    def _on_rate_limits(self, fields: dict[str, Any]) -> None:
        limits = fields.get("rate_limits")
        for entry in limits if isinstance(limits, list) else ():
            if not isinstance(entry, dict):
                continue
            name = bounded(entry.get("name"), _RATE_LIMIT_NAMES)
            if isinstance(entry.get("remaining"), int | float):
                self.metrics.rate_limit_remaining.labels(name).set(entry["remaining"])
            if isinstance(entry.get("limit"), int | float):
                self.metrics.rate_limit_limit.labels(name).set(entry["limit"])

    def summary(self) -> dict[str, Any]:
        return {
            "rewrites": dict(self.rewrites),
            "retries": dict(self.retries),
            "responses": dict(self.responses),
            "tokens": dict(self.tokens),
            "upstream_errors": self.upstream_errors,
            "refusals": self.refusals,
            "rule_errors": self.rule_errors,
        }
