"""Turn-taking on the upstream leg: at most one in-band response at a time.

While an in-band `response.create` is in flight (until its `response.done`, or an `error` naming
it), a further in-band create is held and released, in order, when the active one ends.
Out-of-band creates (`"conversation": "none"`) run alongside and are never held."""

from __future__ import annotations

from collections import deque

from proxy.core.actions import Dequeued, Queued
from proxy.core.attribution import EventIds
from proxy.core.stage import BaseStage, Forward, Message, StageAction


def is_in_band(message: Message) -> bool:
    response = message.event.get("response") if message.event is not None else None
    return not (isinstance(response, dict) and response.get("conversation") == "none")


class OrchestrationStage(BaseStage):
    name = "orchestration"
    client_types = frozenset({"response.create"})
    server_types = frozenset({"response.done", "error"})

    def __init__(self, ids: EventIds) -> None:
        self.ids = ids
        self.active: str | None = None  # event id of the in-band create in flight
        self.held: deque[Message] = deque()

    def on_client(self, message: Message, now: float) -> list[StageAction]:
        if message.type != "response.create" or message.event is None or not is_in_band(message):
            return []
        if not isinstance(message.event.get("event_id"), str):
            self.ids.ensure(message.event)
            message.edited()
        event_id = message.event["event_id"]
        if self.active is None:
            self.active = event_id
            return []
        message.done = True
        self.held.append(message)
        return [Queued(event_id, len(self.held))]

    def on_server(self, message: Message, now: float) -> list[StageAction]:
        event = message.event
        if event is None or self.active is None:
            return []
        if message.type == "response.done":
            response = event.get("response")
            out_of_band = isinstance(response, dict) and response.get("conversation_id", "") is None
            return [] if out_of_band else self._release()
        error = event.get("error")
        if isinstance(error, dict) and error.get("event_id") == self.active:
            return self._release()
        return []

    def _release(self) -> list[StageAction]:
        self.active = None
        if not self.held:
            return []
        message = self.held.popleft()
        message.done = False
        assert message.event is not None
        self.active = message.event["event_id"]
        return [Dequeued(self.active), Forward(message)]
