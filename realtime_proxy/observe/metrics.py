"""The Prometheus metrics the proxy exports. One registry per server, injected, so tests own theirs.

Label values are bounded: event types outside the known catalogue become "other", error codes
outside KNOWN_ERROR_CODES become "other", close codes outside the RFC/API set become "other".
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, Info, disable_created_metrics
from prometheus_client.core import CounterMetricFamily
from prometheus_client.registry import Collector

from realtime_proxy import __version__
from realtime_proxy.api.errors import INVALID_REQUEST, SERVER_ERROR
from realtime_proxy.core.closing import SessionOutcome, Side
from realtime_proxy.core.context import ALL_ROUTES
from realtime_proxy.core.orchestration_observations import TurnAction
from realtime_proxy.core.retry_policy import RetryResult
from realtime_proxy.core.traffic import TrafficCounts
from realtime_proxy.observe.cost import DEFAULT_PRICES, OTHER_MODEL
from realtime_proxy.observe.cost_live import DEFAULT_LIVE_PRICES
from realtime_proxy.observe.metrics_live import LiveMetrics
from realtime_proxy.observe.metrics_upstream import UpstreamMetrics
from realtime_proxy.settings import HTTP_ROUTE_CLASSES  # the route classes are the metrics labels

# `_created` timestamp series double the exposition for no dashboard use.
disable_created_metrics()  # type: ignore[no-untyped-call]

PREFIX = "realtime_proxy"
SESSION_OUTCOMES = tuple(SessionOutcome)  # client_closed, upstream_closed, ..., protocol_error, error
HANDSHAKE_RESULTS = (
    "ok",
    "refused_401",
    "refused_403",
    "refused_404",
    "refused_429",
    "refused_4xx",
    "refused_5xx",
    "unreachable",
    "timeout",
    "rejected_capacity",
    "rejected_auth",
    "rejected_origin",
    "rejected_beta",
    "rejected_path",
    "rejected_header",
    "rejected_model",
)
# Why an upstream connection failed (edge/failure_cause.py), per leg: the WebSocket handshake or plain HTTP.
UPSTREAM_FAILURE_CAUSES = ("dns", "refused", "tls", "timeout", "http_status", "other")
UPSTREAM_FAILURE_LEGS = ("websocket", "http")
RETRY_OUTCOMES = tuple(RetryResult)  # ok, recovered, exhausted, not_retryable, cancelled, untracked
ORCHESTRATION_ACTIONS = tuple(TurnAction)  # held, released, ..., would_absorb_cancel (observe mode)
RESPONSE_STATUSES = ("completed", "cancelled", "failed", "incomplete", "other")
MODALITIES = ("audio", "text", "function_call")
TOKEN_MODALITIES = ("text", "audio", "image")
KNOWN_ERROR_TYPES = ("invalid_request_error", "server_error", "rate_limit_error", "other")
KNOWN_ERROR_CODES = (
    "none",
    "unknown_parameter",
    "missing_required_parameter",
    "invalid_value",
    "invalid_type",
    "invalid_json",
    "cannot_update_voice",
    "input_audio_buffer_commit_empty",
    "item_truncate_invalid_audio_end_ms",
    "conversation_already_has_active_response",
    "beta_api_shape_disabled",
    "session_expired",
    "inference_rate_limit_exceeded",
    "invalid_tool_choice",
    "other",
)
CLOSE_CODES = ("1000", "1001", "1002", "1003", "1007", "1008", "1009", "1011", "1012", "1013", "1014", "4000")
CLOSE_SIDES = tuple(Side)  # client, upstream
# One narrow bucket just below each possible attempt count (1..10, the max_attempts limit).
ATTEMPT_BUCKETS = tuple(edge for n in range(1, 11) for edge in (n - 0.001, float(n)))


def bounded(value: str | None, allowed: tuple[str, ...], *, none: str = "none") -> str:
    if value is None:
        return none
    return value if value in allowed else "other"


class TrafficCollector(Collector):
    """Exports the core's plain traffic counters at scrape time."""

    def __init__(self, counts: TrafficCounts) -> None:
        self.counts = counts

    def collect(self) -> Iterator[CounterMetricFamily]:
        frames = CounterMetricFamily(
            f"{PREFIX}_messages", "WebSocket messages relayed", labels=["direction", "event_type"]
        )
        for (direction, label), count in list(self.counts.frames.items()):
            frames.add_metric([direction, label], count)
        yield frames
        size = CounterMetricFamily(f"{PREFIX}_message_bytes", "Payload bytes relayed", labels=["direction"])
        for direction, count in list(self.counts.bytes.items()):
            size.add_metric([direction], count)
        yield size


class LogCollector(Collector):
    """Log lines this process could not write (stdout's reader gone), dropped instead of raised."""

    def collect(self) -> Iterator[CounterMetricFamily]:
        from realtime_proxy.observe.logs import dropped_lines

        yield CounterMetricFamily(
            f"{PREFIX}_log_lines_dropped",
            "Log lines dropped because writing them failed (e.g. stdout closed)",
            value=dropped_lines(),
        )


