"""The published label values, now StrEnums owned by the modules that produce them: the values are
the ones dashboards and alerts already use, and the metrics are pre-initialised from the enums."""

from __future__ import annotations

from prometheus_client import CollectorRegistry

from realtime_proxy.core.closing import LegClosed, SessionOutcome, Side, outcome_of
from realtime_proxy.core.context import ALL_ROUTES, ROUTES, SessionRoute, route_of
from realtime_proxy.core.stage import Lane, Message
from realtime_proxy.core.traffic import DIRECTIONS
from realtime_proxy.observe.metrics import CLOSE_SIDES, SESSION_OUTCOMES, Metrics


def test_published_values_are_unchanged() -> None:
    assert [str(o) for o in SESSION_OUTCOMES] == [
        "client_closed", "upstream_closed", "client_lost", "upstream_lost", "shutdown",
        "idle_timeout", "max_duration", "rate_limited", "protocol_error", "error",
    ]  # fmt: skip
    assert [str(s) for s in CLOSE_SIDES] == ["client", "upstream"]
    assert [str(d) for d in DIRECTIONS] == ["client_to_upstream", "upstream_to_client"]
    assert [str(r) for r in ALL_ROUTES] == [
        "realtime", "transcription", "translation", "sideband", "azure", "azure_preview", "live", "other",
    ]  # fmt: skip
    assert SessionRoute.LIVE not in ROUTES and SessionRoute.OTHER not in ROUTES


def test_outcome_of_yields_members() -> None:
    assert outcome_of(LegClosed(Side.UPSTREAM, None, None)) is SessionOutcome.UPSTREAM_LOST
    assert route_of("/v1/realtime", {"intent": "transcription"}) is SessionRoute.TRANSCRIPTION


def test_lanes_compare_with_their_plain_spelling() -> None:
    # Playbooks name lanes by their string; a message built either way is the same message.
    assert Message(Lane.SERVER, "{}", None) == Message("server", "{}", None)  # type: ignore[arg-type]


def test_metrics_are_preinitialised_from_the_enums() -> None:
    registry = CollectorRegistry()
    Metrics(registry)
    for outcome in SessionOutcome:
        labels = {"outcome": outcome.value}
        assert registry.get_sample_value("realtime_proxy_sessions_total", labels) == 0.0
