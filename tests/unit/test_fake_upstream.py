"""Direct tests of the fake Realtime upstream (no proxy in between).

Every server frame any test provokes is re-validated at fixture teardown against the official SDK's
`RealtimeServerEvent` union, with unknown fields forbidden, so the fake can't drift from the GA schema.
"""

from __future__ import annotations

import asyncio
import base64
import json
from collections.abc import AsyncIterator, Callable
from typing import Any

import pytest
from openai import AsyncOpenAI
from openai.types.realtime import RealtimeServerEvent, RealtimeSessionCreateResponse
from pydantic import BaseModel, TypeAdapter
from websockets.asyncio.client import ClientConnection, connect
from websockets.asyncio.connection import Connection
from websockets.exceptions import ConnectionClosed, ConnectionClosedError, InvalidStatus

from realtime_proxy.fake_upstream import FakeUpstream

AUTH = {"Authorization": "Bearer sk-test"}
MODEL_PATH = "/v1/realtime?model=gpt-realtime"
SERVER_EVENTS: TypeAdapter[Any] = TypeAdapter(RealtimeServerEvent)
# The session object is RealtimeSessionCreateResponse-shaped; the event union types it as the request.
SESSION_EXTRAS = {"id", "object", "expires_at"}

SEED_TOOL = {
    "type": "function",
    "name": "return_response",
    "description": "Return the response to the agent",
    "parameters": {
        "type": "object",
        "properties": {"response": {"type": "string"}},
        "required": ["response"],
        "additionalProperties": False,
    },
}
SEED_EVENT: dict[str, Any] = {
    "type": "response.create",
    "response": {
        "instructions": "Summarize the conversation so far",
        "tools": [SEED_TOOL],
        "tool_choice": {"type": "function", "name": "return_response"},
        "conversation": "none",
        "output_modalities": ["text"],
        "metadata": {"response_type": "out-of-band"},
    },
}
# shared/seed-report.txt's response.done, minus the random ids.
SEED_DONE_RESPONSE = {
    "object": "realtime.response",
    "status": "failed",
    "status_details": {"error": {"type": "server_error"}, "type": "failed"},
    "output": [],
    "usage": {
        "total_tokens": 0,
        "input_tokens": 0,
        "output_tokens": 0,
        "input_token_details": {
            "cached_tokens": 0,
            "text_tokens": 0,
            "audio_tokens": 0,
            "cached_tokens_details": {"text_tokens": 0, "audio_tokens": 0},
        },
        "output_token_details": {"text_tokens": 0, "audio_tokens": 0},
    },
    "max_output_tokens": "inf",
    "metadata": {"response_type": "out-of-band"},
}


# --- schema proof ---------------------------------------------------------------------------------


def _assert_no_extras(value: object, path: str) -> None:
    if isinstance(value, BaseModel):
        extras = set(value.model_extra or {})
        if path.endswith(".session"):
            extras -= SESSION_EXTRAS
        assert not extras, f"fields unknown to the SDK at {path}: {extras}"
        for name in type(value).model_fields:
            _assert_no_extras(getattr(value, name), f"{path}.{name}")
    elif isinstance(value, list):
        for i, v in enumerate(value):
            _assert_no_extras(v, f"{path}[{i}]")


def assert_valid_server_event(frame: str) -> None:
    event = SERVER_EVENTS.validate_json(frame)
    _assert_no_extras(event, event.type)
    if event.type in ("session.created", "session.updated"):
        RealtimeSessionCreateResponse.model_validate(json.loads(frame)["session"])


@pytest.fixture
async def fake() -> AsyncIterator[FakeUpstream]:
    async with FakeUpstream(delta_interval=0.001) as upstream:
        yield upstream
    frames = [frame for record in upstream.connections for frame in record.sent]
    assert frames
    for frame in frames:
        assert_valid_server_event(frame)


# --- client helpers -------------------------------------------------------------------------------


