"""Issue 25, item 4: sessions survive a dropped or expired upstream. The official SDK keeps its
socket; the proxy opens a new upstream session and replays the confirmed configuration and items
before anything new goes up (the fake records every frame per connection)."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import pytest
from openai import AsyncOpenAI
from websockets.asyncio.client import connect

from realtime_proxy.fake_upstream import FakeUpstream
from tests.conftest import API_KEY, ProxyFactory, sample
from tests.e2e.helpers import closed_with

AUTH = {"Authorization": f"Bearer {API_KEY}"}

INSTRUCTIONS = "You are a terse assistant for the continuity test."


async def until_done(connection: Any) -> list[Any]:
    events = []
    async with asyncio.timeout(10):
        async for event in connection:
            events.append(event)
            if event.type == "response.done":
                return events
    raise AssertionError("no response.done")


def received(record: Any) -> list[dict[str, Any]]:
    return [json.loads(frame) for frame in record.received]


async def first_turn(connection: Any) -> list[Any]:
    """Configure, say something, get a complete answer (the fake may drop right after it)."""
    assert (await connection.recv()).type == "session.created"
    await connection.session.update(
        session={"type": "realtime", "output_modalities": ["text"], "instructions": INSTRUCTIONS}
    )
    assert (await connection.recv()).type == "session.updated"
    await connection.conversation.item.create(
        item={"type": "message", "role": "user", "content": [{"type": "input_text", "text": "first"}]}
    )
    await connection.response.create()
    return await until_done(connection)


async def second_turn(connection: Any) -> list[Any]:
    await connection.conversation.item.create(
        item={"type": "message", "role": "user", "content": [{"type": "input_text", "text": "second"}]}
    )
    await connection.response.create()
    return await until_done(connection)


def assert_replayed_before_create(record: Any, first_items: list[str]) -> None:
    events = received(record)
    types = [e["type"] for e in events]
    assert types[0] == "session.update" and events[0]["session"]["instructions"] == INSTRUCTIONS
    assert "id" not in events[0]["session"] and "expires_at" not in events[0]["session"]
    replayed = [e["item"] for e in events[1 : 1 + len(first_items)]]
    assert [item["id"] for item in replayed] == first_items
    assert replayed[0]["content"] == [{"type": "input_text", "text": "first"}]
    assert replayed[1]["role"] == "assistant" and replayed[1]["content"][0]["type"] == "output_text"
    assert replayed[1]["content"][0]["text"].startswith("Hello!")
    assert types[1 + len(first_items) :] == ["conversation.item.create", "response.create"]


async def test_dropped_upstream_resumes_with_config_and_items(
    make_proxy: ProxyFactory, fake: FakeUpstream
) -> None:
    proxy = await make_proxy()
    fake.drop_after_responses, fake.drops_left = 1, 1
    client = AsyncOpenAI(api_key=API_KEY, websocket_base_url=proxy.ws_base)
    async with client.realtime.connect(model="gpt-realtime") as connection:
        events = await first_turn(connection)
        assert events[-1].response.status == "completed"
        first_items = [i for e in events if e.type == "conversation.item.done" for i in [e.item.id]]
        await asyncio.wait_for(fake.connections[0].wait_closed(), 5)
        events = await second_turn(connection)
        assert events[-1].response.status == "completed"
        # Nothing of the new upstream session's own events reached the client.
        assert not [e for e in events if e.type.startswith("session.")]
    assert len(fake.connections) == 2
    assert_replayed_before_create(fake.connections[1], first_items)
    samples = await proxy.scrape()
    assert sample(samples, "realtime_proxy_reconnects_total", cause="dropped", outcome="resumed") == 1.0
    assert samples["realtime_proxy_replayed_items_total{}"] == 2.0
    resumed = [line for line in proxy.log_lines() if line["event"] == "upstream_resumed"]
    assert resumed and resumed[0]["items"] == 2 and resumed[0]["cause"] == "dropped"
    assert API_KEY not in proxy.logs.getvalue()


async def test_the_60_minute_cap_is_resumed_and_hidden(make_proxy: ProxyFactory, fake: FakeUpstream) -> None:
    """The API's session_expired error and close 1001 (simulated at once): the client sees neither."""
    proxy = await make_proxy()
    client = AsyncOpenAI(api_key=API_KEY, websocket_base_url=proxy.ws_base)
    async with client.realtime.connect(model="gpt-realtime") as connection:
        events = await first_turn(connection)
        first_items = [e.item.id for e in events if e.type == "conversation.item.done"]
        await fake.expire_all()
        await asyncio.wait_for(fake.connections[0].wait_closed(), 5)
        events = await second_turn(connection)
        assert events[-1].response.status == "completed"
        assert not [e for e in events if e.type == "error" or e.type.startswith("session.")]
    assert fake.connections[0].close_code == 1001  # the proxy answered the API's close
    assert_replayed_before_create(fake.connections[1], first_items)
    samples = await proxy.scrape()
    assert sample(samples, "realtime_proxy_reconnects_total", cause="expired", outcome="resumed") == 1.0


