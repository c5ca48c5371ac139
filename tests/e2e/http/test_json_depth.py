"""One depth guard for every JSON the proxy parses (core/events.parse_guarded), through the
in-process proxy and the fake: an over-deep session config posted to the Realtime HTTP routes is
forwarded untouched for the API to answer, as an over-deep WebSocket event is, never a 500."""

from __future__ import annotations

import asyncio

import httpx
import orjson
import pytest

from tests.conftest import API_KEY, RunningProxy


def deep(levels: int) -> str:
    """A JSON schema nested 2 * levels objects deep (orjson cannot write past 254: written by hand)."""
    return '{"type":"object","properties":{"x":' * levels + '{"type":"string"}' + "}}" * levels


@pytest.mark.parametrize("levels", [130, 300])  # 260 and 600 nested objects
@pytest.mark.parametrize("route", ["/realtime/client_secrets", "/realtime/calls/rtc_1/accept"])
async def test_over_deep_session_configs_go_on_untouched(
    proxy: RunningProxy, route: str, levels: int
) -> None:
    tools = '[{"type":"function","name":"f","parameters":' + deep(levels) + "}]"
    session = '{"type":"realtime","model":"gpt-realtime","tools":' + tools + "}"
    body = ('{"session":' + session + "}" if "secrets" in route else session).encode()
    assert orjson.loads(body)  # valid JSON (orjson reads up to 1024 levels)
    auth = {"Authorization": f"Bearer {API_KEY}", "Content-Type": "application/json"}
    async with asyncio.timeout(10), httpx.AsyncClient(base_url=proxy.base_url) as client:
        response = await client.post(route, content=body, headers=auth)
    assert response.status_code != 500, proxy.logs.getvalue()[-3000:]
    (record,) = proxy.fake.http.records  # forwarded once, as sent, for the API to answer
    assert record.path == "/v1" + route
    lines = proxy.logs.getvalue().splitlines()
    assert not [line for line in lines if "http_handler_failed" in line or "Traceback" in line]
    assert max(len(line) for line in lines) < 4096