def open_ws(
    fake: FakeUpstream, path: str = MODEL_PATH, headers: dict[str, str] | None = None, **kw: Any
) -> connect:
    return connect(fake.url + path, additional_headers=AUTH if headers is None else headers, **kw)


async def recv(ws: Connection) -> dict[str, Any]:
    async with asyncio.timeout(5):
        return json.loads(await ws.recv())


async def send(ws: Connection, event: dict[str, Any]) -> None:
    await ws.send(json.dumps(event))


async def collect(ws: Connection, stop: Callable[[dict[str, Any]], bool]) -> list[dict[str, Any]]:
    events = []
    while True:
        event = await recv(ws)
        events.append(event)
        if stop(event):
            return events


async def until(ws: Connection, event_type: str) -> list[dict[str, Any]]:
    return await collect(ws, lambda e: e["type"] == event_type)


async def session(fake: FakeUpstream) -> ClientConnection:
    ws = await open_ws(fake)
    assert (await recv(ws))["type"] == "session.created"
    return ws


def pcm_ms(ms: int) -> str:
    return base64.b64encode(bytes(48 * ms)).decode()


# --- handshake ------------------------------------------------------------------------------------


async def test_missing_key_is_401_json() -> None:
    async with FakeUpstream() as fake:
        with pytest.raises(InvalidStatus) as info:
            async with asyncio.timeout(5):
                await open_ws(fake, headers={})
    response = info.value.response
    assert response.status_code == 401
    assert response.headers["Content-Type"] == "application/json"
    error = json.loads(response.body)["error"]
    assert error["type"] == "invalid_request_error"
    assert error["code"] == "invalid_api_key"
    assert error["param"] is None
    assert error["message"].startswith("Incorrect API key provided")
    assert fake.connections == [] and fake.refused[0].status == 401


async def test_configured_key_is_enforced() -> None:
    async with FakeUpstream(api_key="sk-right") as fake:
        with pytest.raises(InvalidStatus) as info:
            async with asyncio.timeout(5):
                await open_ws(fake, headers={"Authorization": "Bearer sk-wrong"})
        assert info.value.response.status_code == 401
        async with asyncio.timeout(5), open_ws(fake, headers={"api-key": "sk-right"}) as ws:
            assert (await recv(ws))["type"] == "session.created"


async def test_unknown_path_is_404() -> None:
    async with FakeUpstream() as fake:
        with pytest.raises(InvalidStatus) as info:
            async with asyncio.timeout(5):
                await open_ws(fake, path="/v1/chat?model=x")
    assert info.value.response.status_code == 404
    assert json.loads(info.value.response.body)["error"]["message"] == "Invalid URL (GET /v1/chat)"


async def test_refuse_handshake_and_delay() -> None:
    async with FakeUpstream() as fake:
        fake.refuse_handshake = (429, {"error": {"message": "slow down", "type": "rate_limit"}})
        with pytest.raises(InvalidStatus) as info:
            async with asyncio.timeout(5):
                await open_ws(fake)
        assert info.value.response.status_code == 429
        assert json.loads(info.value.response.body)["error"]["message"] == "slow down"
        fake.refuse_handshake = None
        fake.handshake_delay = 0.3
        with pytest.raises(TimeoutError):
            async with asyncio.timeout(5):
                await open_ws(fake, open_timeout=0.1)


async def test_browser_subprotocols_and_record(fake: FakeUpstream) -> None:
    offered = ["realtime", "openai-insecure-api-key.sk-browser"]
    async with open_ws(fake, path="/v1/realtime?call_id=rtc_1", headers={}, subprotocols=offered) as ws:
        assert ws.subprotocol == "realtime"
        created = await recv(ws)
        await send(ws, {"type": "input_audio_buffer.clear", "event_id": "c1"})
        assert (await recv(ws))["type"] == "input_audio_buffer.cleared"
        await ws.close(1000, "bye")
    record = fake.connections[0]
    async with asyncio.timeout(5):
        await record.wait_closed()
    assert not record.open
    assert record.path == "/v1/realtime" and record.query == {"call_id": "rtc_1"}
    assert record.subprotocols_offered == offered and record.subprotocol_selected == "realtime"
    assert "sec-websocket-key" in record.headers
    assert json.loads(record.sent[0]) == created
    assert json.loads(record.received[0])["event_id"] == "c1"
    assert (record.close_code, record.close_reason) == (1000, "bye")


