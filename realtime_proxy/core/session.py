"""The pure per-session core: composes the stages in one documented order and does nothing else.

    client: classify, [beta], repair, [orchestration], [retry], tracking, state        -> upstream
    server: classify, tracking, [orchestration], attribution, state, [retry], [beta]   -> client

(bracketed stages exist only when configured: a beta client, turn-taking, retries). How a frame
moves through them is `realtime_proxy.core.pipeline`'s business.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from realtime_proxy.core.attribution import AttributionStage
from realtime_proxy.core.compat.stage import BetaStage
from realtime_proxy.core.context import SessionContext
from realtime_proxy.core.orchestration import OrchestrationStage
from realtime_proxy.core.orchestration_observations import OrchestrationOptions
from realtime_proxy.core.pipeline import Pipeline
from realtime_proxy.core.repair import DEFAULT_MAX_EVENT_BYTES, RepairStage
from realtime_proxy.core.responses import Ledger
from realtime_proxy.core.retry import ResponseRetrier
from realtime_proxy.core.rules import ChainResult, RuleChain
from realtime_proxy.core.rules.model import RuleRewrite
from realtime_proxy.core.session_state import SessionState, SessionStateStage
from realtime_proxy.core.stage import Stage
from realtime_proxy.core.tracker import TrackingStage
from realtime_proxy.core.traffic import TrafficCounts


@dataclass(frozen=True, slots=True)
class CoreOptions:
    beta_client: bool = False  # translate this client's beta shapes both ways
    orchestration: OrchestrationOptions | None = None  # turn-taking on the upstream leg; None: off
    log_event_types: bool = False  # one debug observation per frame (type and size only)
    max_parse_bytes: int = DEFAULT_MAX_EVENT_BYTES  # larger events are never parsed: forwarded as sent
    # A route the proxy does not understand (core.context.UNTOUCHED_ROUTES): only the stages that
    # observe (tracking, state) run; nothing can hold, rewrite, retry or answer a frame.
    untouched: bool = False


class SessionCore(Pipeline):
    """One session's core: `from_client`, `from_upstream`, `on_timer` and `close`, each returning the
    actions to carry out (`None`: forward the frame as received).

    It is its pipeline (a subclass, composed here): the entry points are the pipeline's own methods,
    with no extra call per frame and no bound method kept per entry point (four of them and a
    separate pipeline object cost ~340 B in every idle session; issue 26)."""

    __slots__ = ("chain", "options", "retrier", "state", "tracker", "traffic")

    def __init__(
        self,
        chain: RuleChain,
        *,
        retrier: ResponseRetrier | None = None,
        options: CoreOptions | None = None,
        traffic: TrafficCounts | None = None,
        escalation: RuleChain | None = None,
        context: SessionContext | None = None,
        external_audio_input: bool = False,
    ) -> None:
        self.options = options = options or CoreOptions()
        self.chain, self.retrier = chain, retrier
        self.traffic = traffic = traffic or TrafficCounts()
        # The one ledger of responses and issuer of proxy ids (a retrier brings the one it names with).
        ids = retrier.ledger if retrier is not None else Ledger()
        self.state = SessionState(context, ledger=ids, external_audio_input=external_audio_input)
        if retrier is not None and escalation is not None:
            # Re-sends see this session's state (e.g. its tools), like the first attempt did.
            retrier.escalate_with(_Escalation(escalation, self.state))
        beta = BetaStage() if options.beta_client else None
        orchestration = OrchestrationStage(ids, options.orchestration) if options.orchestration else None
        self.tracker = tracking = TrackingStage(ids)
        state = SessionStateStage(self.state)
        repair = RepairStage(chain, self.state, ids, options.max_parse_bytes)
        attribution = AttributionStage(ids)
        client_stages = _present(beta, repair, orchestration, retrier, tracking, state)
        server_stages = _present(tracking, orchestration, attribution, state, retrier, beta)
        if options.untouched:
            client_stages = server_stages = (tracking, state)
        super().__init__(
            client_stages,
            server_stages,
            traffic,
            ledger=ids,
            max_parse_bytes=options.max_parse_bytes,
            log_event_types=options.log_event_types,
        )

    @property
    def pipeline(self) -> Pipeline:
        return self


class _Escalation:
    """A re-send repaired by the escalation chain against the session's state. An object with
    slots, not a closure: its cells and function object cost ~180 B in every session (issue 26)."""

    __slots__ = ("chain", "state")

    def __init__(self, chain: RuleChain, state: SessionState) -> None:
        self.chain, self.state = chain, state

    def __call__(self, event: dict[str, Any]) -> tuple[dict[str, Any], list[RuleRewrite]]:
        return _repaired(self.chain.apply(event, self.state))


def _repaired(result: ChainResult) -> tuple[dict[str, Any], list[RuleRewrite]]:
    return result.event, result.rewrites if result.changed else []


def _present(*stages: Stage | None) -> tuple[Stage, ...]:
    return tuple(stage for stage in stages if stage is not None)
