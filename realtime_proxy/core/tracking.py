"""The tracking stage: per-response timing, status and usage, and rate limits, for metrics.

It only observes: it never changes or holds a frame."""

from __future__ import annotations

from realtime_proxy.core.actions import RateLimits
from realtime_proxy.core.stage import BaseStage, Message, StageAction
from realtime_proxy.core.tracker import FIRST_DELTA_MODALITY, ResponseTracker


class TrackingStage(BaseStage):
    name = "tracking"
    client_types = frozenset({"response.create"})
    server_types = frozenset({"response.created", "response.done", "rate_limits.updated", "error"})
    server_sees = frozenset(FIRST_DELTA_MODALITY)

    def __init__(self, tracker: ResponseTracker) -> None:
        self.tracker = tracker

    def on_client(self, message: Message, now: float) -> list[StageAction]:
        if message.type == "response.create" and message.event is not None:
            self.tracker.on_client_create(message.event.get("event_id"), now)
        return []

    def on_server(self, message: Message, now: float) -> list[StageAction]:
        event_type, event = message.type, message.event
        if event_type in FIRST_DELTA_MODALITY:
            if self.tracker.awaiting_delta:
                first = self.tracker.on_delta(event_type, message.frame, now)
                return [first] if first is not None else []
            return []
        if event is None:
            return []
        if event_type == "response.created":
            response = event.get("response")
            if isinstance(response, dict) and isinstance(response.get("id"), str):
                self.tracker.on_created(response["id"], now)
        elif event_type == "response.done":
            return [self.tracker.on_done(event, now)]
        elif event_type == "rate_limits.updated":
            return [RateLimits(event.get("rate_limits"))]
        elif event_type == "error":
            error = event.get("error")
            event_id = error.get("event_id") if isinstance(error, dict) else None
            if isinstance(event_id, str):
                self.tracker.on_client_create_rejected(event_id)
        return []
