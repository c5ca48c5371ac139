"""Item ids across a resumption (issue 25). The replay asks the new session to keep each item's id;
where the server gave an item another id, client events naming the old id are translated on their
way up and server events naming the new id on their way down, so the client only ever sees ids it
knows. Pure; empty (and then free) whenever the server kept the ids."""

from __future__ import annotations

from collections.abc import Mapping
from types import MappingProxyType
from typing import Any, Final

# Events whose item ids are translated; audio and text deltas name only items created after the
# resumption, which need no translation.
CLIENT_EVENTS = frozenset(
    {
        "conversation.item.create",
        "conversation.item.retrieve",
        "conversation.item.truncate",
        "conversation.item.delete",
        "response.create",
    }
)
SERVER_EVENTS = frozenset(
    {
        "conversation.item.added",
        "conversation.item.done",
        "conversation.item.retrieved",
        "conversation.item.deleted",
        "conversation.item.truncated",
        "input_audio_buffer.committed",
        "conversation.item.input_audio_transcription.completed",
        "conversation.item.input_audio_transcription.delta",
        "conversation.item.input_audio_transcription.failed",
    }
)
_FIELDS = ("item_id", "previous_item_id")
_NOTHING: Final[Mapping[str, str]] = MappingProxyType({})


class IdMap:
    __slots__ = ("to_client", "to_upstream")

    def __init__(self) -> None:
        # Read-only; one shared empty table until a resumption maps ids (two empty dicts in every
        # idle session cost 128 B: issue 26).
        self.to_upstream: Mapping[str, str] = _NOTHING
        self.to_client: Mapping[str, str] = _NOTHING

    def __bool__(self) -> bool:
        return bool(self.to_upstream)

    def reset(self, pairs: dict[str, str]) -> None:
        """A new upstream session: `pairs` maps client ids to its ids (identical ones left out)."""
        self.to_upstream = {old: new for old, new in pairs.items() if old != new}
        self.to_client = {new: old for old, new in self.to_upstream.items()}

    def client_event(self, event: dict[str, Any]) -> bool:
        """Translate a client event in place; True when something changed."""
        changed = _swap(event, self.to_upstream)
        response = event.get("response")
        if isinstance(response, dict) and isinstance(response.get("input"), list):
            for item in response["input"]:
                if isinstance(item, dict) and item.get("type") == "item_reference":
                    changed |= _swap_key(item, "id", self.to_upstream)
        return changed

    def server_event(self, event: dict[str, Any]) -> bool:
        changed = _swap(event, self.to_client)
        item = event.get("item")
        if isinstance(item, dict):
            changed |= _swap_key(item, "id", self.to_client)
        return changed


def _swap(event: dict[str, Any], table: Mapping[str, str]) -> bool:
    changed = False
    for key in _FIELDS:
        changed |= _swap_key(event, key, table)
    return changed


def _swap_key(obj: dict[str, Any], key: str, table: Mapping[str, str]) -> bool:
    value = obj.get(key)
    if isinstance(value, str) and value in table:
        obj[key] = table[value]
        return True
    return False
