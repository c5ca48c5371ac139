"""The out-of-band retry stage: adapts `ResponseRetrier` (realtime_proxy.core.retry) to the pipeline.

What the retrier sends the client in place of a server event (a held `response.created`, a
restored `response.done`) continues through the stages after this one (beta translation)."""

from __future__ import annotations

from realtime_proxy.core.actions import Action, ToClient
from realtime_proxy.core.events import leading_type
from realtime_proxy.core.retry import METADATA_KEY, SERVER_PARSED_TYPES, ResponseRetrier
from realtime_proxy.core.stage import BaseStage, Forward, Message, StageAction


class RetryStage(BaseStage):
    name = "retry"
    client_types = frozenset({"response.create", "response.cancel"})
    server_types = SERVER_PARSED_TYPES
    server_sees_all = True  # a held response is released by its first output event, whatever type

    def __init__(self, retrier: ResponseRetrier) -> None:
        self.retrier = retrier

    def on_client(self, message: Message, now: float) -> list[StageAction]:
        event = message.event
        if event is None:
            return []
        if message.type == "response.create":
            if not self.retrier.wants(event):
                return []
            before = _tag(event)
            actions: list[StageAction] = list(self.retrier.track(event, now))
            if _tag(event) != before:  # only a request actually tagged goes out re-serialised
                message.edited()
            return actions
        if message.type == "response.cancel":
            decided = self.retrier.on_client_cancel(event, now)
            if decided is not None:
                message.done = True
                return self._to_client(decided)
        return []

    def on_server(self, message: Message, now: float) -> list[StageAction]:
        if not self.retrier.active:
            return []
        decided = self.retrier.on_server_frame(message.type, message.event, message.out(), now)
        if decided is None:
            return []
        message.done = True
        return self._to_client(decided)

    def on_timer(self, token: str, now: float) -> list[StageAction]:
        return self._to_client(self.retrier.on_timer(token, now))

    def close(self, now: float) -> list[StageAction]:
        return self._to_client(self.retrier.close(now))

    @staticmethod
    def _to_client(actions: list[Action]) -> list[StageAction]:
        return [
            Forward(Message("server", a.frame, leading_type(a.frame)))
            if isinstance(a, ToClient) and isinstance(a.frame, str)
            else a
            for a in actions
        ]


def _tag(event: dict[str, object]) -> object:
    response = event.get("response")
    metadata = response.get("metadata") if isinstance(response, dict) else None
    return metadata.get(METADATA_KEY) if isinstance(metadata, dict) else None