@pytest.mark.parametrize(
    ("headers", "subprotocols"),
    [
        ({**AUTH, "OpenAI-Beta": "realtime=v1"}, None),
        ({}, ["realtime", "openai-insecure-api-key.sk-test", "openai-beta.realtime-v1"]),
    ],
)
async def test_beta_marker_gets_error_then_4000(
    fake: FakeUpstream, headers: dict[str, str], subprotocols: list[str] | None
) -> None:
    async with open_ws(fake, headers=headers, subprotocols=subprotocols) as ws:
        error = await recv(ws)
        assert error["type"] == "error"
        assert error["error"]["code"] == "beta_api_shape_disabled"
        assert error["error"]["message"] == (
            "The Realtime Beta API is no longer supported. Please use /v1/realtime for the GA API."
        )
        with pytest.raises(ConnectionClosed):
            await recv(ws)
        assert ws.close_code == 4000


# --- session --------------------------------------------------------------------------------------


async def test_session_created_is_full_ga_session(fake: FakeUpstream) -> None:
    async with open_ws(fake, path="/v1/realtime?model=gpt-realtime-mini") as ws:
        event = await recv(ws)
    sess = event["session"]
    assert event["event_id"].startswith("event_") and sess["id"].startswith("sess_")
    assert (sess["type"], sess["object"], sess["model"]) == (
        "realtime",
        "realtime.session",
        "gpt-realtime-mini",
    )
    assert sess["output_modalities"] == ["audio"]
    assert sess["audio"]["input"]["format"] == {"type": "audio/pcm", "rate": 24000}
    assert sess["audio"]["output"]["format"] == {"type": "audio/pcm", "rate": 24000}
    assert sess["audio"]["output"]["voice"] == "marin"
    assert (sess["tools"], sess["tool_choice"], sess["max_output_tokens"]) == ([], "auto", "inf")


async def test_valid_session_update_deep_merges(fake: FakeUpstream) -> None:
    async with await session(fake) as ws:
        update = {
            "type": "realtime",
            "output_modalities": ["text"],
            "audio": {"output": {"voice": "cedar"}},
            "tools": [SEED_TOOL],
        }
        await send(ws, {"type": "session.update", "session": update})
        sess = (await recv(ws))["session"]
    assert sess["output_modalities"] == ["text"]
    assert sess["audio"]["output"] == {
        "format": {"type": "audio/pcm", "rate": 24000},
        "voice": "cedar",
        "speed": 1.0,
    }
    assert sess["audio"]["input"]["turn_detection"]["type"] == "server_vad"
    assert sess["tools"] == [SEED_TOOL]


