"""Beta-era clients keep working: the official SDK's beta realtime client runs a whole session through
the proxy against the GA-only fake (which closes beta sockets with 4000, like the real API)."""

from __future__ import annotations

import asyncio
import base64
import json
from typing import Any

import pytest
from openai import AsyncOpenAI
from openai.types.beta import realtime as beta
from pydantic import TypeAdapter
from websockets.asyncio.client import connect
from websockets.exceptions import ConnectionClosed, InvalidStatus

from tests.conftest import API_KEY, ProxyFactory, RunningProxy, sample
from tests.e2e.realtime_client import RETURN_RESPONSE_TOOL

BETA_EVENTS: TypeAdapter[Any] = TypeAdapter(beta.RealtimeServerEvent)
BETA_TOOL = {
    "type": "function",
    "name": "return_response",
    "description": "Return the response",
    "parameters": RETURN_RESPONSE_TOOL["parameters"],
}


async def frames_until_done(connection: Any) -> list[dict[str, Any]]:
    """Raw frames up to response.done, each validated strictly against the SDK's beta event union."""
    frames: list[dict[str, Any]] = []
    async with asyncio.timeout(10):
        while not frames or frames[-1]["type"] != "response.done":
            raw = await connection.recv_bytes()
            BETA_EVENTS.validate_json(raw)
            frames.append(json.loads(raw))
            assert frames[-1]["type"] != "error", frames[-1]
    return frames


async def test_sdk_beta_client_full_session(proxy: RunningProxy) -> None:
    client = AsyncOpenAI(api_key=API_KEY, websocket_base_url=proxy.ws_base)
    async with client.beta.realtime.connect(model="gpt-realtime") as connection:
        async with asyncio.timeout(5):
            created = await connection.recv()
        assert created.type == "session.created"
        assert created.session.modalities == ["text", "audio"]  # beta layout
        assert created.session.input_audio_format == "pcm16"
        await connection.session.update(
            session={
                "modalities": ["text", "audio"],
                "voice": "alloy",
                "input_audio_format": "pcm16",
                "output_audio_format": "pcm16",
                "temperature": 0.8,
                "turn_detection": None,
                "instructions": "be brief",
                "tools": [BETA_TOOL],
            }
        )
        async with asyncio.timeout(5):
            updated = await connection.recv()
        assert updated.type == "session.updated", updated
        assert updated.session.voice == "alloy" and updated.session.tools[0].name == "return_response"

        await connection.conversation.item.create(
            item={"type": "message", "role": "user", "content": [{"type": "input_text", "text": "hi"}]}
        )
        await connection.response.create(response={"modalities": ["text"], "tool_choice": "none"})
        frames = await frames_until_done(connection)
        types = [f["type"] for f in frames]
        assert "conversation.item.created" in types and "response.text.delta" in types
        assert not [t for t in types if "output_text" in t or t == "conversation.item.done"]

        await connection.response.create(
            response={"tool_choice": {"type": "function", "name": "return_response"}}
        )
        frames = await frames_until_done(connection)
        done = beta.ResponseDoneEvent.model_validate(frames[-1])
        assert done.response.status == "completed"
        assert done.response.output[0].type == "function_call"

        chunk = base64.b64encode(bytes(48 * 20)).decode()
        for _ in range(10):
            await connection.input_audio_buffer.append(audio=chunk)
        await connection.input_audio_buffer.commit()
        await connection.response.create(response={"modalities": ["text", "audio"], "tool_choice": "none"})
        frames = await frames_until_done(connection)
        types = [f["type"] for f in frames]
        assert "input_audio_buffer.committed" in types
        assert "response.audio.delta" in types and "response.audio_transcript.delta" in types
        audio_sent = [
            json.loads(f)["delta"]
            for f in proxy.fake.connections[-1].sent
            if '"response.output_audio.delta"' in f
        ]
        assert [f["delta"] for f in frames if f["type"] == "response.audio.delta"] == audio_sent[
            -len([f for f in frames if f["type"] == "response.audio.delta"]) :
        ]
    record = proxy.fake.connections[-1]
    assert "openai-beta" not in record.headers  # the marker never reached the GA upstream
    m = await proxy.scrape()
    assert sample(m, "realtime_proxy_beta_sessions_total", mode="translate") == 1


async def test_transcription_session_update_is_translated(proxy: RunningProxy) -> None:
    async with connect(
        f"{proxy.ws_base}/realtime?intent=transcription",
        additional_headers={"Authorization": f"Bearer {API_KEY}", "OpenAI-Beta": "realtime=v1"},
    ) as ws:
        async with asyncio.timeout(5):
            await ws.recv()
            await ws.send(
                json.dumps(
                    {
                        "type": "transcription_session.update",
                        "session": {
                            "input_audio_format": "pcm16",
                            "input_audio_transcription": {"model": "gpt-4o-transcribe"},
                        },
                    }
                )
            )
            answer = json.loads(await ws.recv())
    sent = json.loads(proxy.fake.connections[-1].received[-1])
    assert sent["type"] == "session.update" and sent["session"]["type"] == "transcription"
    assert answer["type"] == "transcription_session.updated", answer


async def test_beta_subprotocol_is_stripped(proxy: RunningProxy) -> None:
    async with connect(
        proxy.realtime_url,
        subprotocols=["realtime", f"openai-insecure-api-key.{API_KEY}", "openai-beta.realtime-v1"],
    ) as ws:
        async with asyncio.timeout(5):
            first = json.loads(await ws.recv())
    assert first["type"] == "session.created"
    assert "openai-beta.realtime-v1" not in proxy.fake.connections[-1].subprotocols_offered


async def test_reject_mode_refuses_beta_clients(make_proxy: ProxyFactory) -> None:
    proxy = await make_proxy(compat={"beta_clients": "reject"})
    with pytest.raises(InvalidStatus) as refused:
        await connect(
            proxy.realtime_url,
            additional_headers={"Authorization": f"Bearer {API_KEY}", "OpenAI-Beta": "realtime=v1"},
        )
    assert refused.value.response.status_code == 400
    assert json.loads(refused.value.response.body)["error"]["code"] == "beta_api_shape_disabled"
    assert proxy.fake.connections == []


async def test_passthrough_mode_lets_the_upstream_answer(make_proxy: ProxyFactory) -> None:
    proxy = await make_proxy(compat={"beta_clients": "passthrough"})
    async with connect(
        proxy.realtime_url,
        additional_headers={"Authorization": f"Bearer {API_KEY}", "OpenAI-Beta": "realtime=v1"},
    ) as ws:
        async with asyncio.timeout(5):
            error = json.loads(await ws.recv())
            with pytest.raises(ConnectionClosed):
                await ws.recv()
    assert error["error"]["code"] == "beta_api_shape_disabled"
    assert ws.close_code == 4000  # mirrored from the upstream