async def test_upstream_gone_for_good_closes_with_a_code_the_sdk_reconnects_on(
    make_proxy: ProxyFactory, fake: FakeUpstream
) -> None:
    """Every reopening refused: the client gets 1013 and the SDK's own on_reconnecting takes over."""
    proxy = await make_proxy(handshake_retry={"backoff_base": 0.01})
    codes: list[int] = []

    def on_reconnecting(event: Any) -> None:
        codes.append(event.close_code)

    client = AsyncOpenAI(api_key=API_KEY, websocket_base_url=proxy.ws_base)
    manager = client.realtime.connect(
        model="gpt-realtime", on_reconnecting=on_reconnecting, initial_delay=0.01, max_delay=0.02
    )
    async with manager as connection:
        await first_turn(connection)
        fake.fail_next_handshakes(3, 503, retry_after=0)  # continuity.max_attempts
        await fake.drop_all()
        async with asyncio.timeout(10):
            async for event in connection:  # the SDK's iterator reconnects on a recoverable close
                if event.type == "session.created":
                    break
    assert codes == [1013]
    samples = await proxy.scrape()
    assert sample(samples, "realtime_proxy_reconnects_total", cause="dropped", outcome="refused") == 1.0
    failed = [line for line in proxy.log_lines() if line["event"] == "upstream_resume_failed"]
    assert failed[0]["close_code"] == 1013 and failed[0]["status"] == 503


async def test_a_response_cut_mid_stream_ends_failed_and_the_session_goes_on(
    make_proxy: ProxyFactory, fake: FakeUpstream
) -> None:
    proxy = await make_proxy()
    client = AsyncOpenAI(api_key=API_KEY, websocket_base_url=proxy.ws_base)
    async with client.realtime.connect(model="gpt-realtime") as connection:
        assert (await connection.recv()).type == "session.created"
        fake.delta_interval = 0.05
        await connection.response.create(response={"output_modalities": ["text"]})
        events = []
        async with asyncio.timeout(10):
            async for event in connection:
                events.append(event)
                if event.type == "response.output_text.delta" and len(fake.connections) == 1:
                    await fake.drop_all()
                if event.type == "response.done":
                    break
        fake.delta_interval = 0.001
        done = events[-1].response
        assert done.status == "failed" and done.id == events[0].response.id
        assert done.status_details.error.code == "upstream_connection_lost"
        assert (await second_turn(connection))[-1].response.status == "completed"


async def test_a_create_lost_before_its_response_started_is_sent_again(
    make_proxy: ProxyFactory, fake: FakeUpstream
) -> None:
    proxy = await make_proxy()
    fake.response_delay = 0.3  # response.created comes late: the create is in flight when the TCP goes
    client = AsyncOpenAI(api_key=API_KEY, websocket_base_url=proxy.ws_base)
    async with client.realtime.connect(model="gpt-realtime") as connection:
        assert (await connection.recv()).type == "session.created"
        await connection.response.create(response={"output_modalities": ["text"]}, event_id="create_1")
        async with asyncio.timeout(5):
            while not any('"create_1"' in str(f) for f in fake.connections[0].received):
                await asyncio.sleep(0.005)
        fake.response_delay = 0.0
        await fake.drop_all()
        events = await until_done(connection)
    assert [e.type for e in events].count("response.created") == 1
    assert events[-1].response.status == "completed"
    assert json.loads(fake.connections[1].received[-1])["event_id"] == "create_1"


async def test_rollover_at_a_turn_boundary(make_proxy: ProxyFactory, fake: FakeUpstream) -> None:
    proxy = await make_proxy(continuity={"rollover_age": 0.001, "max_resumptions": 1})
    client = AsyncOpenAI(api_key=API_KEY, websocket_base_url=proxy.ws_base)
    async with client.realtime.connect(model="gpt-realtime") as connection:
        events = await first_turn(connection)
        first_items = [e.item.id for e in events if e.type == "conversation.item.done"]
        await asyncio.wait_for(fake.connections[0].wait_closed(), 5)
        assert (await second_turn(connection))[-1].response.status == "completed"
    assert fake.connections[0].close_code == 1000 and fake.connections[0].close_reason == "session rollover"
    assert_replayed_before_create(fake.connections[1], first_items)
    samples = await proxy.scrape()
    assert sample(samples, "realtime_proxy_reconnects_total", cause="rollover", outcome="resumed") == 1.0


@pytest.mark.parametrize(
    ("settings", "target"),
    [({"continuity": {"mode": "off"}}, "/realtime?model=gpt-realtime"), ({}, "/realtime?call_id=rtc_1")],
    ids=["continuity-off", "sideband"],
)
async def test_not_resumed_the_client_gets_1011(
    make_proxy: ProxyFactory, fake: FakeUpstream, settings: dict[str, Any], target: str
) -> None:
    proxy = await make_proxy(**settings)
    async with asyncio.timeout(10), connect(proxy.ws_base + target, additional_headers=AUTH) as client:
        assert json.loads(await client.recv())["type"] == "session.created"
        await fake.drop_all()
        assert await closed_with(client) == (1011, "upstream connection lost")
    assert len(fake.connections) == 1


async def test_item_ids_the_new_session_changed_are_translated_both_ways(
    make_proxy: ProxyFactory, fake: FakeUpstream
) -> None:
    proxy = await make_proxy()
    fake.keep_client_item_ids = False  # the new session names the replayed items itself
    fake.drop_after_responses, fake.drops_left = 1, 1
    client = AsyncOpenAI(api_key=API_KEY, websocket_base_url=proxy.ws_base)
    async with client.realtime.connect(model="gpt-realtime") as connection:
        events = await first_turn(connection)
        old = next(e.item.id for e in events if e.type == "conversation.item.done")
        await asyncio.wait_for(fake.connections[0].wait_closed(), 5)
        await connection.conversation.item.delete(item_id=old)
        async with asyncio.timeout(10):
            async for event in connection:
                if event.type in ("conversation.item.deleted", "error"):
                    break
        assert event.type == "conversation.item.deleted" and event.item_id == old
    sent_up = [json.loads(f) for f in fake.connections[1].received]
    delete = next(e for e in sent_up if e["type"] == "conversation.item.delete")
    replayed = next(e for e in sent_up if e["type"] == "conversation.item.create")
    assert replayed["item"]["id"] == old and delete["item_id"] != old  # the server's own id