BAD_SESSIONS = [
    (
        {"type": "realtime", "modalities": ["text"]},
        "unknown_parameter",
        "Unknown parameter: 'session.modalities'.",
        "session.modalities",
    ),
    *(
        (
            {"type": "realtime", name: value},
            "unknown_parameter",
            f"Unknown parameter: 'session.{name}'.",
            f"session.{name}",
        )
        for name, value in [
            ("voice", "alloy"),
            ("input_audio_format", "pcm16"),
            ("output_audio_format", "pcm16"),
            ("turn_detection", None),
            ("input_audio_transcription", {"model": "whisper-1"}),
            ("input_audio_noise_reduction", None),
            ("temperature", 0.8),
            ("max_response_output_tokens", 100),
            ("speed", 1.1),
        ]
    ),
    (
        {"instructions": "hi"},
        "missing_required_parameter",
        "Missing required parameter: 'session.type'.",
        "session.type",
    ),
    (
        {"type": "realtime", "output_modalities": ["text", "audio"]},
        "invalid_value",
        "Invalid modalities: ['text', 'audio']. Supported combinations are: ['text'] and ['audio'].",
        "session.output_modalities",
    ),
    (
        {"type": "realtime", "audio": {"input": {"format": "pcm16"}}},
        "invalid_type",
        "Invalid type for 'session.audio.input.format': expected an object, but got a string instead.",
        "session.audio.input.format",
    ),
    (
        {"type": "realtime", "tools": [{"type": "function", "function": {"name": "f", "parameters": {}}}]},
        "missing_required_parameter",
        "Missing required parameter: 'session.tools[0].name'.",
        "session.tools[0].name",
    ),
    (
        {"type": "realtime", "tool_choice": None},
        "invalid_type",
        "Invalid type for 'session.tool_choice': expected one of a string or an object, "
        "but got null instead.",
        "session.tool_choice",
    ),
]


@pytest.mark.parametrize(("update", "code", "message", "param"), BAD_SESSIONS)
async def test_session_update_ga_strictness(
    fake: FakeUpstream, update: dict[str, Any], code: str, message: str, param: str
) -> None:
    async with await session(fake) as ws:
        await send(
            ws, {"type": "session.update", "event_id": "evt_bad", "session": {**update, "instructions": "x"}}
        )
        error = await recv(ws)
        assert error["type"] == "error"
        assert error["error"] == {
            "type": "invalid_request_error",
            "code": code,
            "message": message,
            "param": param,
            "event_id": "evt_bad",
        }
        # An invalid update changes nothing and the session stays open.
        await send(ws, {"type": "session.update", "session": {"type": "realtime"}})
        assert (await recv(ws))["session"]["instructions"] != "x"


async def test_protocol_errors_keep_session_open(fake: FakeUpstream) -> None:
    async with await session(fake) as ws:
        await ws.send("{not json")
        error = (await recv(ws))["error"]
        assert (error["code"], error["event_id"]) == ("invalid_json", None)
        assert error["message"].startswith("Invalid JSON: ")
        await send(ws, {"type": "response.bogus", "event_id": "e2"})
        error = (await recv(ws))["error"]
        assert (error["code"], error["param"], error["event_id"]) == ("invalid_value", "type", "e2")
        supported = "Supported values are: 'session.update', 'input_audio_buffer.append'"
        assert error["message"].startswith(f"Invalid value: 'response.bogus'. {supported}")
        await ws.send(b"\x00\x01")
        assert (await recv(ws))["type"] == "error"
        await send(ws, {"type": "input_audio_buffer.clear"})
        assert (await recv(ws))["type"] == "input_audio_buffer.cleared"


async def test_item_create_validation(fake: FakeUpstream) -> None:
    async with await session(fake) as ws:
        bad_assistant = {"type": "message", "role": "assistant", "content": [{"type": "text", "text": "hi"}]}
        await send(ws, {"type": "conversation.item.create", "event_id": "i1", "item": bad_assistant})
        error = (await recv(ws))["error"]
        assert error["message"] == "Invalid value: 'text'. Value must be 'output_text'."
        assert (error["code"], error["param"], error["event_id"]) == (
            "invalid_value",
            "item.content[0].type",
            "i1",
        )

        bad_output = {"type": "function_call_output", "call_id": "call_1", "output": {"ok": True}}
        await send(ws, {"type": "conversation.item.create", "event_id": "i2", "item": bad_output})
        error = (await recv(ws))["error"]
        assert (
            error["message"]
            == "Invalid type for 'item.output': expected a string, but got an object instead."
        )
        assert (error["code"], error["event_id"]) == ("invalid_type", "i2")

        good = {"type": "message", "role": "user", "content": [{"type": "input_text", "text": "hello"}]}
        await send(ws, {"type": "conversation.item.create", "item": good})
        added, done = await recv(ws), await recv(ws)
        assert (added["type"], done["type"]) == ("conversation.item.added", "conversation.item.done")
        item_id = added["item"]["id"]
        assert item_id.startswith("item_") and added["previous_item_id"] is None

        await send(ws, {"type": "conversation.item.retrieve", "item_id": item_id})
        assert (await recv(ws))["item"]["content"][0]["text"] == "hello"
        await send(ws, {"type": "conversation.item.delete", "item_id": item_id})
        assert (await recv(ws)) | {"event_id": None} == {
            "event_id": None,
            "type": "conversation.item.deleted",
            "item_id": item_id,
        }
        await send(ws, {"type": "conversation.item.retrieve", "item_id": item_id, "event_id": "i3"})
        error = (await recv(ws))["error"]
        assert (error["code"], error["event_id"]) == ("item_not_found", "i3")


