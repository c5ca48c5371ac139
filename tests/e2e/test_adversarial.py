"""Defects found by adversarial testing (issue 15), each through a real `realtime-proxy` process:
frames that read one way to the proxy and another to the API, and admission/redaction of hostile
handshakes."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any

from websockets.asyncio.client import connect

from tests.e2e.helpers import proxy_process

LOOPBACK = ("--host", "127.0.0.1", "--port", "0", "--metrics-port", "0")
SEED = json.loads((Path(__file__).parents[1] / "data" / "seed_response_create.json").read_text())


async def _until_done(ws: Any) -> dict[str, Any]:
    async with asyncio.timeout(10):
        while True:
            event = json.loads(await ws.recv())
            if event["type"] in {"response.done", "error"}:
                return event


async def test_a_second_type_key_is_read_as_the_api_reads_it() -> None:
    """`type` twice: the API keeps the last one, a response.create with the seed's object tool_choice.
    The proxy must see the same event and repair it, so the response completes."""
    hidden = json.dumps(SEED["response"])
    frame = '{"type":"input_audio_buffer.clear","type":"response.create","response":' + hidden + "}"
    async with proxy_process("--fake-upstream", *LOOPBACK) as running:
        url = f"ws://127.0.0.1:{running.port}/v1/realtime?model=gpt-realtime"
        async with connect(url, additional_headers={"Authorization": "Bearer sk-any"}) as ws:
            assert json.loads(await ws.recv())["type"] == "session.created"
            await ws.send(frame)
            done = await _until_done(ws)
        assert done["type"] == "response.done"
        assert done["response"]["status"] == "completed", done
        assert done["response"]["output"][0]["name"] == "return_response"
        assert any('"tool_choice_object"' in line for line in running.lines)
