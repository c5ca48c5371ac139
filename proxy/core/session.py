"""The pure per-session core: composes the stages in one documented order and does nothing else.

    client: classify, [beta], repair, [orchestration], [retry], tracking, state        -> upstream
    server: classify, tracking, [orchestration], attribution, state, [retry], [beta]   -> client

(bracketed stages exist only when configured: a beta client, turn-taking, retries)

A stage sees a frame only if it declared the frame's type (parsed) or asked to see it; a frame no
stage wants is forwarded as received with no action built (`None`: the hot path for audio). A
stage that ends a message (refused, held, absorbed) stops it; `Forward(message)` lets a held one
go on through the stages after the one that held it.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from proxy.core.actions import Action, FrameSeen, StartTimer, ToClient, ToUpstream
from proxy.core.attribution import AttributionStage, EventIds
from proxy.core.classify import Classifier
from proxy.core.compat.stage import BetaStage
from proxy.core.events import CLIENT_EVENT_TYPES, SERVER_EVENT_TYPES
from proxy.core.orchestration import OrchestrationStage
from proxy.core.orchestration_events import OrchestrationOptions
from proxy.core.repair import DEFAULT_MAX_EVENT_BYTES, RepairStage
from proxy.core.retry import ResponseRetrier
from proxy.core.retry_stage import RetryStage
from proxy.core.rules import ChainResult, RuleChain
from proxy.core.rules.model import Rewrite as RuleRewrite
from proxy.core.session_state import SessionState, SessionStateStage
from proxy.core.stage import Direction, Forward, Message, Stage, StageAction
from proxy.core.tracker import ResponseTracker
from proxy.core.tracking import TrackingStage
from proxy.core.traffic import C2U, U2C, TrafficCounts


@dataclass(frozen=True, slots=True)
class CoreOptions:
    beta_client: bool = False  # translate this client's beta shapes both ways
    orchestration: OrchestrationOptions | None = None  # turn-taking on the upstream leg; None: off
    log_event_types: bool = False  # one debug observation per frame (type and size only)
    max_repair_bytes: int = DEFAULT_MAX_EVENT_BYTES  # larger events skip the rules


class SessionCore:
    def __init__(
        self,
        chain: RuleChain,
        *,
        retrier: ResponseRetrier | None = None,
        options: CoreOptions | None = None,
        traffic: TrafficCounts | None = None,
        escalation: RuleChain | None = None,
    ) -> None:
        self.options = options = options or CoreOptions()
        self.chain, self.retrier = chain, retrier
        self.state = SessionState()
        self.tracker = ResponseTracker()
        self.traffic = traffic or TrafficCounts()
        self.classifier = Classifier(self.traffic)
        ids = EventIds()
        if retrier is not None and escalation is not None:
            # Re-sends see this session's state (e.g. its tools), like the first attempt did.
            retrier.escalate_with(lambda event: _repaired(escalation.apply(event, self.state)))
        beta = BetaStage() if options.beta_client else None
        orchestration = OrchestrationStage(ids, options.orchestration) if options.orchestration else None
        retry = RetryStage(retrier) if retrier is not None else None
        tracking, state = TrackingStage(self.tracker), SessionStateStage(self.state)
        repair = RepairStage(chain, self.state, ids, options.max_repair_bytes)
        self.order: dict[Direction, tuple[Stage, ...]] = {
            "client": _present(beta, repair, orchestration, retry, tracking, state),
            "server": _present(tracking, orchestration, AttributionStage(ids), state, retry, beta),
        }
        self._parsed: dict[Direction, frozenset[str]] = {
            "client": frozenset().union(*(s.client_types for s in self.order["client"])),
            "server": frozenset().union(*(s.server_types for s in self.order["server"])),
        }
        # Per known event type, the stages that see it; unknown types are routed per frame.
        self._routes: dict[Direction, dict[str | None, tuple[int, ...]]] = {
            "client": {t: self._route("client", t) for t in CLIENT_EVENT_TYPES},
            "server": {t: self._route("server", t) for t in SERVER_EVENT_TYPES},
        }
        self._timers: dict[str, Stage] = {}

    # -- frames in ----------------------------------------------------------------------------

    def from_client(self, frame: str | bytes, now: float) -> list[Action] | None:
        return self._frame("client", frame, now)

    def from_upstream(self, frame: str | bytes, now: float) -> list[Action] | None:
        return self._frame("server", frame, now)

    def _frame(self, direction: Direction, frame: str | bytes, now: float) -> list[Action] | None:
        if isinstance(frame, bytes):  # the API speaks JSON text; binary passes untouched
            self.classifier.count_binary(direction, frame)
            return None
        message = self.classifier.message(direction, frame, self._parsed[direction])
        route = self._routes[direction].get(message.type) or self._route(direction, message.type)
        if self.options.log_event_types:
            seen = FrameSeen(C2U if direction == "client" else U2C, message.type, len(frame))
            return [seen, *self._run(message, route, now)]
        if not route:
            return None
        actions = self._run(message, route, now)
        if len(actions) == 1 and not message.changed:
            only = actions[0]
            if isinstance(only, ToUpstream | ToClient) and only.frame is frame:
                return None  # passed every stage untouched: the relay forwards it as received
        return actions

    # -- the pipeline -------------------------------------------------------------------------

    def _route(self, direction: Direction, event_type: str | None) -> tuple[int, ...]:
        def sees(stage: Stage) -> bool:
            if direction == "client":
                declared, seen, everything = stage.client_types, stage.client_sees, stage.client_sees_all
            else:
                declared, seen, everything = stage.server_types, stage.server_sees, stage.server_sees_all
            return everything or event_type in declared or event_type in seen

        return tuple(i for i, stage in enumerate(self.order[direction]) if sees(stage))

    def _run(self, message: Message, route: Sequence[int], now: float) -> list[Action]:
        """Message through the stages at `route` (indexes into its direction's order), then out."""
        stages = self.order[message.direction]
        actions: list[Action] = []
        for index in route:
            stage = stages[index]
            hook = stage.on_client if message.direction == "client" else stage.on_server
            actions.extend(self._resolve(stage, hook(message, now), now))
            if message.done:
                return actions
        out = message.out()
        actions.append(ToUpstream(out) if message.direction == "client" else ToClient(out))
        return actions

    def _resolve(self, emitter: Stage, produced: list[StageAction], now: float) -> list[Action]:
        """Carry `Forward`s on through the stages after `emitter`; remember whose timers are whose."""
        actions: list[Action] = []
        for action in produced:
            if isinstance(action, Forward):
                message = action.message
                order = self.order[message.direction]
                after = order.index(emitter) + 1 if emitter in order else 0
                route = [i for i in self._route(message.direction, message.type) if i >= after]
                actions.extend(self._run(message, route, now))
                continue
            if isinstance(action, StartTimer):
                self._timers[action.token] = emitter
            actions.append(action)
        return actions

    # -- timers and close ---------------------------------------------------------------------

    def on_timer(self, token: str, now: float) -> list[Action]:
        stage = self._timers.pop(token, None)
        return self._resolve(stage, stage.on_timer(token, now), now) if stage is not None else []

    def close(self, now: float) -> list[Action]:
        actions: list[Action] = []
        for stage in dict.fromkeys((*self.order["client"], *self.order["server"])):
            actions.extend(self._resolve(stage, stage.close(now), now))
        return actions


def _repaired(result: ChainResult) -> tuple[dict[str, Any], list[RuleRewrite]]:
    return result.event, result.rewrites if result.changed else []


def _present(*stages: Stage | None) -> tuple[Stage, ...]:
    return tuple(stage for stage in stages if stage is not None)
