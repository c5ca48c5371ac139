"""The beta translation stage: a beta client's event types to GA on the way up, every server
event back to the beta shape on the way down (renames touch only the leading type string, so
audio deltas are never parsed)."""

from __future__ import annotations

from realtime_proxy.core.actions import BetaTranslated
from realtime_proxy.core.compat import CLIENT_TYPES, DROP, client_event_to_ga, server_frame_to_beta
from realtime_proxy.core.stage import BaseStage, Message, StageAction


class BetaStage(BaseStage):
    name = "beta"
    client_types = CLIENT_TYPES
    server_sees_all = True  # renames every type; parses the few it reshapes itself

    def on_client(self, message: Message, now: float) -> list[StageAction]:
        event = message.event
        if event is None:
            return []
        translations = client_event_to_ga(event)
        if translations:
            message.edited()
            event_type = event.get("type")
            message.type = event_type if isinstance(event_type, str) else None
        return [BetaTranslated(t.direction, t.before, t.after) for t in translations]

    def on_server(self, message: Message, now: float) -> list[StageAction]:
        translated = server_frame_to_beta(message.type, message.out())
        if translated == DROP:
            message.done = True
        elif translated is not None:
            message.replace_frame(translated)
        return []
