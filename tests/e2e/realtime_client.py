"""A raw Realtime client for tests that must send shapes the SDK's types would not let through."""

from __future__ import annotations

import asyncio
import base64
import json
from typing import Any

from websockets.asyncio.client import ClientConnection, connect

from tests.conftest import API_KEY

RETURN_RESPONSE_TOOL = {
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


class RawClient:
    def __init__(self, connection: ClientConnection) -> None:
        self.ws = connection
        self.seen: list[dict[str, Any]] = []

    @classmethod
    async def open(cls, url: str, **kwargs: Any) -> RawClient:
        headers = kwargs.pop("additional_headers", {"Authorization": f"Bearer {API_KEY}"})
        ws = await connect(url, additional_headers=headers, max_size=None, **kwargs)
        client = cls(ws)
        created = await client.next_event()
        assert created["type"] == "session.created", created
        return client

    async def send(self, event: dict[str, Any]) -> None:
        await self.ws.send(json.dumps(event))

    async def next_event(self, timeout: float = 5) -> dict[str, Any]:
        async with asyncio.timeout(timeout):
            event = json.loads(await self.ws.recv())
        self.seen.append(event)
        return event

    async def until(self, *types: str, timeout: float = 5) -> dict[str, Any]:
        """Read events until one of `types` (or an error) arrives; return it."""
        async with asyncio.timeout(timeout):
            while True:
                event = await self.next_event(timeout)
                if event["type"] in types or event["type"] == "error":
                    return event

    async def close(self) -> None:
        await self.ws.close()


def pcm_silence_b64(milliseconds: int) -> str:
    return base64.b64encode(bytes(48 * milliseconds)).decode()  # 24 kHz PCM16: 48 bytes per ms
