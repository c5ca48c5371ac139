"""The observer of a Live session: the Realtime observer's lifecycle and summary, plus the Live
observations (`core.live_observations`) turned into log lines, metrics and trace hooks."""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any, TypeAlias, assert_never

from realtime_proxy.core.actions import Observation
from realtime_proxy.core.live_observations import (
    LiveDelegatedResponse,
    LiveDelegation,
    LiveEarlyCommand,
    LiveError,
    LiveFirstDelta,
    LiveStarted,
    LiveUsage,
)
from realtime_proxy.observe.cost_live import LiveCost, LivePrice
from realtime_proxy.observe.metrics import Metrics, bounded
from realtime_proxy.observe.metrics_live import LIVE_ERROR_CODES, LIVE_RESPONSE_STATUSES
from realtime_proxy.observe.observe import SessionObserver, _fields

if TYPE_CHECKING:
    from realtime_proxy.observe.otel import SessionTrace


LiveObservation: TypeAlias = (
    LiveStarted
    | LiveUsage
    | LiveFirstDelta
    | LiveError
    | LiveDelegation
    | LiveDelegatedResponse
    | LiveEarlyCommand
)


def live_cost(table: Mapping[str, LivePrice]) -> LiveCost:
    return LiveCost(table)


class LiveObserver(SessionObserver):
    def __init__(
        self,
        metrics: Metrics,
        log: Any,
        *,
        live_cost: LiveCost,
        trace: SessionTrace | None = None,
        server_model: Callable[[], str | None] = lambda: None,
    ) -> None:
        super().__init__(metrics, log, trace=trace, server_model=server_model)
        self.live_cost = live_cost
        self.live_seconds = 0.0
        self.live_errors: Counter[str] = Counter()
        self.delegated: Counter[str] = Counter()
        self.first_deltas = 0

    def _on_live_started(self, item: LiveStarted) -> None:
        self.live_cost.learn(item.model)
        self.log.info("live_session_started", **_fields(item))
        if self.trace is not None:
            self.trace.on_live_started(item)

    def _on_live_usage(self, item: LiveUsage) -> None:
        live = self.metrics.live
        self.live_cost.learn(item.model)
        model = bounded(self.live_cost.label, live.models)
        self.live_seconds = item.seconds
        if item.added_active_seconds:
            live.usage_seconds.labels(model, "active").inc(item.added_active_seconds)
        if item.added_paused_seconds:
            live.usage_seconds.labels(model, "paused").inc(item.added_paused_seconds)
        cost = self.live_cost.add(item.added_active_seconds, item.added_paused_seconds)
        if cost:
            live.cost_usd.labels(model).inc(cost)

    def _on_live_first_delta(self, item: LiveFirstDelta) -> None:
        self.first_deltas += 1
        self.metrics.live.time_to_first_delta.labels(item.trigger, item.modality).observe(item.seconds)
        if self.trace is not None:
            self.trace.on_live_first_delta(item)

    def _on_live_error(self, item: LiveError) -> None:
        code = bounded(item.code, LIVE_ERROR_CODES, none="other")
        self.live_errors[code] += 1
        self.upstream_errors += 1
        self.metrics.live.errors.labels(code).inc()
        self.log.warning("live_error", **_fields(item))
        if self.trace is not None:
            self.trace.on_live_error(item)

    def _on_live_delegation(self, item: LiveDelegation) -> None:
        self.log.info("live_delegation", **_fields(item))

    def _on_live_delegated_response(self, item: LiveDelegatedResponse) -> None:
        status = bounded(item.status, LIVE_RESPONSE_STATUSES, none="other")
        self.delegated[status] += 1
        live = self.metrics.live
        live.delegated_responses.labels(status).inc()
        live.delegated_tokens.labels("input").inc(item.input_tokens)
        live.delegated_tokens.labels("output").inc(item.output_tokens)
        if status != "completed":
            self.log.warning("live_delegated_response_not_completed", **_fields(item))
        if self.trace is not None:
            self.trace.on_live_delegated_response(item, status, self.server_model())

    def _on_live_early_command(self, item: LiveEarlyCommand) -> None:
        self.metrics.live.early_commands.labels("held" if item.applied else "would_hold").inc()
        self.log.info("live_early_command", **_fields(item))

    def observe_other(self, item: Observation) -> None:
        if isinstance(item, LiveObservation):
            self.handle_live(item)
        else:
            super().observe_other(item)

    def handle_live(self, item: LiveObservation) -> None:
        """One handler per Live observation; a kind without one fails mypy (`assert_never`)."""
        match item:
            case LiveStarted():
                self._on_live_started(item)
            case LiveUsage():
                self._on_live_usage(item)
            case LiveFirstDelta():
                self._on_live_first_delta(item)
            case LiveError():
                self._on_live_error(item)
            case LiveDelegation():
                self._on_live_delegation(item)
            case LiveDelegatedResponse():
                self._on_live_delegated_response(item)
            case LiveEarlyCommand():
                self._on_live_early_command(item)
            case _:
                assert_never(item)

    def summary(self) -> dict[str, Any]:
        return {
            **super().summary(),
            "cost_usd": round(self.live_cost.total_usd, 6),
            "priced_as": self.live_cost.label,
            "live_seconds": self.live_seconds,
            "live_errors": dict(self.live_errors),
            "delegated_responses": dict(self.delegated),
            "first_deltas": self.first_deltas,
        }

    def end(self, outcome: str) -> None:
        if self.trace is not None:
            served_by = self.server_model()
            self.trace.end(
                outcome,
                {
                    **({"gen_ai.response.model": served_by} if served_by else {}),
                    "realtime_proxy.route": "live",
                    "realtime_proxy.cost_usd": self.live_cost.total_usd,
                    "realtime_proxy.live.seconds": self.live_seconds,
                    "realtime_proxy.live.delegated_responses": sum(self.delegated.values()),
                    "realtime_proxy.upstream_errors": self.upstream_errors,
                    "realtime_proxy.refusals": self.refusals,
                    "realtime_proxy.rewrites": sum(self.rewrites.values()),
                },
            )
