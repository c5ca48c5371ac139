"""Assembles one session once both handshakes are done: the core and its rules, the observer, the
recorder, the relay; logs `session_open` / `session_closed` and keeps the session metrics."""

from __future__ import annotations

import random
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from realtime_proxy.core.actions import Action, Frame
from realtime_proxy.core.context import SessionContext
from realtime_proxy.core.interned import interned
from realtime_proxy.core.live_session import LiveSessionCore
from realtime_proxy.core.orchestration_observations import OrchestrationOptions
from realtime_proxy.core.retry import ResponseRetrier, RetryPolicy
from realtime_proxy.core.rules import ALL_RULES, Rule, RuleChain, build_chain
from realtime_proxy.core.session import CoreOptions, SessionCore
from realtime_proxy.edge.continuity import UpstreamTarget
from realtime_proxy.edge.relay import Core, Limits, Relay
from realtime_proxy.edge.resilience import counting_redrives, wrap_core
from realtime_proxy.edge.session_end import SessionEnd
from realtime_proxy.edge.session_end import close_desc as close_desc  # re-exported
from realtime_proxy.edge.session_end import close_label as close_label  # re-exported
from realtime_proxy.edge.upstream_leg import UpstreamLeg
from realtime_proxy.edge.wire import Leg
from realtime_proxy.observe.cost import SessionCost
from realtime_proxy.observe.logs import SessionLog, get_logger
from realtime_proxy.observe.metrics import Metrics
from realtime_proxy.observe.observe import LiveModelOf, SessionObserver
from realtime_proxy.observe.observe_live import LiveObserver, live_cost
from realtime_proxy.observe.record import SessionRecorder
from realtime_proxy.settings import Settings

if TYPE_CHECKING:  # the otel extra is optional
    from realtime_proxy.observe.otel import Tracing

log = get_logger("proxy.server")


@dataclass
class PendingSession:
    """What admission learnt about a handshake, carried until the session starts."""

    beta_client: bool
    session_id: str
    started: float
    client_addr: str
    model: str | None
    path: str
    context: SessionContext
    query: dict[str, str] = field(default_factory=dict)
    trace_headers: tuple[str | None, str | None] = (None, None)  # the client's traceparent, tracestate


class RecordingCore:
    """The core, with every client frame written to the session's recording first."""

    def __init__(self, core: SessionCore | LiveSessionCore, recorder: SessionRecorder) -> None:
        self.core, self.recorder = core, recorder
        self.from_upstream, self.on_timer = core.from_upstream, core.on_timer

    def from_client(self, frame: Frame, now: float) -> list[Action] | None:
        self.recorder.record(frame)
        return self.core.from_client(frame, now)

    def close(self, now: float) -> list[Action]:
        try:
            return self.core.close(now)
        finally:
            self.recorder.close()


