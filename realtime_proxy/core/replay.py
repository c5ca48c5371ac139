"""The replay plan: what a new upstream session is sent so it holds what the old one had (issue 25).
Pure: a function of the mirror, returning client events in order.

1. `session.update` with the last confirmed configuration, minus the fields the server owns
   (`id`, `object`, `expires_at`, `client_secret`: "Unknown parameter", Unity sample #427; `model`
   is set by the handshake, openai-node PR #2327) and top-level nulls.
2. One `conversation.item.create` per confirmed item, in order, under the id the client knows:
   messages with their text; user audio as `input_text` with its transcript; assistant audio as
   `output_text` with its transcript (the API refuses `output_audio` parts without text:
   openai-agents-js #963); function calls together with their outputs (an output whose call is
   gone is left out: `invalid_tool_call_id`, livekit/agents #3344). Parts without text are left
   out, and so is an item with no part left.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from realtime_proxy.core.conversation import ConversationMirror

READ_ONLY_SESSION_FIELDS = ("id", "object", "expires_at", "client_secret", "model")
REPLAY_EVENT_PREFIX = "proxy_replay_"
_TEXT_TYPE = {"user": "input_text", "system": "input_text", "assistant": "output_text"}


@dataclass(frozen=True, slots=True)
class ReplayPlan:
    events: list[dict[str, Any]]
    item_ids: list[str]  # the client-known id of each item event, in order
    skipped: int = 0  # mirrored items a replay cannot carry (no text, an orphan output)
    has_config: bool = field(default=False)


def session_update(config: Mapping[str, Any]) -> dict[str, Any]:
    """Top-level nulls (`tracing`, `prompt`, `include`) are the defaults: left out, not sent."""
    session = {k: v for k, v in config.items() if k not in READ_ONLY_SESSION_FIELDS and v is not None}
    session.setdefault("type", "realtime")
    return {"type": "session.update", "event_id": f"{REPLAY_EVENT_PREFIX}session", "session": session}


def replay_item(item: Mapping[str, Any]) -> dict[str, Any] | None:
    """A mirrored item as `conversation.item.create`'s `item` (None: nothing replayable)."""
    kind = item["type"]
    if kind != "message":
        return {k: v for k, v in item.items() if v is not None}
    role = item.get("role")
    text_type = _TEXT_TYPE.get(str(role))
    if text_type is None:
        return None
    parts: list[dict[str, Any]] = []
    for part in item.get("content") or ():
        if part["type"] == "input_image" and role == "user":
            parts.append(dict(part))
            continue
        text = part.get("text") if "text" in part else part.get("transcript")
        if text:
            parts.append({"type": text_type, "text": text})
    if not parts:
        return None
    return {"id": item["id"], "type": "message", "role": role, "content": parts}


def plan_replay(mirror: ConversationMirror) -> ReplayPlan:
    events: list[dict[str, Any]] = []
    if mirror.config is not None:
        events.append(session_update(mirror.config))
    items, skipped = _replayable(mirror.items.values())
    ids: list[str] = []
    for n, item in enumerate(items):
        events.append(
            {"type": "conversation.item.create", "event_id": f"{REPLAY_EVENT_PREFIX}{n}", "item": item}
        )
        ids.append(item["id"])
    return ReplayPlan(events, ids, skipped, mirror.config is not None)


def _replayable(items: Iterable[Mapping[str, Any]]) -> tuple[list[dict[str, Any]], int]:
    out: list[dict[str, Any]] = []
    calls: set[str] = set()
    skipped = 0
    for item in items:
        replayed = replay_item(item)
        orphan = replayed is not None and replayed["type"] == "function_call_output"
        if orphan and replayed is not None and replayed.get("call_id") not in calls:
            replayed = None
        if replayed is None:
            skipped += 1
            continue
        if replayed["type"] == "function_call":
            calls.add(replayed["call_id"])
        out.append(replayed)
    return out, skipped
