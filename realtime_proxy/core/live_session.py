"""One Live session's core: the same entry points as `SessionCore`, with Live's own stages.

A Live session (route `live`) gets no Realtime stage: no beta translation, turn-taking, retry or
response tracking (Live has no `response.done` to end a response). The rule chain runs, but only
rules scoped to the `live` route are in scope there (`Rule.routes`)."""

from __future__ import annotations

from realtime_proxy.core.context import SessionContext
from realtime_proxy.core.live import live_stages
from realtime_proxy.core.pipeline import Pipeline
from realtime_proxy.core.repair import DEFAULT_MAX_EVENT_BYTES, RepairStage
from realtime_proxy.core.responses import Ledger
from realtime_proxy.core.rules import RuleChain
from realtime_proxy.core.session_state import SessionState
from realtime_proxy.core.traffic import TrafficCounts

HOLD_RULE = "live_hold_until_started"


class LiveSessionCore:
    def __init__(
        self,
        chain: RuleChain,
        context: SessionContext,
        *,
        traffic: TrafficCounts | None = None,
        max_parse_bytes: int = DEFAULT_MAX_EVENT_BYTES,
        log_event_types: bool = False,
    ) -> None:
        self.chain = chain
        self.ledger = Ledger()  # issues the ids repair names events with, maps them back on errors
        self.state = SessionState(context, ledger=self.ledger)
        live_rules = any("live" in rule.routes for rule in chain.rules)
        repair = RepairStage(chain, self.state, self.ledger, max_parse_bytes) if live_rules else None
        hold = chain.enabled(HOLD_RULE) and not chain.observe_only
        client, server, self.observer = live_stages(repair, hold_until_started=hold)
        self.pipeline = Pipeline(
            client,
            server,
            traffic or TrafficCounts(),
            ledger=self.ledger,
            max_parse_bytes=max_parse_bytes,
            log_event_types=log_event_types,
        )
        self.from_client = self.pipeline.from_client
        self.from_upstream = self.pipeline.from_upstream
        self.on_timer = self.pipeline.on_timer
        self.close = self.pipeline.close

    @property
    def live_model(self) -> str | None:
        """The model session.start asked for, or session.started resolved."""
        return self.observer.model
