"""First, do no harm: a valid event of every client event type, on every route, reaches the API
byte for byte (no rule applies to a valid event), and no rule touches a translation session."""

from __future__ import annotations

import base64
import json
from typing import Any

import pytest

from realtime_proxy.api.events import CLIENT_EVENT_TYPES
from tests.conftest import ProxyFactory
from tests.e2e.realtime_client import RawClient

TOOL = {"type": "function", "name": "lookup", "description": "d", "parameters": {"type": "object"}}
SESSIONS: dict[str, dict[str, Any]] = {
    "realtime": {
        "type": "realtime",
        "instructions": "hi",
        "output_modalities": ["audio"],
        "tools": [TOOL],
        "tool_choice": {"type": "function", "name": "lookup"},
        "max_output_tokens": 100,
        "audio": {"input": {"format": {"type": "audio/pcm", "rate": 24000}}, "output": {"voice": "marin"}},
    },
    "transcription": {
        "type": "transcription",
        "audio": {
            "input": {"format": {"type": "audio/pcm", "rate": 24000}, "transcription": {"model": "whisper-1"}}
        },
    },
    "translation": {
        "audio": {"output": {"language": "de"}, "input": {"transcription": {"model": "whisper-1"}}}
    },
}
ROUTES = {
    "realtime": ("/v1/realtime?model=gpt-realtime", "realtime"),
    "transcription": ("/v1/realtime?intent=transcription", "transcription"),
    "translation": ("/v1/realtime/translations?model=gpt-realtime-translate", "translation"),
    "sideband": ("/v1/realtime?call_id=rtc_1", "realtime"),
    "azure": ("/openai/v1/realtime?model=my-deployment", "realtime"),
    "azure-preview": ("/openai/realtime?api-version=2025-04-01-preview&deployment=dep", "realtime"),
}
SILENCE = base64.b64encode(bytes(48 * 200)).decode()  # 200 ms of 24 kHz PCM16


def valid_events(session: dict[str, Any]) -> list[dict[str, Any]]:
    """One valid event of each GA client event type (realtime and translation sockets)."""
    user = {"type": "message", "role": "user", "content": [{"type": "input_text", "text": "hi"}]}
    assistant = {"type": "message", "role": "assistant", "content": [{"type": "output_text", "text": "yo"}]}
    return [
        {"type": "session.update", "session": session},
        {"type": "input_audio_buffer.append", "audio": SILENCE},
        {"type": "input_audio_buffer.commit"},
        {"type": "input_audio_buffer.clear"},
        {"type": "output_audio_buffer.clear"},
        {"type": "conversation.item.create", "item": user},
        {"type": "conversation.item.create", "previous_item_id": "root", "item": assistant},
        {
            "type": "conversation.item.create",
            "item": {"type": "function_call_output", "call_id": "c", "output": "{}"},
        },
        {"type": "conversation.item.retrieve", "item_id": "item_x"},
        {"type": "conversation.item.truncate", "item_id": "item_x", "content_index": 0, "audio_end_ms": 0},
        {"type": "conversation.item.delete", "item_id": "item_x"},
        {"type": "response.create", "response": {"tool_choice": {"type": "function", "name": "lookup"}}},
        {
            "type": "response.create",
            "response": {"conversation": "none", "output_modalities": ["text"], "max_output_tokens": "inf"},
        },
        {"type": "response.cancel"},
        {"type": "session.input_audio_buffer.append", "audio": SILENCE},
        {"type": "session.close", "event_id": "last"},
    ]


def test_the_valid_events_cover_every_client_event_type() -> None:
    types = {e["type"] for e in valid_events({})}
    assert set(CLIENT_EVENT_TYPES) - {"transcription_session.update"} <= types  # beta: never valid on GA
    assert {"session.input_audio_buffer.append", "session.close"} <= types


@pytest.mark.parametrize("route", list(ROUTES))
async def test_valid_events_pass_byte_for_byte_on_every_route(make_proxy: ProxyFactory, route: str) -> None:
    # By design, retries tag out-of-band metadata, and turn-taking names in-band creates sent without
    # an id (to attribute their errors) and holds a cancel sent before response.created.
    proxy = await make_proxy(retry={"enabled": False}, orchestration={"mode": "off"})
    path, kind = ROUTES[route]
    client = await RawClient.open(f"ws://127.0.0.1:{proxy.port}{path}")
    # Spacing no serializer produces: any re-encoding by the proxy would show.
    frames = [json.dumps(event, separators=(" ,", " : ")) for event in valid_events(SESSIONS[kind])]
    for frame in frames:
        await client.ws.send(frame)
    while True:  # the last event is answered: an error for an unknown type, or session.closed
        event = await client.next_event()
        if event["type"] == "session.closed" or (
            event["type"] == "error" and event["error"]["event_id"] == "last"
        ):
            break
    await client.close()
    upstream = proxy.fake.connections[-1]
    assert upstream.received == frames
    assert [line for line in proxy.log_lines() if line["event"] in ("rewrite", "refusal", "rule_error")] == []


async def test_beta_shaped_events_on_the_azure_preview_route_are_left_alone(make_proxy: ProxyFactory) -> None:
    """The Azure preview route speaks the beta shape: what the GA repairs would change is valid there."""
    proxy = await make_proxy()
    client = await RawClient.open(f"ws://127.0.0.1:{proxy.port}/openai/realtime?api-version=x&deployment=dep")
    beta = {
        "type": "session.update",
        "event_id": "b1",
        "session": {"modalities": ["text", "audio"], "voice": "alloy"},
    }
    frame = json.dumps(beta)
    await client.ws.send(frame)
    await client.until("session.updated")  # the GA-only fake refuses it; Azure preview would not
    await client.close()
    assert proxy.fake.connections[-1].received == [frame]
    assert [line for line in proxy.log_lines() if line["event"] == "rewrite"] == []


async def test_a_translation_update_is_never_given_a_type(make_proxy: ProxyFactory) -> None:
    """Without scopes, session_type_missing added `type` here and the API refused the update."""
    proxy = await make_proxy()
    path = "/v1/realtime/translations?model=gpt-realtime-translate"
    direct = await RawClient.open(f"{proxy.fake.url}{path}")
    await direct.send({"type": "session.update", "session": {"type": "realtime", **SESSIONS["translation"]}})
    refused = await direct.until("session.updated")
    assert refused["type"] == "error" and refused["error"]["param"] == "session.type"
    await direct.close()
    client = await RawClient.open(f"ws://127.0.0.1:{proxy.port}{path}")
    await client.send({"type": "session.update", "session": SESSIONS["translation"]})
    updated = await client.until("session.updated")
    assert updated["session"]["audio"]["output"]["language"] == "de"
    assert updated["session"]["type"] == "translation"
    await client.close()
