"""Issue 25, item 3: an in-band response that failed with server_error before producing anything is
hidden from the client and created again; the client sees one response, never the failure."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import pytest
from openai import AsyncOpenAI
from websockets.asyncio.client import connect

from realtime_proxy.fake_upstream import FakeUpstream
from tests.conftest import API_KEY, ProxyFactory, sample

AUTH = {"Authorization": f"Bearer {API_KEY}"}


async def one_response(connection: Any) -> list[Any]:
    events = []
    async with asyncio.timeout(10):
        async for event in connection:
            events.append(event)
            if event.type == "response.done":
                return events
    raise AssertionError("no response.done")


def creates(fake: FakeUpstream) -> list[dict[str, Any]]:
    events = [json.loads(f) for f in fake.connections[-1].received]
    return [e for e in events if e["type"] == "response.create"]


async def test_a_client_turn_is_redriven_invisibly(make_proxy: ProxyFactory, fake: FakeUpstream) -> None:
    proxy = await make_proxy(redrive={"backoff_base": 0.01})
    fake.fail_next_in_band(1)
    client = AsyncOpenAI(api_key=API_KEY, websocket_base_url=proxy.ws_base)
    async with client.realtime.connect(model="gpt-realtime") as connection:
        assert (await connection.recv()).type == "session.created"
        await connection.response.create(response={"output_modalities": ["text"]}, event_id="mine")
        events = await one_response(connection)
    types = [e.type for e in events]
    assert types.count("response.created") == 1 and "error" not in types
    created = next(e for e in events if e.type == "response.created")
    assert events[-1].response.status == "completed" and created.response.id == events[-1].response.id
    assert [c.get("event_id") for c in creates(fake)] == ["mine", "mine"]  # the client's own request again
    failed = [json.loads(f) for f in fake.connections[-1].sent if '"status":"failed"' in f]
    assert len(failed) == 1  # the fake did fail the first attempt
    samples = await proxy.scrape()
    assert sample(samples, "realtime_proxy_redrives_total", outcome="redriven") == 1.0
    assert sample(samples, "realtime_proxy_redrives_total", outcome="recovered") == 1.0


async def test_a_turn_the_server_started_on_vad_gets_a_plain_create(
    make_proxy: ProxyFactory, fake: FakeUpstream
) -> None:
    proxy = await make_proxy(redrive={"backoff_base": 0.01})
    fake.fail_next_in_band(1)
    client = AsyncOpenAI(api_key=API_KEY, websocket_base_url=proxy.ws_base)
    async with client.realtime.connect(model="gpt-realtime") as connection:
        assert (await connection.recv()).type == "session.created"
        await fake.start_responses()  # no client create: the server began the turn itself
        events = await one_response(connection)
    assert [e.type for e in events].count("response.created") == 1
    assert events[-1].response.status == "completed"
    assert creates(fake) == [{"type": "response.create", "event_id": "proxy_redrive_2"}]


async def test_failures_past_max_attempts_reach_the_client(
    make_proxy: ProxyFactory, fake: FakeUpstream
) -> None:
    proxy = await make_proxy(redrive={"backoff_base": 0.01, "max_attempts": 2})
    fake.fail_next_in_band(2)
    client = AsyncOpenAI(api_key=API_KEY, websocket_base_url=proxy.ws_base)
    async with client.realtime.connect(model="gpt-realtime") as connection:
        assert (await connection.recv()).type == "session.created"
        await connection.response.create()
        events = await one_response(connection)
    assert [e.type for e in events if e.type != "rate_limits.updated"] == [
        "response.created",
        "response.done",
    ]
    assert events[-1].response.status == "failed"
    assert sample(await proxy.scrape(), "realtime_proxy_redrives_total", outcome="exhausted") == 1.0


@pytest.mark.parametrize("target", ["/realtime?call_id=rtc_1", "/realtime?model=gpt-realtime"])
async def test_never_on_sidebands_or_when_off(
    make_proxy: ProxyFactory, fake: FakeUpstream, target: str
) -> None:
    off = {} if "call_id" in target else {"redrive": {"enabled": False}}
    proxy = await make_proxy(**off)
    fake.fail_next_in_band(1)
    async with asyncio.timeout(10), connect(proxy.ws_base + target, additional_headers=AUTH) as ws:
        await ws.send(json.dumps({"type": "response.create"}))
        while (event := json.loads(await ws.recv()))["type"] != "response.done":
            pass
    assert event["response"]["status"] == "failed" and len(creates(fake)) == 1
