"""Turns the core's Observations and the relay's lifecycle into log lines and metrics.

One instance per session. It also accumulates the canonical summary line logged at close.
"""

from __future__ import annotations

from collections import Counter
from typing import TYPE_CHECKING, Any

from proxy.core.actions import Observation
from proxy.ops.cost import SessionCost
from proxy.ops.metrics import KNOWN_ERROR_CODES, KNOWN_ERROR_TYPES, RESPONSE_STATUSES, Metrics, bounded

if TYPE_CHECKING:  # the otel extra is optional: imported only where tracing is configured
    from proxy.ops.otel import SessionTrace

_RATE_LIMIT_NAMES = ("requests", "tokens")


class SessionObserver:
    def __init__(
        self,
        metrics: Metrics,
        log: Any,
        *,
        cost: SessionCost | None = None,
        trace: SessionTrace | None = None,
    ) -> None:
        self.metrics = metrics
        self.log = log
        self.cost = cost or SessionCost(None, {})
        self.trace = trace  # None unless tracing is configured: every hook below is skipped
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
        if self.trace is not None:
            self.trace.on_rewrite(
                fields.get("client_event_id"),
                fields.get("event_type"),
                rule=fields["rule"],
                path=fields.get("path"),
                lossless=fields.get("lossless"),
                applied=fields.get("applied"),
                via=fields.get("via", "rules"),
            )

    def _on_refusal(self, fields: dict[str, Any]) -> None:
        self.refusals += 1
        self.metrics.refusals_total.labels(fields["rule"]).inc()
        self.log.warning("refusal", **fields)
        if self.trace is not None:
            self.trace.on_refusal(
                fields.get("client_event_id"), fields.get("event_type"), fields["rule"], fields["code"]
            )

    def _on_rule_error(self, fields: dict[str, Any]) -> None:
        self.rule_errors += 1
        self.metrics.rule_errors_total.labels(fields["rule"]).inc()
        self.log.error("rule_error", **fields)

    def _on_retry_attempt(self, fields: dict[str, Any]) -> None:
        self.log.warning("retry_attempt", **fields)
        if self.trace is not None:
            self.trace.on_retry_attempt(
                attempt=fields["attempt"],
                delay=fields["delay"],
                response_id=fields.get("response_id"),
                client_event_id=fields.get("client_event_id"),
                error_type=fields.get("error_type"),
                error_code=fields.get("error_code"),
            )

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
        if self.trace is not None:
            self.trace.on_retry_outcome(
                outcome=outcome,
                attempts=fields.get("attempts", 0),
                response_id=fields.get("response_id"),
                client_event_id=fields.get("client_event_id"),
            )

    def _on_upstream_error(self, fields: dict[str, Any]) -> None:
        self.upstream_errors += 1
        error_type = bounded(fields.get("error_type"), KNOWN_ERROR_TYPES)
        code = bounded(fields.get("code"), KNOWN_ERROR_CODES)
        self.metrics.upstream_errors_total.labels(error_type, code).inc()
        self.log.warning("upstream_error", **fields)

    def _on_first_delta(self, fields: dict[str, Any]) -> None:
        self.metrics.time_to_first_delta.labels(fields["modality"]).observe(fields["seconds"])
        if self.trace is not None:
            self.trace.on_first_delta(fields.get("response_id"), fields["seconds"])

    def _on_response_done(self, fields: dict[str, Any]) -> None:
        status = bounded(fields.get("status"), RESPONSE_STATUSES, none="other")
        error_type = fields.get("error_type")
        model = self.cost.label
        self.responses[status] += 1
        self.metrics.responses_total.labels(
            status, bounded(error_type, KNOWN_ERROR_TYPES) if error_type else "none", model
        ).inc()
        if fields.get("seconds") is not None:
            self.metrics.response_duration.labels(status).observe(fields["seconds"])
        tokens = fields.get("tokens", ())
        for direction, modality, cached, count in tokens:
            self.metrics.tokens_total.labels(direction, modality, "true" if cached else "false", model).inc(
                count
            )
            self.tokens[f"{direction}_{modality}{'_cached' if cached else ''}"] += count
        cost = self.cost.add(tokens)
        if cost:
            self.metrics.cost_usd_total.labels(model).inc(cost)
        if status != "completed":
            self.log.warning("response_not_completed", **{k: v for k, v in fields.items() if k != "tokens"})
        if self.trace is not None:
            self.trace.on_response_done(
                response_id=fields.get("response_id"),
                client_event_id=fields.get("client_event_id"),
                status=status,
                error_type=error_type,
                seconds=fields.get("seconds"),
                out_of_band=bool(fields.get("out_of_band")),
                tokens=list(tokens),
                cost_usd=cost,
            )

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
            "cost_usd": round(self.cost.total_usd, 6),
            "priced_as": self.cost.label,
        }

    def end(self, outcome: str) -> None:
        """The session is over: close its trace (if any) with the summary's counts."""
        if self.trace is not None:
            summary = {
                "realtime_proxy.cost_usd": self.cost.total_usd,
                "realtime_proxy.responses": sum(self.responses.values()),
                "realtime_proxy.rewrites": sum(self.rewrites.values()),
                "realtime_proxy.refusals": self.refusals,
                "realtime_proxy.upstream_errors": self.upstream_errors,
            }
            self.trace.end(outcome, summary)
