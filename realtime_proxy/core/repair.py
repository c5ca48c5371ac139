"""The repair stage: runs the rule chain over each client event a rule reads.

A refused event is answered with the error event the API itself would send and goes no further.
Rewrites are reported once per rule and event (with a count), so one huge event cannot turn
into thousands of log lines. Events larger than `max_event_bytes` are not parsed by the core at all
and skip the rules (forwarded as sent, observed once): work per frame stays bounded for every
session on the loop."""

from __future__ import annotations

from typing import Any

from realtime_proxy.api.errors import ApiError, error_event
from realtime_proxy.core.actions import Refusal, RepairSkipped, Rewrite, RuleError, ToClient
from realtime_proxy.core.events import dump
from realtime_proxy.core.responses import Ledger
from realtime_proxy.core.rules import RuleChain
from realtime_proxy.core.rules.model import RuleRewrite
from realtime_proxy.core.session_state import SessionState
from realtime_proxy.core.stage import STOP, BaseStage, Message, Replace, StageAction

DEFAULT_MAX_EVENT_BYTES = 1 << 20


def refusal_event(event_id: str, client_event_id: Any, code: str, message: str, param: str | None) -> str:
    """The error event the API itself would send for a refused client event."""
    error = ApiError(message, code=code, param=param)
    echoed = client_event_id if isinstance(client_event_id, str) else None
    return dump(error_event(error, echoed, event_id=event_id))


def rewrite_observations(
    rewrites: list[RuleRewrite],
    client_event_id: str | None,
    event_type: str | None,
    *,
    applied: bool,
    via: str = "rules",
) -> list[Rewrite]:
    """One observation per rule, in chain order, describing its first change and counting all."""
    first: dict[str, RuleRewrite] = {}
    counts: dict[str, int] = {}
    for rewrite in rewrites:
        first.setdefault(rewrite.rule, rewrite)
        counts[rewrite.rule] = counts.get(rewrite.rule, 0) + 1
    return [
        Rewrite(
            client_event_id=client_event_id,
            event_type=event_type,
            rule=rule,
            path=r.path,
            before=r.before,
            after=r.after,
            lossless=r.lossless,
            applied=applied,
            via=via,
            count=counts[rule],
        )
        for rule, r in first.items()
    ]


class RepairStage(BaseStage):
    __slots__ = ("chain", "client_types", "ids", "max_event_bytes", "state")
    name = "repair"

    def __init__(self, chain: RuleChain, state: SessionState, ids: Ledger, max_event_bytes: int) -> None:
        self.chain, self.state, self.ids = chain, state, ids
        self.max_event_bytes = max_event_bytes
        self.client_types = chain.event_types

    def on_client(self, message: Message, now: float) -> list[StageAction]:
        event = message.event
        if event is None:  # not a JSON object, nested too deep, or too large: the API answers it
            size = len(message.frame)
            return (
                [RepairSkipped(None, message.type, "too_large", size)] if size > self.max_event_bytes else []
            )
        event_id = event.get("event_id")
        client_event_id = event_id if isinstance(event_id, str) else None
        result = self.chain.apply(event, self.state)
        applied = not self.chain.observe_only
        actions: list[StageAction] = [
            RuleError(client_event_id, message.type, rule, error) for rule, error in result.failures
        ]
        refusal = result.refusal
        if refusal is not None:
            actions.append(
                Refusal(client_event_id, message.type, refusal.rule, refusal.code, refusal.message, applied)
            )
            if applied:
                own = self.ids.new_event_id()
                actions.append(
                    ToClient(refusal_event(own, event_id, refusal.code, refusal.message, refusal.param))
                )
                actions.append(STOP)
            return actions
        if result.changed:
            # An id lets an upstream error be attributed to these rules; mapped back at the exit.
            client_event_id = self.ids.name(result.event)
        actions.extend(rewrite_observations(result.rewrites, client_event_id, message.type, applied=applied))
        if client_event_id is not None and (result.rewrites or result.failures):
            self.ids.remember_rules(client_event_id, [r.rule for r in result.rewrites])
        if result.changed:
            # Its type is read from it: a rule may translate the event (transcription_session.update).
            actions.append(Replace(result.event))
        return actions