class Metrics:
    def __init__(
        self,
        registry: CollectorRegistry | None = None,
        models: Iterable[str] = DEFAULT_PRICES,
        live_models: Iterable[str] = DEFAULT_LIVE_PRICES,
    ) -> None:
        """`models`: the price table's models, the bounded values of every `model` label (else "other");
        `live_models` likewise for the Live metrics."""
        self.registry = registry or CollectorRegistry()
        self.models = (*models, OTHER_MODEL)
        r = self.registry
        self.live = LiveMetrics(r, (*live_models, OTHER_MODEL), SESSION_OUTCOMES)
        p = PREFIX
        Info(f"{p}_build", "Proxy build information", registry=r).info({"version": __version__})
        self.sessions_active = Gauge(f"{p}_sessions_active", "Open client sessions", registry=r)
        self.sessions_total = Counter(
            f"{p}_sessions_total", "Sessions ended, by outcome", ["outcome"], registry=r
        )
        self.session_duration = Histogram(
            f"{p}_session_duration_seconds",
            "Session duration",
            # Sub-second buckets too: a test call or a refused session lasts well under a second.
            buckets=(0.05, 0.1, 0.25, 0.5, 0.75, 1, 2, 5, 10, 30, 60, 120, 300, 600, 1200, 1800, 3600),
            registry=r,
        )
        self.traffic = TrafficCounts()
        self.upstream = UpstreamMetrics(r)  # handshake retries, resumptions, re-drives (issue 25)
        r.register(TrafficCollector(self.traffic))
        r.register(LogCollector())
        self.handshakes_total = Counter(
            f"{p}_upstream_handshakes_total", "Client handshakes by result", ["result"], registry=r
        )
        self.upstream_failures_total = Counter(
            f"{p}_upstream_failures_total",
            "Upstream connections that failed, by leg and cause (dns, refused, tls, timeout, http_status)",
            ["leg", "cause"],
            registry=r,
        )
        self.upstream_connect = Histogram(
            f"{p}_upstream_connect_seconds",
            "Time to open the upstream WebSocket",
            buckets=(0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10),
            registry=r,
        )
        self.rewrites_total = Counter(f"{p}_rewrites_total", "Event rewrites by rule", ["rule"], registry=r)
        self.rule_errors_total = Counter(
            f"{p}_rule_errors_total", "Rules that raised (event forwarded unchanged)", ["rule"], registry=r
        )
        self.refusals_total = Counter(
            f"{p}_refusals_total", "Client events answered by the proxy, not forwarded", ["rule"], registry=r
        )
        self.retries_total = Counter(
            f"{p}_oob_retries_total", "Tracked out-of-band responses by outcome", ["outcome"], registry=r
        )
        self.retry_attempts = Histogram(
            f"{p}_oob_retry_attempts",
            "Upstream attempts per tracked response",
            # Attempts are whole numbers from 1: a bucket ending at each integer (and one below 1) puts
            # histogram_quantile's interpolation on the value itself, so p50 of all-1 reads 1, not 0.5.
            buckets=ATTEMPT_BUCKETS,
            registry=r,
        )
        self.retry_added_seconds = Histogram(
            f"{p}_oob_retry_added_seconds",
            "Time added by retries to a response",
            buckets=(0.1, 0.25, 0.5, 1, 2, 4, 8, 16),
            registry=r,
        )
        self.upstream_errors_total = Counter(
            f"{p}_upstream_errors_total", "Upstream error events", ["error_type", "code"], registry=r
        )
        self.responses_total = Counter(
            f"{p}_responses_total",
            "Responses by final status",
            ["status", "error_type", "model"],
            registry=r,
        )
        self.response_duration = Histogram(
            f"{p}_response_duration_seconds",
            "response.create to response.done",
            ["status"],
            buckets=(0.1, 0.25, 0.5, 1, 2, 4, 8, 15, 30, 60, 120),
            registry=r,
        )
        self.time_to_first_delta = Histogram(
            f"{p}_time_to_first_delta_seconds",
            "response.create to the first output delta",
            ["modality"],
            buckets=(0.05, 0.1, 0.2, 0.3, 0.5, 0.75, 1, 1.5, 2, 3, 5, 10),
            registry=r,
        )
        self.tokens_total = Counter(
            f"{p}_tokens_total",
            "Tokens from response.done usage",
            ["direction", "modality", "cached", "model"],
            registry=r,
        )
        self.cost_usd_total = Counter(
            f"{p}_cost_usd",
            "USD for response.done usage at the configured price per model",
            ["model"],
            registry=r,
        )
        self.rate_limit_remaining = Gauge(
            f"{p}_rate_limit_remaining", "Latest rate_limits.updated remaining", ["name"], registry=r
        )
        self.rate_limit_limit = Gauge(
            f"{p}_rate_limit_limit", "Latest rate_limits.updated limit", ["name"], registry=r
        )
        self.closes_total = Counter(
            f"{p}_closes_total", "Close codes received, by side that sent them", ["side", "code"], registry=r
        )
        self.sessions_opened_total = Counter(
            f"{p}_sessions_opened_total",
            "WebSocket sessions opened, by route class (live and other: relayed untouched)",
            ["route"],
            registry=r,
        )
        self.beta_sessions_total = Counter(
            f"{p}_beta_sessions_total", "Beta-shaped client sessions by handling", ["mode"], registry=r
        )
        self.orchestration_total = Counter(
            f"{p}_orchestration_total", "Turn-taking actions on in-band responses", ["action"], registry=r
        )
        self.orchestration_held = Histogram(
            f"{p}_orchestration_held_seconds",
            "Time a response.create was held before it went upstream",
            buckets=(0.01, 0.05, 0.1, 0.25, 0.5, 1, 2, 4, 8, 15, 30),
            registry=r,
        )
        self.http_requests_total = Counter(
            f"{p}_http_requests_total", "Plain HTTP requests by route class and status class",
            ["route", "status"], registry=r,
        )  # fmt: skip
        self.http_request_duration = Histogram(
            f"{p}_http_request_duration_seconds",
            "Plain HTTP request: first byte of the request to the last byte of the response",
            ["route"],
            buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300),
            registry=r,
        )
        self.http_bytes_total = Counter(
            f"{p}_http_bytes_total", "Plain HTTP body bytes relayed", ["route", "direction"], registry=r
        )
        self.http_admissions_total = Counter(
            f"{p}_http_admissions_total",
            "Plain HTTP requests admitted to the upstream at once, after queueing, or refused (503)",
            ["result"], registry=r,
        )  # fmt: skip
        self._preinitialise()

    def _preinitialise(self) -> None:
        """Known label values exist at 0 from the first scrape, so rate() and absent() behave."""
        from realtime_proxy.core.rules import ALL_RULES

        for outcome in SESSION_OUTCOMES:
            self.sessions_total.labels(outcome)
        for result in HANDSHAKE_RESULTS:
            self.handshakes_total.labels(result)
        for leg in UPSTREAM_FAILURE_LEGS:
            for cause in UPSTREAM_FAILURE_CAUSES:
                self.upstream_failures_total.labels(leg, cause)
        for rule in ALL_RULES:
            self.rewrites_total.labels(rule.name)
            self.rule_errors_total.labels(rule.name)
            self.refusals_total.labels(rule.name)
        for retry_outcome in RETRY_OUTCOMES:
            self.retries_total.labels(retry_outcome)
        for status in RESPONSE_STATUSES:
            self.response_duration.labels(status)
        for model in self.models:
            self.cost_usd_total.labels(model)
            for status in RESPONSE_STATUSES:
                self.responses_total.labels(status, "none", model)
            self.responses_total.labels("failed", "server_error", model)
        for modality in MODALITIES:
            self.time_to_first_delta.labels(modality)
        for model in self.models:
            for modality in TOKEN_MODALITIES:
                self.tokens_total.labels("input", modality, "false", model)
                self.tokens_total.labels("input", modality, "true", model)
                self.tokens_total.labels("output", modality, "false", model)
        for error_type in (INVALID_REQUEST, SERVER_ERROR):
            self.upstream_errors_total.labels(error_type, "other")
        for side in CLOSE_SIDES:
            for code in ("1000", "1001", "1011"):
                self.closes_total.labels(side, code)
        for mode in ("translate", "reject", "passthrough"):
            self.beta_sessions_total.labels(mode)
        for session_route in ALL_ROUTES:
            self.sessions_opened_total.labels(session_route)
        for action in ORCHESTRATION_ACTIONS:
            self.orchestration_total.labels(action)
        for route in HTTP_ROUTE_CLASSES:
            self.http_request_duration.labels(route)
            for direction in ("request", "response"):
                self.http_bytes_total.labels(route, direction)
            for status in ("2xx", "4xx", "5xx"):
                self.http_requests_total.labels(route, status)
        for result in ("immediate", "queued", "rejected"):
            self.http_admissions_total.labels(result)


class SupervisorMetrics:
    """The supervisor's own series, added to the sum of its workers' expositions."""

    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        self.registry = registry or CollectorRegistry()
        r = self.registry
        self.workers = Gauge(f"{PREFIX}_workers", "Worker processes running and ready", registry=r)
        self.worker_restarts_total = Counter(
            f"{PREFIX}_worker_restarts_total",
            "Workers respawned after dying (signal, crash, OOM), or replaced after failing to start",
            registry=r,
        )
        self.reloads_total = Counter(
            f"{PREFIX}_reloads_total",
            "SIGHUP graceful restarts of the workers, by result",
            ["result"],
            registry=r,
        )
        for result in ("ok", "failed"):
            self.reloads_total.labels(result)
