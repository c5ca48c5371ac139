"""Error attribution: which client event (and which rules) an upstream `error` is about.

The API names the client event an error is about by its `event_id`. Events the proxy changed
but the client sent without an id get one of the proxy's own (`proxy_evt_N`), so the error can be
attributed; the client never sent that id, so it sees `null` there, as it would have."""

from __future__ import annotations

import itertools
from collections import OrderedDict
from typing import Any

from realtime_proxy.core.actions import UpstreamError
from realtime_proxy.core.stage import BaseStage, Message, StageAction

OWN_EVENT_PREFIX = "proxy_evt_"
_MEMORY = 256  # client events remembered for attribution (the most recent ones)


class EventIds:
    """The proxy's own event ids, and the rules that touched each client event (bounded)."""

    def __init__(self) -> None:
        self._counter = itertools.count(1)
        self._touched: OrderedDict[str, list[str]] = OrderedDict()

    def new(self) -> str:
        return f"{OWN_EVENT_PREFIX}{next(self._counter)}"

    def ensure(self, event: dict[str, Any]) -> str:
        """The event's own string id, or a new proxy id set on it."""
        event_id = event.get("event_id")
        if not isinstance(event_id, str):
            event_id = event["event_id"] = self.new()
        return event_id

    def remember(self, client_event_id: str, rules: list[str]) -> None:
        self._touched[client_event_id] = rules
        while len(self._touched) > _MEMORY:
            self._touched.popitem(last=False)

    def rules_for(self, client_event_id: Any) -> list[str] | None:
        return self._touched.get(client_event_id) if isinstance(client_event_id, str) else None


class AttributionStage(BaseStage):
    name = "attribution"
    server_types = frozenset({"error"})

    def __init__(self, ids: EventIds) -> None:
        self.ids = ids

    def on_server(self, message: Message, now: float) -> list[StageAction]:
        if message.event is None:
            return []
        error = message.event.get("error")
        error = error if isinstance(error, dict) else {}
        client_event_id = error.get("event_id")
        observed = UpstreamError(
            error_type=error.get("type"),
            code=error.get("code"),
            message=error.get("message"),
            param=error.get("param"),
            client_event_id=client_event_id,
            rules=self.ids.rules_for(client_event_id),
        )
        if isinstance(client_event_id, str) and client_event_id.startswith(OWN_EVENT_PREFIX):
            error["event_id"] = None  # the client never sent an id: it sees none
            message.edited()
        return [observed]
