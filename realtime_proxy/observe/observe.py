"""Turns the core's Observations and the relay's lifecycle into log lines and metrics.

One instance per session. It also accumulates the canonical summary line logged at close.
"""

from __future__ import annotations

import dataclasses
import re
from collections import Counter
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, Protocol, assert_never

from realtime_proxy.core.actions import (
    BetaTranslated,
    FirstDelta,
    FrameSeen,
    Observation,
    RateLimits,
    Refusal,
    RepairSkipped,
    ResponseDone,
    RetryAttempt,
    RetryOutcome,
    Rewrite,
    RuleError,
    UpstreamError,
)
from realtime_proxy.core.observations import CoreObservation
from realtime_proxy.core.orchestration_observations import (
    CancelAbsorbed,
    CancelHeld,
    CancelReleased,
    CreateCoalesced,
    CreateDropped,
    HoldOverflow,
    ResponseHeld,
    ResponseReleased,
    TurnAction,
)
from realtime_proxy.core.retry_policy import RetryResult
from realtime_proxy.observe.cost import SessionCost
from realtime_proxy.observe.metrics import (
    KNOWN_ERROR_CODES,
    KNOWN_ERROR_TYPES,
    RESPONSE_STATUSES,
    Metrics,
    bounded,
)

if TYPE_CHECKING:  # the otel extra is optional: imported only where tracing is configured
    from realtime_proxy.observe.otel import SessionTrace

_RATE_LIMIT_NAMES = ("requests", "tokens")


class HasLiveModel(Protocol):
    @property
    def live_model(self) -> str | None: ...


class LiveModelOf:
    """A `server_model` that reads `source.live_model` (the session state's, or a Live core's). An
    object with slots, not a lambda: its cell and function object cost ~150 B per session (issue 26)."""

    __slots__ = ("source",)

    def __init__(self, source: HasLiveModel) -> None:
        self.source = source

    def __call__(self) -> str | None:
        return self.source.live_model