async def test_commit_too_short_then_ok(fake: FakeUpstream) -> None:
    async with await session(fake) as ws:
        await send(ws, {"type": "input_audio_buffer.append", "audio": pcm_ms(50)})
        await send(ws, {"type": "input_audio_buffer.commit", "event_id": "k1"})
        error = (await recv(ws))["error"]
        assert error["code"] == "input_audio_buffer_commit_empty"
        assert error["event_id"] == "k1"
        assert error["message"] == (
            "Error committing input audio buffer: buffer too small. Expected at least 100ms of audio, "
            "but buffer only has 50.00ms of audio."
        )
        await send(ws, {"type": "input_audio_buffer.append", "audio": pcm_ms(60)})
        await send(ws, {"type": "input_audio_buffer.commit"})
        committed, added, done = await recv(ws), await recv(ws), await recv(ws)
        assert committed["type"] == "input_audio_buffer.committed"
        assert added["item"]["id"] == done["item"]["id"] == committed["item_id"]
        await send(ws, {"type": "input_audio_buffer.commit"})
        assert "only has 0.00ms" in (await recv(ws))["error"]["message"]


# --- responses ------------------------------------------------------------------------------------


async def test_seed_payload_fails_exactly_like_the_report(fake: FakeUpstream) -> None:
    async with await session(fake) as ws:
        await send(ws, SEED_EVENT)
        events = await until(ws, "response.done")
        assert [e["type"] for e in events] == ["response.created", "response.done"]
        created, done = events
        assert created["response"]["metadata"] == {"response_type": "out-of-band"}
        assert created["response"]["conversation_id"] is None
        assert list(done) == ["event_id", "type", "response"]
        body = done["response"]
        assert body["id"] == created["response"]["id"] and body["id"].startswith("resp_")
        assert list(body) == ["id", *SEED_DONE_RESPONSE]
        assert {k: v for k, v in body.items() if k != "id"} == SEED_DONE_RESPONSE
        assert (await recv(ws))["type"] == "rate_limits.updated"


async def test_seed_with_required_calls_the_tool(fake: FakeUpstream) -> None:
    async with await session(fake) as ws:
        event = {**SEED_EVENT, "response": {**SEED_EVENT["response"], "tool_choice": "required"}}
        await send(ws, event)
        events = await until(ws, "response.done")
    types = [e["type"] for e in events]
    assert types[:2] == ["response.created", "response.output_item.added"]
    assert "response.function_call_arguments.delta" in types
    assert types[-3:] == [
        "response.function_call_arguments.done",
        "response.output_item.done",
        "response.done",
    ]
    assert not any(t.startswith("conversation.") for t in types)  # out-of-band writes nothing
    args_done = events[-3]
    assert args_done["name"] == "return_response"
    assert json.loads(args_done["arguments"]) == {"response": "summary"}
    deltas = "".join(e["delta"] for e in events if e["type"] == "response.function_call_arguments.delta")
    assert deltas == args_done["arguments"]
    body = events[-1]["response"]
    assert body["status"] == "completed" and body["conversation_id"] is None
    assert body["metadata"] == {"response_type": "out-of-band"}
    assert body["output"][0]["call_id"] == args_done["call_id"]
    assert body["usage"]["total_tokens"] > 0 and body["usage"]["output_tokens"] > 0


