"""The new upstream leg's sink while a resumption replays the conversation into it: it reads only
the confirmations (`session.updated`, `conversation.item.added/done`, `error` naming a replay event)
and nothing of it reaches the client. Done when every replayed event is accounted for."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from typing import Any

from realtime_proxy.core.events import leading_type, parse_object
from realtime_proxy.core.replay import REPLAY_EVENT_PREFIX, ReplayPlan
from realtime_proxy.edge.wire import Leg

SESSION_EVENT_ID = f"{REPLAY_EVENT_PREFIX}session"


class ReplayFailed(Exception):
    pass


@dataclass
class ReplayResult:
    pairs: dict[str, str] = field(default_factory=dict)  # client-known item id -> the new session's
    errors: list[str] = field(default_factory=list)  # error codes the new session answered


class ReplaySink:
    def __init__(self, plan: ReplayPlan) -> None:
        self.config_pending = plan.has_config
        self.waiting = list(plan.item_ids)  # confirmed in the order they were sent
        self.by_event = {f"{REPLAY_EVENT_PREFIX}{n}": item_id for n, item_id in enumerate(plan.item_ids)}
        self.result = ReplayResult()
        self.seen: set[str] = set()
        self.done: asyncio.Future[ReplayResult] = asyncio.get_running_loop().create_future()
        self._check()

    def on_message(self, leg: Leg, data: bytes, text: bool, now: float) -> None:
        kind = leading_type(data) if text else None
        if kind == "session.updated":
            self.config_pending = False
        elif kind in ("conversation.item.added", "conversation.item.done"):
            item = (parse_object(data) or {}).get("item")
            if isinstance(item, dict) and isinstance(item.get("id"), str):
                self._confirmed(item["id"])
        elif kind == "error":
            error: Any = (parse_object(data) or {}).get("error")
            if isinstance(error, dict):
                self._refused(error)
        self._check()

    def _confirmed(self, new_id: str) -> None:
        if new_id in self.seen or not self.waiting:
            return
        self.seen.add(new_id)
        old = new_id if new_id in self.waiting else self.waiting[0]
        self.waiting.remove(old)
        self.result.pairs[old] = new_id

    def _refused(self, error: dict[str, Any]) -> None:
        event_id = error.get("event_id")
        if event_id == SESSION_EVENT_ID:
            self.config_pending = False
        elif event_id in self.by_event and self.by_event[event_id] in self.waiting:
            self.waiting.remove(self.by_event[event_id])
        else:
            return
        self.result.errors.append(str(error.get("code")))

    def _check(self) -> None:
        if not self.done.done() and not self.config_pending and not self.waiting:
            self.done.set_result(self.result)

    def on_leg_ended(self, leg: Leg) -> None:
        if not self.done.done():
            self.done.set_exception(ReplayFailed("the new upstream session ended during the replay"))

    def on_transport_closed(self, leg: Leg) -> None:
        self.on_leg_ended(leg)
