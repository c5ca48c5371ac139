"""core.replay: the events a new upstream session is sent so it holds what the old one had. Pure."""

from __future__ import annotations

from realtime_proxy.core.conversation import ConversationMirror
from realtime_proxy.core.replay import plan_replay


def test_the_whole_plan_config_then_items_in_order() -> None:
    mirror = ConversationMirror(max_bytes=100_000)
    mirror.on_event(
        "session.updated",
        {
            "session": {
                "type": "realtime",
                "object": "realtime.session",
                "id": "sess_1",
                "model": "gpt-realtime",
                "expires_at": 123,
                "instructions": "Be brief.",
                "tracing": None,
                "tools": [{"type": "function", "name": "lookup", "parameters": {}}],
            }
        },
    )
    items = [
        {
            "id": "sys",
            "type": "message",
            "role": "system",
            "content": [{"type": "input_text", "text": "ctx"}],
        },
        {
            "id": "u1",
            "type": "message",
            "role": "user",
            "content": [{"type": "input_audio", "transcript": "hi"}],
        },
        {
            "id": "u2",
            "type": "message",
            "role": "user",
            "content": [{"type": "input_audio", "transcript": None}],
        },
        {
            "id": "a1",
            "type": "message",
            "role": "assistant",
            "content": [{"type": "output_audio", "transcript": "Hey"}],
        },
        {"id": "f1", "type": "function_call", "call_id": "c1", "name": "lookup", "arguments": "{}"},
        {"id": "o1", "type": "function_call_output", "call_id": "c1", "output": "42"},
        {"id": "o2", "type": "function_call_output", "call_id": "gone", "output": "?"},
    ]
    for item in items:
        mirror.on_event("conversation.item.done", {"item": item})
    plan = plan_replay(mirror)
    assert plan.events == [
        {
            "type": "session.update",
            "event_id": "proxy_replay_session",
            "session": {
                "type": "realtime",
                "instructions": "Be brief.",
                "tools": [{"type": "function", "name": "lookup", "parameters": {}}],
            },
        },
        {
            "type": "conversation.item.create",
            "event_id": "proxy_replay_0",
            "item": {
                "id": "sys",
                "type": "message",
                "role": "system",
                "content": [{"type": "input_text", "text": "ctx"}],
            },
        },
        {
            "type": "conversation.item.create",
            "event_id": "proxy_replay_1",
            "item": {
                "id": "u1",
                "type": "message",
                "role": "user",
                "content": [{"type": "input_text", "text": "hi"}],
            },
        },
        {
            "type": "conversation.item.create",
            "event_id": "proxy_replay_2",
            "item": {
                "id": "a1",
                "type": "message",
                "role": "assistant",
                "content": [{"type": "output_text", "text": "Hey"}],
            },
        },
        {
            "type": "conversation.item.create",
            "event_id": "proxy_replay_3",
            "item": {
                "id": "f1",
                "type": "function_call",
                "call_id": "c1",
                "name": "lookup",
                "arguments": "{}",
            },
        },
        {
            "type": "conversation.item.create",
            "event_id": "proxy_replay_4",
            "item": {"id": "o1", "type": "function_call_output", "call_id": "c1", "output": "42"},
        },
    ]
    assert plan.item_ids == ["sys", "u1", "a1", "f1", "o1"]
    assert plan.skipped == 2 and plan.has_config  # u2 had no transcript; o2's call is not in the conversation


def test_nothing_confirmed_nothing_replayed() -> None:
    plan = plan_replay(ConversationMirror(max_bytes=1024))
    assert plan.events == [] and plan.item_ids == [] and not plan.has_config
