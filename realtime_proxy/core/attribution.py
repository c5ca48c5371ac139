"""Error attribution: which client event (and which rules) an upstream `error` is about.

The API names the client event an error is about by its `event_id`. Events the proxy changed
but the client sent without an id get one of the proxy's own (issued by the ledger,
`realtime_proxy.core.responses`), so the error can be attributed; the pipeline gives the client
back its own id (`null` when it sent none) at the server lane's exit, after every stage saw it."""

from __future__ import annotations

from realtime_proxy.core.actions import UpstreamError
from realtime_proxy.core.responses import OWN_EVENT_PREFIX, Ledger
from realtime_proxy.core.stage import BaseStage, Message, StageAction

__all__ = ["OWN_EVENT_PREFIX", "AttributionStage"]


class AttributionStage(BaseStage):
    __slots__ = ("ledger",)
    name = "attribution"
    server_types = frozenset({"error"})

    def __init__(self, ledger: Ledger) -> None:
        self.ledger = ledger

    def on_server(self, message: Message, now: float) -> list[StageAction]:
        if message.event is None:
            return []
        error = message.event.get("error")
        error = error if isinstance(error, dict) else {}
        client_event_id = error.get("event_id")
        return [
            UpstreamError(
                error_type=error.get("type"),
                code=error.get("code"),
                message=error.get("message"),
                param=error.get("param"),
                client_event_id=client_event_id,
                rules=self.ledger.rules_for(client_event_id),
            )
        ]