async def test_text_response_in_band(fake: FakeUpstream) -> None:
    async with await session(fake) as ws:
        await send(ws, {"type": "response.create", "response": {"output_modalities": ["text"]}})
        events = await until(ws, "response.done")
        assert (await recv(ws))["type"] == "rate_limits.updated"
    types = [e["type"] for e in events]
    assert types[:4] == [
        "response.created",
        "response.output_item.added",
        "conversation.item.added",
        "response.content_part.added",
    ]
    assert types.count("response.output_text.delta") >= 3
    assert types[-5:] == [
        "response.output_text.done",
        "response.content_part.done",
        "response.output_item.done",
        "conversation.item.done",
        "response.done",
    ]
    text = "".join(e["delta"] for e in events if e["type"] == "response.output_text.delta")
    body = events[-1]["response"]
    assert body["output"][0]["content"] == [{"type": "output_text", "text": text}]
    assert body["conversation_id"].startswith("conv_")
    assert len({e["event_id"] for e in events}) == len(events)


async def test_audio_response_truncate_and_voice_lock(fake: FakeUpstream) -> None:
    async with await session(fake) as ws:
        await send(ws, {"type": "response.create"})
        events = await until(ws, "response.done")
        audio = [e for e in events if e["type"] == "response.output_audio.delta"]
        assert len(audio) == 5 and all(len(base64.b64decode(e["delta"])) == 960 for e in audio)
        types = [e["type"] for e in events]
        assert "response.output_audio_transcript.delta" in types
        assert types.index("response.output_audio.done") < types.index(
            "response.output_audio_transcript.done"
        )
        usage = events[-1]["response"]["usage"]
        assert usage["output_token_details"]["audio_tokens"] > 0 and usage["input_tokens"] > 0
        item_id = audio[0]["item_id"]

        truncate = {"type": "conversation.item.truncate", "item_id": item_id, "content_index": 0}
        await send(ws, {**truncate, "audio_end_ms": 150, "event_id": "t1"})
        error = await until(ws, "error")
        assert error[-1]["error"]["code"] == "item_truncate_invalid_audio_end_ms"
        assert error[-1]["error"]["event_id"] == "t1"
        await send(ws, {**truncate, "audio_end_ms": 60})
        assert (await recv(ws))["type"] == "conversation.item.truncated"

        update = {"type": "realtime", "audio": {"output": {"voice": "cedar"}}}
        await send(ws, {"type": "session.update", "event_id": "v1", "session": update})
        error = (await recv(ws))["error"]
        assert error["code"] == "cannot_update_voice"
        assert error["message"] == "Cannot update a conversation's voice if assistant audio is present."


async def test_fail_next_out_of_band_two(fake: FakeUpstream) -> None:
    fake.fail_next_out_of_band(2, code="rate_limited")
    oob = {"type": "response.create", "response": {"conversation": "none", "output_modalities": ["text"]}}
    async with await session(fake) as ws:
        statuses = []
        for _ in range(3):
            await send(ws, oob)
            done = (await until(ws, "response.done"))[-1]["response"]
            statuses.append(done["status"])
        assert statuses == ["failed", "failed", "completed"]


