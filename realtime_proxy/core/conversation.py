"""The confirmed conversation, mirrored from server events so a new upstream session can be rebuilt
(issue 25). Pure: fed parsed server events, holds items in the server's order under the ids the
client knows, and stays within a byte budget (oldest items go first, counted in `trimmed`).

Only what a replay can use is kept, slimmed: message parts as text (input audio by its transcript,
assistant audio by its transcript; audio bytes never), function calls with their arguments, function
outputs. The last session configuration the server confirmed (`session.created`/`session.updated`)
is kept too.
"""

from __future__ import annotations

import copy
from collections.abc import Mapping
from types import MappingProxyType
from typing import Any, Final

import orjson

# Server events the mirror reads; everything else (audio and text deltas above all) never reaches it.
MIRRORED_EVENTS = frozenset(
    {
        "session.created",
        "session.updated",
        "conversation.item.added",
        "conversation.item.done",
        "conversation.item.retrieved",
        "conversation.item.deleted",
        "conversation.item.truncated",
        "conversation.item.input_audio_transcription.completed",
        "response.output_audio_transcript.done",
    }
)
_PART_TEXT = {"input_text": "text", "output_text": "text", "text": "text"}
_PART_TRANSCRIPT = ("input_audio", "output_audio", "audio")


def slim_item(item: Mapping[str, Any]) -> dict[str, Any] | None:
    """The replayable part of a server item (None: a kind a replay cannot recreate)."""
    kind = item.get("type")
    if kind == "message":
        parts: list[dict[str, Any]] = []
        for part in item.get("content") or ():
            if not isinstance(part, Mapping):
                continue
            ptype = part.get("type")
            if ptype in _PART_TEXT:
                parts.append({"type": ptype, "text": str(part.get("text") or "")})
            elif ptype in _PART_TRANSCRIPT:
                parts.append({"type": ptype, "transcript": str(part.get("transcript") or "")})
            elif ptype == "input_image" and isinstance(part.get("image_url"), str):
                parts.append({"type": ptype, "image_url": part["image_url"]})
        return {"id": item.get("id"), "type": kind, "role": item.get("role"), "content": parts}
    if kind == "function_call":
        fields = ("call_id", "name", "arguments")
        return {"id": item.get("id"), "type": kind, **{k: str(item.get(k) or "") for k in fields}}
    if kind == "function_call_output":
        return {
            "id": item.get("id"),
            "type": kind,
            "call_id": item.get("call_id"),
            "output": item.get("output"),
        }
    return None


_NO_ITEMS: Final[Mapping[str, dict[str, Any]]] = MappingProxyType({})


def _size(item: Mapping[str, Any]) -> int:
    return len(orjson.dumps(item))


class ConversationMirror:
    """Confirmed items in order (ids as the client knows them) and the last confirmed config."""

    __slots__ = ("_items", "_sizes", "bytes", "config", "max_bytes", "trimmed")

    def __init__(self, max_bytes: int) -> None:
        self.max_bytes = max_bytes
        self.config: dict[str, Any] | None = None
        # Made with the first item (None until then): two empty dicts in every idle session cost
        # 128 B (issue 26). Insertion order is the conversation's order.
        self._items: dict[str, dict[str, Any]] | None = None
        self._sizes: dict[str, int] | None = None
        self.bytes = 0
        self.trimmed = 0  # items dropped to stay within max_bytes (never reset)

    @property
    def items(self) -> Mapping[str, dict[str, Any]]:
        """The confirmed items in order, by id (read-only: the mirror's own events change it)."""
        return self._items if self._items is not None else _NO_ITEMS

    def on_event(self, event_type: str, event: Mapping[str, Any]) -> int:
        """Apply one server event; returns how many items this event made the mirror drop."""
        if event_type in ("session.created", "session.updated"):
            session = event.get("session")
            if isinstance(session, Mapping):
                self.config = copy.deepcopy(dict(session))
            return 0
        if event_type == "conversation.item.deleted":
            self._remove(event.get("item_id"))
            return 0
        if event_type in ("conversation.item.added", "conversation.item.done", "conversation.item.retrieved"):
            item = event.get("item")
            if isinstance(item, Mapping) and isinstance(item.get("id"), str):
                return self._put(item, event.get("previous_item_id"))
            return 0
        item_id = event.get("item_id")
        current = self.items.get(item_id) if isinstance(item_id, str) else None
        if current is None:
            return 0
        index = event.get("content_index")
        parts = current.get("content") or []
        if not isinstance(index, int) or not 0 <= index < len(parts):
            return 0
        if event_type == "conversation.item.truncated":
            parts[index]["transcript"] = ""  # the API drops the transcript of truncated audio
        elif isinstance(event.get("transcript"), str):
            parts[index]["transcript"] = event["transcript"]
        return self._resize(current["id"])

    def _put(self, item: Mapping[str, Any], previous: object) -> int:
        slim = slim_item(item)
        if slim is None:
            return 0
        if self._items is None or self._sizes is None:
            self._items, self._sizes = {}, {}
        items = self._items
        item_id: str = slim["id"]
        if item_id in items:
            old = items[item_id]
            if slim["type"] == "message" and not slim["content"] and old.get("content"):
                return 0  # an in-progress copy (no parts yet) never replaces a fuller one
            items[item_id] = slim
        elif isinstance(previous, str) and previous in items and previous != next(reversed(items)):
            self._insert_after(items, previous, item_id, slim)
        else:
            items[item_id] = slim
        self._sizes.setdefault(item_id, 0)
        return self._resize(item_id)

    def _insert_after(
        self, items: dict[str, dict[str, Any]], previous: str, item_id: str, slim: dict[str, Any]
    ) -> None:
        rebuilt: dict[str, dict[str, Any]] = {}
        for key, value in items.items():
            rebuilt[key] = value
            if key == previous:
                rebuilt[item_id] = slim
        self._items = rebuilt

    def _remove(self, item_id: object) -> None:
        if self._items is not None and isinstance(item_id, str) and item_id in self._items:
            del self._items[item_id]
            self.bytes -= self._sizes.pop(item_id, 0) if self._sizes is not None else 0

    def _resize(self, item_id: str) -> int:
        assert self._items is not None and self._sizes is not None  # an item was just put or found
        size = _size(self._items[item_id])
        self.bytes += size - self._sizes.get(item_id, 0)
        self._sizes[item_id] = size
        dropped = 0
        while self.bytes > self.max_bytes and self._items:
            self._remove(next(iter(self._items)))
            dropped += 1
        self.trimmed += dropped
        return dropped
