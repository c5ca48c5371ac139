"""core.conversation: the mirror of the confirmed conversation a resumption replays (issue 25). Pure."""

from __future__ import annotations

from typing import Any

import orjson

from realtime_proxy.core.conversation import ConversationMirror, slim_item


def user(item_id: str, text: str) -> dict[str, Any]:
    return {
        "id": item_id,
        "type": "message",
        "object": "realtime.item",
        "status": "completed",
        "role": "user",
        "content": [{"type": "input_text", "text": text}],
    }


def added(item: dict[str, Any], previous: str | None = None) -> dict[str, Any]:
    return {"type": "conversation.item.added", "previous_item_id": previous, "item": item}


def test_items_in_the_servers_order_and_slimmed() -> None:
    mirror = ConversationMirror(max_bytes=10_000)
    mirror.on_event("conversation.item.added", added(user("a", "one")))
    mirror.on_event("conversation.item.added", added(user("c", "three"), previous="a"))
    mirror.on_event("conversation.item.added", added(user("b", "two"), previous="a"))  # inserted after a
    assert list(mirror.items) == ["a", "b", "c"]
    assert mirror.items["a"] == {
        "id": "a",
        "type": "message",
        "role": "user",
        "content": [{"type": "input_text", "text": "one"}],
    }
    assert mirror.bytes == sum(len(orjson.dumps(item)) for item in mirror.items.values())


def test_audio_is_kept_as_its_transcript_never_as_bytes() -> None:
    mirror = ConversationMirror(max_bytes=10_000)
    audio = user("u1", "")
    audio["content"] = [{"type": "input_audio", "audio": "AAAA" * 1000, "transcript": None}]
    mirror.on_event("conversation.item.added", added(audio))
    assert mirror.items["u1"]["content"] == [{"type": "input_audio", "transcript": ""}]
    mirror.on_event(
        "conversation.item.input_audio_transcription.completed",
        {"item_id": "u1", "content_index": 0, "transcript": "hello there"},
    )
    assert mirror.items["u1"]["content"] == [{"type": "input_audio", "transcript": "hello there"}]
    assert mirror.bytes < 200


def test_assistant_message_done_replaces_its_empty_added_copy_but_not_the_reverse() -> None:
    mirror = ConversationMirror(max_bytes=10_000)
    empty = {"id": "m", "type": "message", "role": "assistant", "content": []}
    full = {**empty, "content": [{"type": "output_audio", "transcript": "Hi!"}]}
    mirror.on_event("conversation.item.added", added(empty))
    mirror.on_event("conversation.item.done", {"type": "conversation.item.done", "item": full})
    mirror.on_event("conversation.item.added", added(empty))  # a late in-progress copy
    assert mirror.items["m"]["content"] == [{"type": "output_audio", "transcript": "Hi!"}]


def test_truncation_drops_the_transcript_as_the_api_does_and_deletion_removes() -> None:
    mirror = ConversationMirror(max_bytes=10_000)
    item = {
        "id": "m",
        "type": "message",
        "role": "assistant",
        "content": [{"type": "output_audio", "transcript": "x"}],
    }
    mirror.on_event("conversation.item.done", {"item": item})
    mirror.on_event("conversation.item.truncated", {"item_id": "m", "content_index": 0, "audio_end_ms": 10})
    assert mirror.items["m"]["content"][0]["transcript"] == ""
    mirror.on_event("conversation.item.truncated", {"item_id": "m", "content_index": 5, "audio_end_ms": 10})
    mirror.on_event("conversation.item.deleted", {"item_id": "m"})
    mirror.on_event("conversation.item.deleted", {"item_id": "never-there"})
    assert mirror.items == {} and mirror.bytes == 0


def test_config_is_the_last_confirmed_session() -> None:
    mirror = ConversationMirror(max_bytes=10_000)
    mirror.on_event("session.created", {"session": {"instructions": "a"}})
    mirror.on_event("session.updated", {"session": {"instructions": "b"}})
    mirror.on_event("session.updated", {"session": "not an object"})
    assert mirror.config == {"instructions": "b"}


def test_past_the_budget_the_oldest_items_go_and_are_counted() -> None:
    one = len(orjson.dumps(slim_item(user("i0", "x" * 100))))
    mirror = ConversationMirror(max_bytes=3 * one)
    dropped = [mirror.on_event("conversation.item.added", added(user(f"i{n}", "x" * 100))) for n in range(5)]
    assert dropped == [0, 0, 0, 1, 1]
    assert list(mirror.items) == ["i2", "i3", "i4"] and mirror.trimmed == 2
    assert mirror.bytes == 3 * one <= mirror.max_bytes


def test_items_a_replay_cannot_recreate_are_not_kept() -> None:
    mirror = ConversationMirror(max_bytes=10_000)
    mirror.on_event("conversation.item.added", added({"id": "x", "type": "mcp_list_tools", "tools": []}))
    mirror.on_event("conversation.item.added", {"item": {"type": "message"}})  # no id
    assert mirror.items == {}
