"""The beta translation stage: a beta client's event types to GA on the way up, every server
event back to the beta shape on the way down (renames touch only the leading type string, so
audio deltas are never parsed)."""

from __future__ import annotations

from realtime_proxy.core.actions import BetaTranslated
from realtime_proxy.core.compat import CLIENT_TYPES, DROP, client_event_to_ga, server_frame_to_beta
from realtime_proxy.core.stage import STOP, BaseStage, Message, Replace, ReplaceFrame, StageAction


class BetaStage(BaseStage):
    name = "beta"
    client_types = CLIENT_TYPES
    server_sees_all = True  # renames every type; parses the few it reshapes itself

    def on_client(self, message: Message, now: float) -> list[StageAction]:
        event = message.event
        if event is None:
            return []
        translations = client_event_to_ga(event)
        actions: list[StageAction] = [BetaTranslated(t.direction, t.before, t.after) for t in translations]
        if translations:
            actions.append(Replace(event))  # translated in place; its type read from it
        return actions

    def on_server(self, message: Message, now: float) -> list[StageAction]:
        translated = server_frame_to_beta(message.type, message.out())
        if translated == DROP:
            return [STOP]
        return [ReplaceFrame(translated)] if translated is not None else []
