"""Metrics of Live sessions (`/v1/live/sessions`) and of sessions closed by route. Names are new (nothing of
the Realtime set is renamed); labels are bounded and pre-initialised like the rest."""

from __future__ import annotations

from collections.abc import Iterable

from prometheus_client import CollectorRegistry, Counter, Histogram

from realtime_proxy.core.context import ALL_ROUTES
from realtime_proxy.core.live_observations import LIVE_MODALITIES, LIVE_TRIGGERS

PREFIX = "realtime_proxy"
# Live error codes seen in the SDK's docs and the field; others count as "other".
LIVE_ERROR_CODES = (
    "invalid_value",
    "invalid_model",
    "unknown_parameter",
    "missing_required_parameter",
    "function_call_outputs_required",
    "session_not_started",
    "invalid_api_key",
    "server_error",
    "other",
)
LIVE_RESPONSE_STATUSES = ("completed", "failed", "incomplete", "cancelled", "other")
EARLY_COMMAND_ACTIONS = ("held", "would_hold")


class LiveMetrics:
    def __init__(self, registry: CollectorRegistry, models: Iterable[str], outcomes: Iterable[str]) -> None:
        r, p = registry, PREFIX
        self.models = tuple(models)
        self.sessions_closed = Counter(
            f"{p}_sessions_closed_total",
            "Sessions ended, by route and outcome (sessions_opened_total counts them opening)",
            ["route", "outcome"],
            registry=r,
        )
        self.session_duration = Histogram(
            f"{p}_live_session_duration_seconds",
            "Live session duration (handshake to close)",
            buckets=(0.05, 0.1, 0.25, 0.5, 1, 2, 5, 10, 30, 60, 120, 300, 600, 1200, 1800, 3600),
            registry=r,
        )
        self.usage_seconds = Counter(
            f"{p}_live_usage_seconds",
            "Billable Live session seconds from session.usage.updated, by model and kind",
            ["model", "kind"],
            registry=r,
        )
        self.cost_usd = Counter(
            f"{p}_live_cost_usd",
            "USD for Live session seconds at the configured per-minute price per model",
            ["model"],
            registry=r,
        )
        self.time_to_first_delta = Histogram(
            f"{p}_live_time_to_first_delta_seconds",
            "Live: response.create (or the latest user transcript fragment) to the first output delta",
            ["trigger", "modality"],
            buckets=(0.05, 0.1, 0.2, 0.3, 0.5, 0.75, 1, 1.5, 2, 3, 5, 10),
            registry=r,
        )
        self.errors = Counter(f"{p}_live_errors_total", "Live error events, by code", ["code"], registry=r)
        self.delegated_responses = Counter(
            f"{p}_live_delegated_responses_total",
            "Delegated Responses responses ended (response.event), by status",
            ["status"],
            registry=r,
        )
        self.delegated_tokens = Counter(
            f"{p}_live_delegated_tokens_total",
            "Tokens of delegated Responses responses (billed by the Responses API)",
            ["direction"],
            registry=r,
        )
        self.early_commands = Counter(
            f"{p}_live_early_commands_total",
            "Live commands sent between session.start and session.started",
            ["action"],
            registry=r,
        )
        for route in ALL_ROUTES:
            for outcome in outcomes:
                self.sessions_closed.labels(route, outcome)
        for model in self.models:
            self.cost_usd.labels(model)
            for kind in ("active", "paused"):
                self.usage_seconds.labels(model, kind)
        for trigger in LIVE_TRIGGERS:
            for modality in LIVE_MODALITIES:
                self.time_to_first_delta.labels(trigger, modality)
        for code in LIVE_ERROR_CODES:
            self.errors.labels(code)
        for status in LIVE_RESPONSE_STATUSES:
            self.delegated_responses.labels(status)
        for direction in ("input", "output"):
            self.delegated_tokens.labels(direction)
        for action in EARLY_COMMAND_ACTIONS:
            self.early_commands.labels(action)