async def test_parallel_out_of_band_and_single_in_band(fake: FakeUpstream) -> None:
    async with await session(fake) as ws:
        for tag in ("a", "b"):
            meta = {"tag": tag}
            await send(
                ws, {"type": "response.create", "response": {"conversation": "none", "metadata": meta}}
            )
        await send(ws, {"type": "response.create"})
        await send(ws, {"type": "response.create", "event_id": "dup"})
        seen: list[dict[str, Any]] = []
        done: dict[str, Any] = {}
        while len(done) < 3:
            event = await recv(ws)
            seen.append(event)
            if event["type"] == "response.done":
                done[event["response"]["id"]] = event["response"]
    errors = [e["error"] for e in seen if e["type"] == "error"]
    assert [(e["code"], e["event_id"]) for e in errors] == [
        ("conversation_already_has_active_response", "dup")
    ]
    active = "Conversation already has an active response in progress: resp_"
    assert errors[0]["message"].startswith(active)
    tags = sorted(r["metadata"]["tag"] for r in done.values() if r["metadata"])
    assert tags == ["a", "b"]
    # Both out-of-band responses were streaming at the same time.
    created = [i for i, e in enumerate(seen) if e["type"] == "response.created"]
    first_done = min(i for i, e in enumerate(seen) if e["type"] == "response.done")
    assert len(created) == 3 and max(created) < first_done


async def test_back_to_back_in_band_and_max_output_tokens(fake: FakeUpstream) -> None:
    fake.response_delay = 0.01
    text = {"type": "response.create", "response": {"output_modalities": ["text"], "max_output_tokens": 2}}
    async with await session(fake) as ws:
        await send(ws, text)
        first = (await until(ws, "response.done"))[-1]["response"]
        await send(ws, text)  # the previous response is over once response.done is out
        events = await until(ws, "response.done")
    assert not [e for e in events if e["type"] == "error"]
    for body in (first, events[-1]["response"]):
        assert body["status"] == "incomplete"
        assert body["status_details"] == {"type": "incomplete", "reason": "max_output_tokens"}
        assert body["usage"]["output_token_details"]["text_tokens"] == 2
    assert events[-1]["response"]["usage"]["input_token_details"]["cached_tokens"] > 0


async def test_cancel_in_band(fake: FakeUpstream) -> None:
    async with await session(fake) as ws:
        await send(ws, {"type": "response.create"})
        await until(ws, "response.output_audio.delta")
        await send(ws, {"type": "response.cancel"})
        body = (await until(ws, "response.done"))[-1]["response"]
        assert body["status"] == "cancelled"
        assert body["status_details"] == {"type": "cancelled", "reason": "client_cancelled"}
        await until(ws, "rate_limits.updated")
        await send(ws, {"type": "response.cancel", "event_id": "c2"})
        error = (await recv(ws))["error"]
        assert (error["code"], error["event_id"]) == ("response_cancel_not_active", "c2")


async def test_cancel_before_response_created_is_not_active_and_the_response_plays_on(
    fake: FakeUpstream,
) -> None:
    fake.response_delay = 0.05  # the response exists (and is cancellable) only from response.created
    async with await session(fake) as ws:
        await send(ws, {"type": "response.create", "response": {"output_modalities": ["text"]}})
        await send(ws, {"type": "response.cancel", "event_id": "early"})
        events = await until(ws, "response.done")
    assert events[0]["type"] == "error"
    assert events[0]["error"] == {
        "type": "invalid_request_error",
        "code": "response_cancel_not_active",
        "message": "Cancellation failed: no active response found",
        "param": None,
        "event_id": "early",
    }
    assert events[1]["type"] == "response.created"
    assert events[-1]["response"]["status"] == "completed"