class SessionObserver:
    __slots__ = (
        "_counts",
        "cost",
        "log",
        "metrics",
        "refusals",
        "rule_errors",
        "server_model",
        "trace",
        "upstream_errors",
    )

    def __init__(
        self,
        metrics: Metrics,
        log: Any,
        *,
        cost: SessionCost | None = None,
        trace: SessionTrace | None = None,
        server_model: Callable[[], str | None] = lambda: None,
    ) -> None:
        self.metrics = metrics
        self.log = log
        self.cost = cost or SessionCost(None, {})
        self.server_model = server_model  # the model session.created named, once it has
        self.trace = trace  # None unless tracing is configured: every trace hook below is skipped
        # The summary's counters (rewrites, retries, responses, tokens, orchestration), each made
        # on its first count: five empty Counters cost ~400 B in every idle session (issue 26).
        self._counts: dict[str, Counter[str]] | None = None
        self.upstream_errors = 0
        self.refusals = 0
        self.rule_errors = 0

    def _count(self, kind: str, key: str, n: int = 1) -> None:
        if self._counts is None:
            self._counts = {}
        counter = self._counts.get(kind)
        if counter is None:
            counter = self._counts[kind] = Counter()
        counter[key] += n

    def _counter(self, kind: str) -> Counter[str]:
        """A read-only view: a fresh empty Counter when nothing was counted (writes go via _count)."""
        counter = self._counts.get(kind) if self._counts is not None else None
        return counter if counter is not None else Counter()

    @property
    def rewrites(self) -> Counter[str]:
        return self._counter("rewrites")

    @property
    def retries(self) -> Counter[str]:
        return self._counter("retries")

    @property
    def responses(self) -> Counter[str]:
        return self._counter("responses")

    @property
    def tokens(self) -> Counter[str]:
        return self._counter("tokens")

    @property
    def orchestration(self) -> Counter[str]:
        return self._counter("orchestration")

    def observe(self, item: Observation) -> None:
        if isinstance(item, CoreObservation):
            self.handle(item)
        else:
            self.observe_other(item)

    def observe_other(self, item: Observation) -> None:
        """An observation from outside the core's closed set (a subclass handles its own, e.g. the
        Live observer); otherwise logged under its class's name."""
        self.log.info(_kind(item), **_fields(item))

    def handle(self, item: CoreObservation) -> None:
        """One handler per kind of observation; a kind without one fails mypy (`assert_never`)."""
        match item:
            case FrameSeen():
                self._on_frame(item)
            case BetaTranslated():
                self._on_compat(item)
            case Rewrite():
                self._on_rewrite(item)
            case Refusal():
                self._on_refusal(item)
            case RuleError():
                self._on_rule_error(item)
            case RepairSkipped():
                self._on_repair_skipped(item)
            case ResponseHeld():
                self._turn(TurnAction.HELD, item.applied, TurnAction.WOULD_HOLD, "response_held", item)
            case ResponseReleased():
                self.metrics.orchestration_held.observe(item.held_seconds)
                self._turn(TurnAction.RELEASED, True, TurnAction.RELEASED, "response_released", item)
            case CreateCoalesced():
                would = TurnAction.WOULD_COALESCE
                self._turn(TurnAction.COALESCED, item.applied, would, "create_coalesced", item)
            case HoldOverflow():
                self._count("orchestration", TurnAction.OVERFLOW.value)
                self.metrics.orchestration_total.labels(TurnAction.OVERFLOW).inc()
                self.log.warning("hold_overflow", **_fields(item))
            case CreateDropped():
                self._turn(TurnAction.DROPPED, True, TurnAction.DROPPED, "create_dropped", item)
            case CancelHeld():
                would = TurnAction.WOULD_HOLD_CANCEL
                self._turn(TurnAction.CANCEL_HELD, item.applied, would, "cancel_held", item)
            case CancelReleased():
                action = TurnAction.CANCEL_RELEASED
                self._turn(action, True, action, "cancel_released", item)
            case CancelAbsorbed():
                would = TurnAction.WOULD_ABSORB_CANCEL
                self._turn(TurnAction.CANCEL_ABSORBED, item.applied, would, "cancel_absorbed", item)
            case RetryAttempt():
                self._on_retry_attempt(item)
            case RetryOutcome():
                self._on_retry_outcome(item)
            case UpstreamError():
                self._on_upstream_error(item)
            case FirstDelta():
                self._on_first_delta(item)
            case ResponseDone():
                self._on_response_done(item)
            case RateLimits():
                self._on_rate_limits(item)
            case _:
                assert_never(item)

    def _on_frame(self, item: FrameSeen) -> None:
        self.log.debug("event", **_fields(item))

    def _on_compat(self, item: BetaTranslated) -> None:
        self.log.info("compat", **_fields(item))

    def _on_rewrite(self, item: Rewrite) -> None:
        self._count("rewrites", item.rule, item.count)
        self.metrics.rewrites_total.labels(item.rule).inc(item.count)
        self.log.info("rewrite", **_fields(item))
        if self.trace is not None:
            self.trace.on_rewrite(item)

    def _on_refusal(self, item: Refusal) -> None:
        self.refusals += 1
        self.metrics.refusals_total.labels(item.rule).inc()
        self.log.warning("refusal", **_fields(item))
        if self.trace is not None:
            self.trace.on_refusal(item)

    def _on_rule_error(self, item: RuleError) -> None:
        self.rule_errors += 1
        self.metrics.rule_errors_total.labels(item.rule).inc()
        self.log.error("rule_error", **_fields(item))

    def _on_repair_skipped(self, item: RepairSkipped) -> None:
        self.log.warning("repair_skipped", **_fields(item))

    def _turn(
        self, action: TurnAction, applied: bool, would: TurnAction, event: str, item: Observation
    ) -> None:
        action = action if applied else would
        self._count("orchestration", action.value)  # plain str keys: the summary line is JSON
        self.metrics.orchestration_total.labels(action).inc()
        self.log.info(event, **_fields(item))

    def _on_retry_attempt(self, item: RetryAttempt) -> None:
        self.log.warning("retry_attempt", **_fields(item))
        if self.trace is not None:
            self.trace.on_retry_attempt(item)

    def _on_retry_outcome(self, item: RetryOutcome) -> None:
        self._count("retries", str(item.outcome))  # plain str keys: the summary line is JSON
        self.metrics.retries_total.labels(item.outcome).inc()
        if item.outcome is not RetryResult.UNTRACKED:
            self.metrics.retry_attempts.observe(item.attempts)
        if item.added_seconds > 0:
            self.metrics.retry_added_seconds.observe(item.added_seconds)
        # A cancelled retry is the client's doing (its cancel, or it left): nothing to warn about.
        quiet = {RetryResult.OK, RetryResult.RECOVERED, RetryResult.CANCELLED}
        level = self.log.info if item.outcome in quiet else self.log.warning
        level("retry_outcome", **_fields(item))
        if self.trace is not None:
            self.trace.on_retry_outcome(item)

    def _on_upstream_error(self, item: UpstreamError) -> None:
        self.upstream_errors += 1
        error_type = bounded(_str_or_none(item.error_type), KNOWN_ERROR_TYPES)
        code = bounded(_str_or_none(item.code), KNOWN_ERROR_CODES)
        self.metrics.upstream_errors_total.labels(error_type, code).inc()
        self.log.warning("upstream_error", **_fields(item))

    def _on_first_delta(self, item: FirstDelta) -> None:
        self.metrics.time_to_first_delta.labels(item.modality).observe(item.seconds)
        if self.trace is not None:
            self.trace.on_first_delta(item)

    def _on_response_done(self, item: ResponseDone) -> None:
        status = bounded(item.status, RESPONSE_STATUSES, none="other")
        error_type = _str_or_none(item.error_type)
        self.cost.learn(self.server_model())
        model = self.cost.label
        self._count("responses", status)
        self.metrics.responses_total.labels(
            status, bounded(error_type, KNOWN_ERROR_TYPES) if error_type else "none", model
        ).inc()
        if item.seconds is not None:
            self.metrics.response_duration.labels(status).observe(item.seconds)
        for direction, modality, cached, count in item.tokens:
            cached_label = "true" if cached else "false"
            self.metrics.tokens_total.labels(direction, modality, cached_label, model).inc(count)
            self._count("tokens", f"{direction}_{modality}{'_cached' if cached else ''}", count)
        cost = self.cost.add(item.tokens)
        if cost:
            self.metrics.cost_usd_total.labels(model).inc(cost)
        if status != "completed":
            fields = _fields(item)
            del fields["tokens"]
            # The client's own response.cancel is a request honoured, not a problem.
            own = status == "cancelled" and item.reason == "client_cancelled"
            (self.log.info if own else self.log.warning)("response_not_completed", **fields)
        if self.trace is not None:
            self.trace.on_response_done(item, status, cost)

    def _on_rate_limits(self, item: RateLimits) -> None:
        limits = item.rate_limits
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
            "orchestration": dict(self.orchestration),
            "cost_usd": round(self.cost.total_usd, 6),
            "priced_as": self.cost.label,
        }

    def end(self, outcome: str) -> None:
        """The session is over: close its trace (if any) with the summary's counts."""
        if self.trace is not None:
            served_by = self.server_model()
            self.trace.end(
                outcome,
                {
                    **({"gen_ai.response.model": served_by} if served_by else {}),
                    "realtime_proxy.cost_usd": self.cost.total_usd,
                    "realtime_proxy.responses": sum(self.responses.values()),
                    "realtime_proxy.rewrites": sum(self.rewrites.values()),
                    **({"realtime_proxy.rewrite.rules": sorted(self.rewrites)} if self.rewrites else {}),
                    "realtime_proxy.refusals": self.refusals,
                    "realtime_proxy.upstream_errors": self.upstream_errors,
                    **{f"realtime_proxy.orchestration.{a}": n for a, n in sorted(self.orchestration.items())},
                },
            )


def _fields(item: Observation) -> dict[str, Any]:
    fields = {f.name: getattr(item, f.name) for f in dataclasses.fields(item)}  # type: ignore[arg-type]
    # Every float an observation carries is a duration from the monotonic clock: milliseconds are
    # the precision worth reading (0.3 rather than 0.30000000000000426).
    return {k: round(v, 3) if type(v) is float else v for k, v in fields.items()}


def _kind(item: Observation) -> str:
    """`ResponseHeld` -> `response_held`: the log event name of an observation without a handler."""
    return re.sub(r"(?<!^)(?=[A-Z])", "_", type(item).__name__).lower()


def _str_or_none(value: Any) -> str | None:
    return value if isinstance(value, str) else None
