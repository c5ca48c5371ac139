"""The Live start gate (rule `live_hold_until_started`): commands a client sends between
`session.start` and `session.started` are held and released, in order, once the session has
started. The SDK's types say to wait ("Send this event before other commands and wait for
`session.started`", openai/types/live/session_start_event.py); the fake refuses early commands."""

from __future__ import annotations

from realtime_proxy.api.events import LIVE_CLIENT_EVENT_TYPES
from realtime_proxy.core.live_observations import LiveEarlyCommand
from realtime_proxy.core.stage import STOP, BaseStage, Forward, Message, StageAction

MAX_HELD = 64  # commands the start gate holds; past it they go on and the API answers them


def _event_id(message: Message) -> str | None:
    value = message.event.get("event_id") if message.event is not None else None
    return value if isinstance(value, str) else None


class LiveStartGate(BaseStage):
    """Holds Live commands sent after `session.start` until `session.started` (or an `error` or
    `session.closed` before it: the API then answers them itself). `apply=False` only reports."""

    name = "live_start_gate"
    client_sees = LIVE_CLIENT_EVENT_TYPES - {"session.start"}
    client_types = frozenset({"session.start"})
    server_sees = frozenset({"session.started", "session.closed", "error"})

    def __init__(self, *, apply: bool) -> None:
        self.apply = apply
        self.start_sent = False
        self.started = False
        self.held: list[Message] = []

    def on_client(self, message: Message, now: float) -> list[StageAction]:
        if message.type == "session.start":
            self.start_sent = True
            return []
        if self.started or not self.start_sent:
            return []  # before session.start the API refuses it: that answer is the clear one
        event_id = _event_id(message)
        hold = self.apply and len(self.held) < MAX_HELD
        if hold:
            self.held.append(message)
        early = LiveEarlyCommand(message.type, event_id, hold, len(self.held))
        return [early, STOP] if hold else [early]

    def on_server(self, message: Message, now: float) -> list[StageAction]:
        if self.started or not self.start_sent:
            return []
        self.started = True  # session.started, or the start failed: either way nothing more to wait for
        held, self.held = self.held, []
        return [Forward(item) for item in held]  # each goes on (the pipeline reopens it)

    def close(self, now: float) -> list[StageAction]:
        self.held.clear()
        return []