async def test_a_response_can_make_parallel_function_calls(fake: FakeUpstream) -> None:
    fake.parallel_function_calls = 2
    lookup = {**SEED_TOOL, "name": "lookup"}
    tools = {"tools": [SEED_TOOL, lookup], "tool_choice": "required", "output_modalities": ["text"]}
    async with await session(fake) as ws:
        await send(ws, {"type": "response.create", "response": tools})
        events = await until(ws, "response.done")
        output = events[-1]["response"]["output"]
        assert [(item["type"], item["name"], item["status"]) for item in output] == [
            ("function_call", "return_response", "completed"),
            ("function_call", "lookup", "completed"),
        ]
        call_ids = [item["call_id"] for item in output]
        assert len(set(call_ids)) == 2
        argument_events = [e for e in events if e["type"] == "response.function_call_arguments.done"]
        assert [e["call_id"] for e in argument_events] == call_ids
        assert [e["output_index"] for e in argument_events] == [0, 1]
        # Both calls are conversation items, so each can be answered with a function_call_output.
        for call_id in call_ids:
            item = {"type": "function_call_output", "call_id": call_id, "output": "{}"}
            await send(ws, {"type": "conversation.item.create", "item": item})
            assert (await until(ws, "conversation.item.done"))[-1]["item"]["call_id"] == call_id


async def test_response_create_rejects_beta_params(fake: FakeUpstream) -> None:
    async with await session(fake) as ws:
        for name, value in [("modalities", ["text"]), ("temperature", 0.7), ("voice", "alloy")]:
            await send(ws, {"type": "response.create", "event_id": name, "response": {name: value}})
            error = (await recv(ws))["error"]
            assert error["message"] == f"Unknown parameter: 'response.{name}'."
            assert error["event_id"] == name


# --- connection controls --------------------------------------------------------------------------


async def test_close_all_and_drop_all(fake: FakeUpstream) -> None:
    async with await session(fake) as ws:
        await fake.close_all(4000, "going away")
        with pytest.raises(ConnectionClosed):
            await recv(ws)
        assert (ws.close_code, ws.close_reason) == (4000, "going away")
    async with await session(fake) as ws:
        await fake.drop_all()
        with pytest.raises(ConnectionClosedError) as info:
            await recv(ws)
        assert info.value.rcvd is None  # no close frame: the TCP connection was aborted


async def test_stop_answering_pings(fake: FakeUpstream) -> None:
    async with await session(fake) as ws:
        async with asyncio.timeout(1):
            await (await ws.ping())
        fake.stop_answering_pings()
        pong = await ws.ping()
        # The fake reads nothing more, so the ping is never seen, let alone answered ...
        assert [conn.transport.is_reading() for conn in fake._live.values()] == [False]
        await fake.drop_all()
        # Unanswered until the connection ended: the client aborts the pending ping (no clock involved).
        with pytest.raises(ConnectionClosed):
            async with asyncio.timeout(5):
                await pong


async def test_echo_audio(fake: FakeUpstream) -> None:
    fake.echo_audio = True
    async with await session(fake) as ws:
        payload = pcm_ms(20)
        await send(ws, {"type": "input_audio_buffer.append", "audio": payload})
        event = await recv(ws)
    assert event["type"] == "response.output_audio.delta" and event["delta"] == payload
    assert event["response_id"].startswith("resp_") and event["item_id"].startswith("item_")


async def test_official_sdk_session(fake: FakeUpstream) -> None:
    client = AsyncOpenAI(api_key="sk-test", websocket_base_url=f"ws://127.0.0.1:{fake.port}/v1")
    async with asyncio.timeout(5), client.realtime.connect(model="gpt-realtime") as conn:
        assert (await conn.recv()).type == "session.created"
        await conn.session.update(session={"type": "realtime", "output_modalities": ["text"]})
        updated = await conn.recv()
        assert updated.type == "session.updated"
        assert updated.session.type == "realtime" and updated.session.output_modalities == ["text"]
        await conn.response.create()
        text = ""
        async for event in conn:
            if event.type == "response.output_text.delta":
                text += event.delta
            if event.type == "response.done":
                assert event.response.status == "completed"
                assert event.response.usage is not None and event.response.usage.total_tokens
                break
        assert text.startswith("Hello!")
    record = fake.connections[0]
    assert record.headers["authorization"] == "Bearer sk-test"
    assert record.query == {"model": "gpt-realtime"}