class SessionBuilder:
    def __init__(
        self,
        settings: Settings,
        metrics: Metrics,
        rng: random.Random,
        extra_rules: Sequence[Rule] = (),
        tracing: Tracing | None = None,
    ) -> None:
        self.settings, self.metrics, self.rng = settings, metrics, rng
        self.tracing = tracing
        self.chain: RuleChain = build_chain(
            settings.rules.enabled_overrides(),
            observe_only=settings.rules_observe_only,
            extra_rules=extra_rules,  # the plug-in point for rules that are not built in
            per_model=settings.models.rules,  # [models.rules.<model>] switches
        )
        retry = settings.retry
        self.escalation = build_chain({rule.name: rule.name in retry.escalate_rules for rule in ALL_RULES})
        self.retry_policy = RetryPolicy(
            max_attempts=retry.max_attempts,
            backoff_base=retry.backoff_base,
            backoff_cap=retry.backoff_cap,
            deadline=retry.deadline,
            retry_in_band=retry.retry_in_band,
            escalate_rules=retry.escalate_rules,
        )
        self.orchestration = orchestration_options(settings)
        self.upstream_host = upstream_host(settings.upstream_url)  # one string for every session
        self.limits = Limits(
            idle_timeout=settings.idle_timeout,
            max_duration=settings.max_session_duration,
            max_client_fps=settings.max_client_frames_per_second,
        )

    def build_core(self, pending: PendingSession) -> SessionCore:
        s = self.settings

        untouched = pending.context.untouched
        retrier = ResponseRetrier(self.retry_policy, self.rng) if s.retry.enabled and not untouched else None
        core = SessionCore(
            self.chain,
            retrier=retrier,
            traffic=self.metrics.traffic,
            escalation=self.escalation,
            context=pending.context,  # where the session is (route, model): the rules' scopes
            # WebRTC/SIP sideband sockets carry audio as media, not appends: the commit guard must not count.
            external_audio_input="call_id" in pending.query,
            options=interned(  # one per combination, shared by the sessions (issue 26)
                CoreOptions(
                    beta_client=pending.beta_client and not untouched,
                    orchestration=None if untouched else self.orchestration,
                    log_event_types=s.log_event_types,
                    max_parse_bytes=s.max_parse_bytes,
                    untouched=untouched,
                )
            ),
        )
        return core

    def build_live_core(self, pending: PendingSession) -> LiveSessionCore:
        """A Live session's core: relayed untouched unless a rule scoped `live` is on."""
        s = self.settings
        return LiveSessionCore(
            self.chain,
            pending.context,
            traffic=self.metrics.traffic,
            max_parse_bytes=s.max_parse_bytes,
            log_event_types=s.log_event_types,
        )

    def start(
        self,
        client: Leg,
        upstream: UpstreamLeg,
        pending: PendingSession,
        on_end: Callable[[Relay], None],
        target: UpstreamTarget | None = None,
    ) -> Relay:
        s, metrics = self.settings, self.metrics
        route = pending.context.route
        session_log = SessionLog(
            log,
            session_id=pending.session_id,
            client=pending.client_addr,
            model=pending.model,
            upstream_host=self.upstream_host,
            route=route,
        )
        session_core = self.build_live_core(pending) if route == "live" else self.build_core(pending)
        core: Core = session_core
        if s.record_dir:
            core = RecordingCore(session_core, SessionRecorder(s.record_dir, pending.session_id))
        trace = (
            self.tracing.session(
                session_id=pending.session_id,
                model=pending.model,
                traceparent=pending.trace_headers[0],
                tracestate=pending.trace_headers[1],
                live=route == "live",
            )
            if self.tracing is not None
            else None
        )
        core, continuity = wrap_core(
            core,
            s,
            route=route,
            target=target,
            metrics=metrics.upstream,
            log=session_log,
            rng=self.rng,
            trace=trace,
        )
        observer: SessionObserver
        if isinstance(session_core, LiveSessionCore):
            observer = LiveObserver(
                metrics,
                session_log,
                live_cost=live_cost(s.live_prices),
                trace=trace,
                server_model=LiveModelOf(session_core),
            )
        else:
            observer = SessionObserver(
                metrics,
                session_log,
                cost=SessionCost(pending.model, s.prices),
                trace=trace,
                server_model=LiveModelOf(session_core.state),
            )

        finished = SessionEnd(
            client=client,
            continuity=continuity,
            log=session_log,
            metrics=metrics,
            observer=observer,
            on_end=on_end,
            route=route,
            started=pending.started,
        )
        observe = counting_redrives(observer, metrics.upstream)
        relay = Relay(client, upstream, core, observe, self.limits, finished)
        if continuity is not None:
            relay.max_held_bytes = s.continuity.max_held_client_bytes
            continuity.attach(relay)
        metrics.sessions_active.inc()
        metrics.sessions_opened_total.labels(pending.context.route).inc()
        session_log.info(
            "session_open",
            path=pending.path,
            route=pending.context.route,
            subprotocol=client.ws.subprotocol and safe_subprotocol(client.ws.subprotocol),
            beta_client=pending.beta_client,
        )
        return relay


def orchestration_options(settings: Settings) -> OrchestrationOptions | None:
    """The turn-taking stage's options from `[orchestration]` (None: off); dry run only observes."""
    o = settings.orchestration
    if o.mode == "off":
        return None
    return OrchestrationOptions(
        observe_only=settings.orchestration_observe_only,
        serialise=o.serialise_responses or settings.rules.queue_in_band_responses,
        coalesce_tool_calls=o.coalesce_tool_calls,
        hold_early_cancels=o.hold_early_cancels,
        max_held=o.max_held_creates,
        tool_output_timeout=o.tool_output_timeout,
    )


def upstream_host(url: str) -> str:
    return url.split("://", 1)[-1].split("/", 1)[0]


def safe_subprotocol(name: str) -> str:
    return "[REDACTED]" if name.lower().startswith("openai-insecure-api-key.") else name
