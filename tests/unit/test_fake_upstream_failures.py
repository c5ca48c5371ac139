"""The fake reproduces the upstream failures of issue 25, each as the API shows it (PROTOCOL.md,
"Upstream failures in the field"); the events it sends still validate against the SDK's types."""

from __future__ import annotations

import asyncio
import json

import pytest
from websockets.exceptions import ConnectionClosed, InvalidStatus

from realtime_proxy.edge.continuity import lost_response_done
from realtime_proxy.fake_upstream import FakeUpstream
from tests.unit.test_fake_upstream import assert_valid_server_event, fake, open_ws, recv, send, session, until

__all__ = ["fake"]  # the fixture, with its schema check at teardown


async def test_session_expires_after_the_configured_seconds(fake: FakeUpstream) -> None:
    fake.session_max_seconds = 0.05
    ws = await session(fake)
    error = await recv(ws)
    assert error["type"] == "error" and error["error"]["code"] == "session_expired"
    assert error["error"]["message"] == "Your session hit the maximum duration of 60 minutes."
    with pytest.raises(ConnectionClosed):
        await recv(ws)
    assert ws.close_code == 1001


async def test_tcp_dropped_after_n_responses_the_last_done_delivered(fake: FakeUpstream) -> None:
    fake.drop_after_responses, fake.drops_left = 2, 1
    ws = await session(fake)
    for n in range(2):
        await send(ws, {"type": "response.create", "response": {"output_modalities": ["text"]}})
        done = (await until(ws, "response.done"))[-1]
        assert done["response"]["status"] == "completed", n
    with pytest.raises(ConnectionClosed):
        await recv(ws)
    assert ws.close_code == 1006  # no Close frame: the TCP connection just went
    assert fake.drops_left == 0


async def test_handshakes_refused_with_retry_after_then_accepted(fake: FakeUpstream) -> None:
    fake.fail_next_handshakes(1, 429, retry_after=2)
    fake.fail_next_handshakes(1, 503)
    for status, retry_after in ((429, "2"), (503, None)):
        with pytest.raises(InvalidStatus) as info:
            async with asyncio.timeout(5):
                await open_ws(fake)
        response = info.value.response
        assert response.status_code == status and response.headers.get("Retry-After") == retry_after
        assert json.loads(response.body)["error"]["message"]
    await (await session(fake)).close()


async def test_in_band_response_fails_with_server_error_and_empty_output(fake: FakeUpstream) -> None:
    fake.fail_next_in_band(1)
    ws = await session(fake)
    await send(ws, {"type": "response.create"})
    done = (await until(ws, "response.done"))[-1]["response"]
    assert done["status"] == "failed" and done["output"] == []
    assert done["status_details"]["error"]["type"] == "server_error"
    assert done["usage"]["output_tokens"] == 0
    await send(ws, {"type": "response.create", "response": {"output_modalities": ["text"]}})
    assert (await until(ws, "response.done"))[-1]["response"]["status"] == "completed"


def test_the_proxys_own_response_done_for_a_lost_response_is_sdk_valid() -> None:
    frame = lost_response_done("resp_1")
    assert_valid_server_event(frame)
    error = json.loads(frame)["response"]["status_details"]["error"]
    assert error["code"] == "upstream_connection_lost" and error["type"] == "server_error"
