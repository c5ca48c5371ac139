"""The official openai SDK's realtime client, through the proxy, to the fake upstream."""

from __future__ import annotations

import asyncio
import json

from openai import AsyncOpenAI

from tests.conftest import API_KEY, RunningProxy
from tests.e2e.realtime_client import RETURN_RESPONSE_TOOL


async def collect_until_done(connection, response_count: int = 1) -> list:
    events = []
    done = 0
    async with asyncio.timeout(10):
        async for event in connection:
            events.append(event)
            if event.type == "response.done":
                done += 1
                if done == response_count:
                    return events
    return events


async def test_full_session_text_and_function_call(proxy: RunningProxy) -> None:
    client = AsyncOpenAI(api_key=API_KEY, websocket_base_url=proxy.ws_base)
    async with client.realtime.connect(model="gpt-realtime") as connection:
        async with asyncio.timeout(10):
            created = await connection.recv()
        assert created.type == "session.created"
        await connection.session.update(
            session={"type": "realtime", "output_modalities": ["text"], "tools": [RETURN_RESPONSE_TOOL]}
        )
        async with asyncio.timeout(10):
            updated = await connection.recv()
        assert updated.type == "session.updated"
        assert updated.session.tools[0].name == "return_response"

        await connection.conversation.item.create(
            item={"type": "message", "role": "user", "content": [{"type": "input_text", "text": "hi"}]}
        )
        await connection.response.create(response={"output_modalities": ["text"], "tool_choice": "none"})
        events = await collect_until_done(connection)
        types = [e.type for e in events]
        assert "response.output_text.delta" in types
        assert events[-1].response.status == "completed"

        await connection.response.create(response={"tool_choice": "required"})
        events = await collect_until_done(connection)
        done = events[-1]
        assert done.response.status == "completed"
        call = done.response.output[0]
        assert call.type == "function_call" and call.name == "return_response"
        assert "response" in json.loads(call.arguments)
    # The fake saw exactly what the SDK sent: the proxy forwarded every client frame.
    record = proxy.fake.connections[-1]
    assert record.path == "/v1/realtime" and record.query == {"model": "gpt-realtime"}
    assert record.headers["authorization"] == f"Bearer {API_KEY}"
